//! Cancellation requests for one agent, read two ways: awaited by the task
//! that stops running jobs, and taken at once, without waiting, by a job
//! about to start. The second way is what lets a job trust that no request
//! to cancel it has arrived: whatever the connection handed over before the
//! job itself is read then, not left in a channel for another task to get
//! to later.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use uuid::Uuid;

use crate::lock;

/// Where a backend's requests come from, in the order they arrived.
pub(crate) trait CancelSource: Send {
    /// The next request; `Ready(None)` once the backend closed the feed.
    fn poll_cancel(&mut self, cx: &mut Context<'_>) -> Poll<Option<Uuid>>;
}

/// Requests to cancel jobs, sent to one agent (see
/// [`JobQueue::cancellations`](crate::JobQueue::cancellations)). Shared by
/// reference: [`CancelFeed::wait`] waits for one to arrive,
/// [`CancelFeed::arrived`] reads them, each once.
pub struct CancelFeed {
    inner: Mutex<Inner>,
}

struct Inner {
    source: Box<dyn CancelSource>,
    /// Arrived and not read yet.
    held: VecDeque<Uuid>,
    /// The waker of the last [`CancelFeed::wait`], so that reading what
    /// arrived leaves it registered for what comes next.
    waiter: Option<Waker>,
    ended: bool,
}

impl std::fmt::Debug for CancelFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelFeed").finish_non_exhaustive()
    }
}

impl CancelFeed {
    pub(crate) fn new(source: impl CancelSource + 'static) -> Self {
        CancelFeed {
            inner: Mutex::new(Inner {
                source: Box::new(source),
                held: VecDeque::new(),
                waiter: None,
                ended: false,
            }),
        }
    }

    /// Waits until a request has arrived (read it with
    /// [`CancelFeed::arrived`]); `false` once the bus closed the feed and
    /// every request was read.
    pub async fn wait(&self) -> bool {
        std::future::poll_fn(|cx| {
            let mut inner = lock(&self.inner);
            if !inner.held.is_empty() {
                return Poll::Ready(true);
            }
            if inner.ended {
                return Poll::Ready(false);
            }
            inner.waiter = Some(cx.waker().clone());
            match inner.source.poll_cancel(cx) {
                Poll::Ready(Some(id)) => {
                    inner.held.push_back(id);
                    Poll::Ready(true)
                }
                Poll::Ready(None) => {
                    inner.ended = true;
                    Poll::Ready(false)
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// The requests that have arrived and were not read yet, without
    /// waiting: every request that reached this agent's connection before
    /// the job it took last (a connection hands messages over in the order
    /// they came).
    pub fn arrived(&self) -> Vec<Uuid> {
        let mut inner = lock(&self.inner);
        let waker = inner
            .waiter
            .clone()
            .unwrap_or_else(|| Waker::noop().clone());
        let mut cx = Context::from_waker(&waker);
        let mut out: Vec<Uuid> = inner.held.drain(..).collect();
        // Unconstrained: tokio's channels answer "nothing yet" once a task
        // has used its budget of operations, which would hide requests that
        // did arrive.
        let mut read = std::pin::pin!(tokio::task::unconstrained(std::future::poll_fn(|cx| {
            while !inner.ended {
                match inner.source.poll_cancel(cx) {
                    Poll::Ready(Some(id)) => out.push(id),
                    Poll::Ready(None) => inner.ended = true,
                    Poll::Pending => break,
                }
            }
            Poll::Ready(())
        })));
        // Ready on the first poll: the closure never waits.
        let _ = read.as_mut().poll(&mut cx);
        out
    }
}

/// The memory backend's source: a channel per listening agent.
impl CancelSource for tokio::sync::mpsc::UnboundedReceiver<Uuid> {
    fn poll_cancel(&mut self, cx: &mut Context<'_>) -> Poll<Option<Uuid>> {
        self.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_arrived_is_read_at_once_and_the_waiting_reader_still_hears_the_rest() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let feed = std::sync::Arc::new(CancelFeed::new(rx));
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(feed.arrived().is_empty());
        // A reader waits; what arrives meanwhile is read without waiting
        // (on this one-thread runtime, the reader cannot run before the
        // next await).
        let reader = tokio::spawn({
            let feed = feed.clone();
            async move { feed.wait().await }
        });
        tokio::task::yield_now().await;
        tx.send(a).unwrap();
        tx.send(b).unwrap();
        assert_eq!(feed.arrived(), vec![a, b]);
        // The reader is still registered: the next request wakes it, and
        // waiting reads nothing.
        tx.send(c).unwrap();
        assert!(reader.await.unwrap());
        assert_eq!(feed.arrived(), vec![c]);
        tx.send(a).unwrap();
        drop(tx);
        assert!(feed.wait().await);
        assert_eq!(feed.arrived(), vec![a]);
        assert!(!feed.wait().await, "closed, and everything read");
        assert!(feed.arrived().is_empty());
    }

    #[tokio::test]
    async fn every_request_that_arrived_is_read_however_many() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let feed = CancelFeed::new(rx);
        // More than tokio's budget of operations per task (128).
        let sent: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
        for id in &sent {
            tx.send(*id).unwrap();
        }
        assert_eq!(feed.arrived(), sent);
    }
}
