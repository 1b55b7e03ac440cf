//! Wakes long-polling requests (`GET /job/{id}?wait=…`, the synchronous node
//! endpoints) when their job may have ended (a host's terminal event), fed by
//! the bus's change listeners. Agents joining or leaving wake every waiter, so lost
//! hosts are noticed at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use osapi_bus::{Bus, ChangeKind, RegistryEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use uuid::Uuid;

use crate::directory::AgentDirectory;
use crate::metrics::{ControllerMetrics, WaitingGuard};

/// Registry of waiting requests.
pub struct Waiters {
    jobs: Mutex<HashMap<Uuid, watch::Sender<u64>>>,
    everyone: watch::Sender<u64>,
    metrics: Arc<ControllerMetrics>,
}

/// A request's subscription; unregisters on drop.
pub struct Waiter {
    hub: Arc<Waiters>,
    id: Uuid,
    /// Bumped when this job changes.
    pub job: watch::Receiver<u64>,
    /// Bumped when every waiter should look again.
    pub all: watch::Receiver<u64>,
    _counted: WaitingGuard,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut jobs = crate::lock(&self.hub.jobs);
        // Our receiver is still alive here, so 1 means "only us".
        if jobs
            .get(&self.id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            jobs.remove(&self.id);
        }
    }
}

impl Waiters {
    /// Starts the feed tasks for `bus` and returns the hub.
    pub fn start(
        bus: &Bus,
        directory: Arc<AgentDirectory>,
        metrics: Arc<ControllerMetrics>,
    ) -> Arc<Waiters> {
        let hub = Arc::new(Waiters {
            jobs: Mutex::new(HashMap::new()),
            everyone: watch::channel(0).0,
            metrics: metrics.clone(),
        });
        // Woken in the task that wrote or saw the change: no hop through a
        // task of ours between an agent's answer and the request it ends.
        let weak = Arc::downgrade(&hub);
        bus.jobs.on_change(Arc::new(move |c| {
            let Some(hub) = weak.upgrade() else { return };
            if c.kind == ChangeKind::Resync {
                hub.wake_all();
            } else if c.may_settle() {
                hub.wake(c.job_id);
            }
        }));
        let mut registry_changes = bus.registry.subscribe();
        let mut drain_changes = bus.state.subscribe();
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            loop {
                let closed = tokio::select! {
                    r = registry_changes.recv() => {
                        match &r {
                            Ok(RegistryEvent::Left { hostname }) => {
                                tracing::debug!(%hostname, "agent left");
                                metrics.agent_left(hostname);
                            }
                            Ok(RegistryEvent::Joined { hostname, .. }) => metrics.agent_joined(hostname),
                            _ => {}
                        }
                        matches!(r, Err(RecvError::Closed))
                    }
                    r = drain_changes.recv() => matches!(r, Err(RecvError::Closed)),
                };
                directory.invalidate();
                let Some(hub) = weak.upgrade() else { return };
                if closed {
                    return;
                }
                hub.wake_all();
            }
        });
        hub
    }

    /// Subscribes to changes of job `id`.
    pub fn watch(self: &Arc<Self>, id: Uuid) -> Waiter {
        let job = crate::lock(&self.jobs)
            .entry(id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Waiter {
            hub: self.clone(),
            id,
            job,
            all: self.everyone.subscribe(),
            _counted: self.metrics.waiting(),
        }
    }

    fn wake(&self, id: Uuid) {
        if let Some(tx) = crate::lock(&self.jobs).get(&id) {
            tx.send_modify(|v| *v += 1);
        }
    }

    /// Wakes every waiter.
    pub fn wake_all(&self) {
        self.everyone.send_modify(|v| *v += 1);
    }
}
