//! The jobs running on an agent, and requests to cancel jobs that were not
//! running when they came: remembered (the latest [`REMEMBERED`]) so that
//! such a job, taken from the queue later, never starts.

use std::collections::{HashMap, HashSet, VecDeque};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many requests for jobs not running are remembered.
pub(crate) const REMEMBERED: usize = 4096;

/// What a request to cancel a job did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cancelled {
    /// The job runs here: told to stop.
    Stopping,
    /// Not running: remembered for when it starts.
    Remembered,
    /// Remembered, and the oldest request was forgotten to make room.
    ForgotOne,
}

/// Running jobs and cancelled ones not started.
#[derive(Debug, Default)]
pub(crate) struct Running {
    jobs: HashMap<Uuid, CancellationToken>,
    cancelled: HashSet<Uuid>,
    /// `cancelled` in the order the requests came (ids started since stay
    /// here until their turn to go).
    order: VecDeque<Uuid>,
}

impl Running {
    /// Applies a request to cancel job `id`.
    pub(crate) fn cancel(&mut self, id: Uuid) -> Cancelled {
        if let Some(token) = self.jobs.get(&id) {
            token.cancel();
            return Cancelled::Stopping;
        }
        if self.cancelled.insert(id) {
            self.order.push_back(id);
        }
        let mut outcome = Cancelled::Remembered;
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front()
                && self.cancelled.remove(&old)
            {
                outcome = Cancelled::ForgotOne;
            }
        }
        outcome
    }

    /// Job `id` starts, stopped by `token`; `false` if it was cancelled
    /// before (the token is cancelled then, and the job not registered).
    pub(crate) fn start(&mut self, id: Uuid, token: CancellationToken) -> bool {
        if self.cancelled.remove(&id) {
            token.cancel();
            return false;
        }
        self.jobs.insert(id, token);
        true
    }

    /// True while job `id` runs here.
    pub(crate) fn contains(&self, id: &Uuid) -> bool {
        self.jobs.contains_key(id)
    }

    /// Job `id` stopped running.
    pub(crate) fn remove(&mut self, id: &Uuid) {
        self.jobs.remove(id);
    }

    /// The tokens of every running job.
    pub(crate) fn tokens(&self) -> Vec<CancellationToken> {
        self.jobs.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_stops_a_running_job_or_waits_for_it_to_start() {
        let mut r = Running::default();
        let (running, queued) = (Uuid::new_v4(), Uuid::new_v4());
        let token = CancellationToken::new();
        assert!(r.start(running, token.clone()));
        assert_eq!(r.cancel(running), Cancelled::Stopping);
        assert!(token.is_cancelled());
        assert_eq!(r.cancel(queued), Cancelled::Remembered);
        let late = CancellationToken::new();
        assert!(
            !r.start(queued, late.clone()),
            "cancelled before it started"
        );
        assert!(late.is_cancelled());
        // Once: the same job started again is not cancelled.
        r.remove(&queued);
        assert!(r.start(queued, CancellationToken::new()));
    }

    #[test]
    fn the_oldest_request_is_forgotten_and_said_so() {
        let mut r = Running::default();
        let first = Uuid::new_v4();
        assert_eq!(r.cancel(first), Cancelled::Remembered);
        for _ in 1..REMEMBERED {
            assert_eq!(r.cancel(Uuid::new_v4()), Cancelled::Remembered);
        }
        assert_eq!(r.cancel(Uuid::new_v4()), Cancelled::ForgotOne);
        assert!(r.start(first, CancellationToken::new()), "forgotten");
        // A request whose job started makes room without forgetting one.
        let mut r = Running::default();
        let started = Uuid::new_v4();
        r.cancel(started);
        r.start(started, CancellationToken::new());
        for _ in 1..REMEMBERED {
            r.cancel(Uuid::new_v4());
        }
        assert_eq!(r.cancel(Uuid::new_v4()), Cancelled::Remembered);
    }
}
