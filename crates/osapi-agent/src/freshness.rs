//! When a job may start without first reading whether the controller
//! already settled this host's part of it (cancelled, or recorded the host
//! lost, while the job waited in the queue).
//!
//! The read costs a round trip to the bus for every job that changes
//! something on the host. It can be skipped when nothing could have settled
//! the job unseen:
//! - a controller cancelling a job sends the agent a request before it
//!   records the cancellation, and every request that reached the agent
//!   before the job has been read when it starts (see
//!   [`osapi_bus::CancelFeed::arrived`]); but requests sent while the
//!   connection was down are lost, so the job must have been delivered on
//!   the connection the agent has now, after the queue was once caught up
//!   on it (a delivery leaving nothing behind it, fetched in this era: what
//!   the consumer fetched before a disruption is dropped and delivered
//!   again). A request lost on the way (a cluster's route failing) is not
//!   noticed: the job then runs until its periodic check of its state;
//! - the controller records a host lost when its registration expires, so
//!   the agent's heartbeats must have gone through without a gap of half
//!   the registry's time to live (counting time the machine slept), before
//!   the job's delivery and up to its start;
//! - a job near its deadline may be settled expired by a controller whose
//!   clock runs ahead.
//!
//! Only jobs of the agent's own queue qualify (a cancelled `_any` job that
//! nobody took sends no request), delivered for the first time.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use osapi_bus::QueueKind;
use time::OffsetDateTime;

/// A job due this soon is read first: a controller clock this far ahead
/// of ours may have settled it expired already.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// What an agent knows about the order of events on its bus.
#[derive(Debug)]
pub(crate) struct Freshness {
    /// A gap this long between heartbeats may have let the registration
    /// expire (half the registry's time to live).
    gap_limit: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// When the last heartbeat that went through was sent.
    heartbeat: Option<Moment>,
    /// Events after which anything queued may have been settled unseen.
    disruptions: u64,
    /// The own queue was caught up in this era.
    caught_up: Option<Era>,
    /// Cancellation requests can no longer arrive.
    deaf: bool,
}

impl Inner {
    fn era(&self, connects: u64) -> Era {
        Era {
            connects,
            disruptions: self.disruptions,
        }
    }
}

/// Between two events that may have hidden a settlement: a connection made
/// again, a gap in heartbeats, cancellation requests forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Era {
    connects: u64,
    disruptions: u64,
}

/// An instant on two clocks: the monotonic one stands still while the
/// machine sleeps (suspended), the wall clock does not (but may be set
/// back or forth); the time since it is the longer of the two readings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    monotonic: Instant,
    wall: std::time::SystemTime,
}

impl Moment {
    pub(crate) fn now() -> Self {
        Moment {
            monotonic: Instant::now(),
            wall: std::time::SystemTime::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        let wall = self.wall.elapsed().unwrap_or_default();
        self.monotonic.elapsed().max(wall)
    }
}

/// What was known when a job was delivered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    era: Era,
    /// Delivered while the queue was not yet caught up in this era: it may
    /// have waited there through a disruption.
    behind: bool,
    own_queue: bool,
}

