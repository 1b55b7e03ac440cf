//! A job store's change feed: listeners called at once, in the writer's
//! task, and a broadcast channel for consumers that read changes at their
//! own pace.
//!
//! Listeners suit cheap reactions that must not wait for a task to be
//! scheduled (waking a long-poll); they never lag. Receivers suit work that
//! reads the store (an index), and treat a lag as "everything changed".

use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

use crate::{ChangeListener, JobChange};

/// Changes to jobs, to listeners and receivers.
pub(crate) struct ChangeFeed {
    listeners: Mutex<Arc<[ChangeListener]>>,
    /// Made by the first receiver: its buffer (`capacity` slots, written
    /// when made: 768 KiB for 16 384) is memory a process that never
    /// reads changes (an agent) does not carry.
    changes: OnceLock<broadcast::Sender<JobChange>>,
    capacity: usize,
}

impl ChangeFeed {
    /// A feed whose receivers lag after `capacity` unread changes.
    pub(crate) fn new(capacity: usize) -> Self {
        ChangeFeed {
            listeners: Mutex::new(Arc::new([])),
            changes: OnceLock::new(),
            capacity,
        }
    }

    /// Tells every listener, then every receiver.
    pub(crate) fn send(&self, change: JobChange) {
        let listeners = crate::lock(&self.listeners).clone();
        for listener in listeners.iter() {
            listener(&change);
        }
        // No receiver (or none ever) is fine: nobody is reading.
        if let Some(changes) = self.changes.get() {
            let _ = changes.send(change);
        }
    }

    /// A receiver of the changes from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<JobChange> {
        self.changes
            .get_or_init(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Calls `listener` with every change from now on.
    pub(crate) fn listen(&self, listener: ChangeListener) {
        let mut listeners = crate::lock(&self.listeners);
        let mut all: Vec<ChangeListener> = listeners.iter().cloned().collect();
        all.push(listener);
        *listeners = all.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChangeKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn listeners_hear_every_change_before_receivers() {
        let feed = ChangeFeed::new(1);
        let heard = Arc::new(AtomicUsize::new(0));
        let count = heard.clone();
        feed.listen(Arc::new(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        }));
        let mut rx = feed.subscribe();
        let change = |n: u128| JobChange {
            job_id: uuid::Uuid::from_u128(n),
            kind: ChangeKind::Created,
        };
        for n in 0..3 {
            feed.send(change(n));
        }
        // The receiver lagged (capacity 1); the listener did not.
        assert_eq!(heard.load(Ordering::SeqCst), 3);
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(2))
        ));
        assert_eq!(rx.try_recv().unwrap(), change(2));
    }

    #[test]
    fn receivers_hear_what_is_sent_after_they_subscribe() {
        let feed = ChangeFeed::new(4);
        let change = |n: u128| JobChange {
            job_id: uuid::Uuid::from_u128(n),
            kind: ChangeKind::Created,
        };
        // Before any receiver: no buffer, nothing kept.
        feed.send(change(0));
        assert!(feed.changes.get().is_none());
        let mut first = feed.subscribe();
        feed.send(change(1));
        let mut second = feed.subscribe();
        feed.send(change(2));
        assert_eq!(first.try_recv().unwrap(), change(1));
        assert_eq!(first.try_recv().unwrap(), change(2));
        assert_eq!(second.try_recv().unwrap(), change(2));
        assert!(second.try_recv().is_err());
    }
}