impl Freshness {
    /// For a bus whose registrations expire after `registry_ttl`.
    pub(crate) fn new(registry_ttl: Duration) -> Self {
        Freshness {
            gap_limit: registry_ttl / 2,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A heartbeat sent at `sent` went through (now). A gap since the one
    /// before that could have let the registration expire is a disruption.
    pub(crate) fn heartbeat_went_through(&self, sent: Moment) {
        let mut inner = self.lock();
        if let Some(before) = inner.heartbeat
            && before.elapsed() > self.gap_limit
        {
            inner.disruptions += 1;
            tracing::debug!("heartbeat gap: reading the state of queued jobs until caught up");
        }
        // Heartbeats sent at once (a state change beside the timer) may
        // come back in any order.
        inner.heartbeat = Some(match inner.heartbeat {
            Some(before) if before.monotonic > sent.monotonic => before,
            _ => sent,
        });
    }

    /// Something may have settled queued jobs unseen (`why`, for the log).
    pub(crate) fn disrupted(&self, why: &str) {
        self.lock().disruptions += 1;
        tracing::debug!(why, "reading the state of queued jobs until caught up");
    }

    /// Cancellation requests can no longer arrive: every job is read first.
    pub(crate) fn deaf(&self) {
        self.lock().deaf = true;
    }

    /// The era now, on the bus's `connects`-th connection.
    pub(crate) fn era(&self, connects: u64) -> Era {
        self.lock().era(connects)
    }

    /// A job was delivered from `kind`, with `pending` more behind it, on
    /// the bus's `connects`-th connection, by a consumer that has asked the
    /// bus for messages only since era `asked` (see
    /// [`osapi_bus::JobConsumer::restart`]): a message fetched earlier may
    /// say "nothing behind me" of a queue that has grown since.
    pub(crate) fn delivered(
        &self,
        kind: QueueKind,
        pending: Option<u64>,
        connects: u64,
        asked: Era,
    ) -> Ticket {
        let mut inner = self.lock();
        let era = inner.era(connects);
        let own_queue = kind == QueueKind::Host;
        let behind = inner.caught_up != Some(era);
        if own_queue && pending == Some(0) && asked == era {
            inner.caught_up = Some(era);
        }
        Ticket {
            era,
            behind,
            own_queue,
        }
    }

    /// True when a job delivered with `ticket` may start without reading
    /// whether it was settled: see the module's documentation.
    pub(crate) fn may_skip_read(
        &self,
        ticket: Ticket,
        redelivered: bool,
        deadline: OffsetDateTime,
        connects: u64,
    ) -> bool {
        let inner = self.lock();
        let era = inner.era(connects);
        let heartbeat_fresh = inner
            .heartbeat
            .is_some_and(|h| h.elapsed() <= self.gap_limit);
        let deadline_far = deadline - OffsetDateTime::now_utc() > DEADLINE_MARGIN;
        ticket.own_queue
            && !redelivered
            && !ticket.behind
            && ticket.era == era
            && heartbeat_fresh
            && deadline_far
            && !inner.deaf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    fn later() -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::from_secs(60)
    }

    /// Heartbeating, with the own queue caught up on connection 1.
    fn caught_up() -> Freshness {
        let f = Freshness::new(TTL);
        f.heartbeat_went_through(Moment::now());
        f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        f
    }

    #[test]
    fn a_job_delivered_on_a_caught_up_queue_skips_the_read() {
        let f = caught_up();
        let t = f.delivered(QueueKind::Host, Some(3), 1, f.era(1));
        assert!(f.may_skip_read(t, false, later(), 1));
    }

    #[test]
    fn jobs_are_read_until_the_queue_is_first_caught_up() {
        let f = Freshness::new(TTL);
        f.heartbeat_went_through(Moment::now());
        // Left in the queue before the agent started: read.
        let t = f.delivered(QueueKind::Host, Some(1), 1, f.era(1));
        assert!(!f.may_skip_read(t, false, later(), 1));
        // The last of them, read too: it may also have waited.
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(!f.may_skip_read(t, false, later(), 1));
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(f.may_skip_read(t, false, later(), 1));
        // A bus that does not say what is left never catches up: read,
        // always.
        let g = Freshness::new(TTL);
        g.heartbeat_went_through(Moment::now());
        for _ in 0..3 {
            let t = g.delivered(QueueKind::Host, None, 1, g.era(1));
            assert!(!g.may_skip_read(t, false, later(), 1));
        }
    }

    #[test]
    fn a_new_connection_means_reading_until_caught_up_again() {
        let f = caught_up();
        // Delivered before the connection was made again, started after.
        let waiting = f.delivered(QueueKind::Host, Some(5), 1, f.era(1));
        assert!(!f.may_skip_read(waiting, false, later(), 2));
        // Delivered on the new connection, the queue not caught up on it.
        let t = f.delivered(QueueKind::Host, Some(4), 2, f.era(2));
        assert!(!f.may_skip_read(t, false, later(), 2));
        f.delivered(QueueKind::Host, Some(0), 2, f.era(2));
        let t = f.delivered(QueueKind::Host, Some(0), 2, f.era(2));
        assert!(f.may_skip_read(t, false, later(), 2));
    }

    #[test]
    fn a_message_fetched_before_a_disruption_does_not_say_the_queue_is_caught_up() {
        let f = caught_up();
        let asked = f.era(1);
        f.disrupted("test");
        // Fetched before, returned after: read, and it proves nothing of
        // what was queued meanwhile.
        let held = f.delivered(QueueKind::Host, Some(0), 1, asked);
        assert!(!f.may_skip_read(held, false, later(), 1));
        let next = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(!f.may_skip_read(next, false, later(), 1));
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(f.may_skip_read(t, false, later(), 1));
    }

    #[test]
    fn a_disruption_means_reading_until_caught_up_again() {
        let f = caught_up();
        let waiting = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        f.disrupted("test");
        assert!(!f.may_skip_read(waiting, false, later(), 1));
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(!f.may_skip_read(t, false, later(), 1));
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(f.may_skip_read(t, false, later(), 1));
        f.deaf();
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(!f.may_skip_read(t, false, later(), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_in_heartbeats_is_a_disruption_and_a_stale_one_means_reading() {
        let f = caught_up();
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(f.may_skip_read(t, false, later(), 1));
        tokio::time::advance(TTL / 2 + Duration::from_millis(1)).await;
        // No heartbeat for longer than half the time to live (a stopped
        // process, say): read, even before the next heartbeat says so.
        assert!(!f.may_skip_read(t, false, later(), 1));
        f.heartbeat_went_through(Moment::now());
        assert!(!f.may_skip_read(t, false, later(), 1), "a disruption now");
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(!f.may_skip_read(t, false, later(), 1));
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(f.may_skip_read(t, false, later(), 1));
        // Heartbeats within the limit: no disruption.
        tokio::time::advance(TTL / 3).await;
        f.heartbeat_went_through(Moment::now());
        assert!(f.may_skip_read(t, false, later(), 1));
    }

    #[test]
    fn time_the_machine_slept_counts() {
        let f = caught_up();
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(f.may_skip_read(t, false, later(), 1));
        // As if suspended for the whole time to live since the heartbeat:
        // the monotonic clock did not move, the wall clock did.
        f.lock().heartbeat = Some(Moment {
            monotonic: Instant::now(),
            wall: std::time::SystemTime::now() - TTL,
        });
        assert!(!f.may_skip_read(t, false, later(), 1));
    }

    #[test]
    fn shared_queue_redelivered_and_nearly_due_jobs_are_read() {
        let f = caught_up();
        let any = f.delivered(QueueKind::Any, Some(0), 1, f.era(1));
        assert!(!f.may_skip_read(any, false, later(), 1));
        let t = f.delivered(QueueKind::Host, Some(0), 1, f.era(1));
        assert!(!f.may_skip_read(t, true, later(), 1));
        let soon = OffsetDateTime::now_utc() + Duration::from_secs(2);
        assert!(!f.may_skip_read(t, false, soon, 1));
        assert!(f.may_skip_read(t, false, later(), 1));
    }
}
