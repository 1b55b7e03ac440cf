//! In-memory job queues: one shared `_any` work queue that hands each job to
//! exactly one consumer, and one queue per host.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use osapi_api::ops::JobClass;
use osapi_api::target::sanitize_key;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::lock;
use crate::{BusResult, CancelFeed, Delivery, JobConsumer, JobQueue, QueueKind, Route};

/// One FIFO queue with a wake-up for waiting consumers.
#[derive(Default)]
struct Queue {
    items: Mutex<VecDeque<Uuid>>,
    notify: Notify,
}

impl Queue {
    fn push(&self, id: Uuid) {
        lock(&self.items).push_back(id);
        self.notify.notify_one();
    }

    /// The first item and how many are left behind it.
    fn pop(&self) -> Option<(Uuid, usize)> {
        let mut items = lock(&self.items);
        let item = items.pop_front()?;
        if !items.is_empty() {
            // Pass the turn on so another waiting consumer takes the rest.
            self.notify.notify_one();
        }
        Some((item, items.len()))
    }
}

#[derive(Default)]
struct Shared {
    any: Arc<Queue>,
    hosts: Mutex<HashMap<String, Arc<Queue>>>,
    /// The agents listening for cancellations, by host.
    cancels: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Uuid>>>>,
}

impl Shared {
    fn host(&self, hostname: &str) -> Arc<Queue> {
        lock(&self.hosts)
            .entry(sanitize_key(hostname))
            .or_default()
            .clone()
    }

    /// Tells every agent listening as `hostname` (agents that stopped
    /// listening are forgotten).
    fn cancel(&self, hostname: &str, job_id: Uuid) {
        if let Some(listeners) = lock(&self.cancels).get_mut(&sanitize_key(hostname)) {
            listeners.retain(|l| l.send(job_id).is_ok());
        }
    }

    fn listen(&self, hostname: &str) -> mpsc::UnboundedReceiver<Uuid> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.cancels)
            .entry(sanitize_key(hostname))
            .or_default()
            .push(tx);
        rx
    }
}

/// Job queues held in memory.
#[derive(Default)]
pub struct MemoryJobQueue {
    shared: Arc<Shared>,
}

impl MemoryJobQueue {
    /// Empty queues.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl JobQueue for MemoryJobQueue {
    async fn publish(&self, job_id: Uuid, _class: JobClass, route: Route) -> BusResult<()> {
        match route {
            Route::Any => self.shared.any.push(job_id),
            Route::Host(h) => self.shared.host(&h).push(job_id),
        }
        Ok(())
    }

    async fn cancel(&self, job_id: Uuid, hostname: &str) -> BusResult<()> {
        // No listener: the agent is not running, nothing to stop.
        self.shared.cancel(hostname, job_id);
        Ok(())
    }

    async fn cancellations(&self, hostname: &str) -> BusResult<CancelFeed> {
        Ok(CancelFeed::new(self.shared.listen(hostname)))
    }

    async fn consumer(&self, hostname: &str, kind: QueueKind) -> BusResult<Box<dyn JobConsumer>> {
        let (queue, route) = match kind {
            QueueKind::Any => (self.shared.any.clone(), Route::Any),
            QueueKind::Host => (
                self.shared.host(hostname),
                Route::Host(hostname.to_string()),
            ),
        };
        Ok(Box::new(MemoryConsumer { queue, route }))
    }
}

struct MemoryConsumer {
    queue: Arc<Queue>,
    route: Route,
}

#[async_trait]
impl JobConsumer for MemoryConsumer {
    async fn next(&mut self, wait: Duration) -> BusResult<Option<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.queue.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some((job_id, left)) = self.queue.pop() {
                return Ok(Some(Delivery {
                    job_id,
                    route: self.route.clone(),
                    record: None,
                    redelivered: false,
                    stream_sequence: None,
                    pending: Some(left as u64),
                }));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn any_jobs_go_to_exactly_one_consumer() {
        let q = MemoryJobQueue::new();
        let mut a = q.consumer("a", QueueKind::Any).await.unwrap();
        let mut b = q.consumer("b", QueueKind::Any).await.unwrap();
        let ids: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            q.publish(*id, JobClass::Query, Route::Any).await.unwrap();
        }
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.push(a.next(WAIT).await.unwrap().unwrap().job_id);
            seen.push(b.next(WAIT).await.unwrap().unwrap().job_id);
        }
        seen.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn host_jobs_only_reach_their_host() {
        let q = MemoryJobQueue::new();
        let mut a = q.consumer("web-01", QueueKind::Host).await.unwrap();
        let mut b = q.consumer("web-02", QueueKind::Host).await.unwrap();
        let id = Uuid::new_v4();
        q.publish(id, JobClass::Modify, Route::Host("web-02".into()))
            .await
            .unwrap();
        let got = b.next(WAIT).await.unwrap().unwrap();
        assert_eq!(got.job_id, id);
        assert_eq!(got.route, Route::Host("web-02".into()));
        assert!(
            a.next(Duration::from_millis(20)).await.unwrap().is_none(),
            "web-01 must not receive web-02's job"
        );
    }

    #[tokio::test]
    async fn waiting_consumer_wakes_on_publish() {
        let q = Arc::new(MemoryJobQueue::new());
        let mut a = q.consumer("a", QueueKind::Any).await.unwrap();
        let waiter = tokio::spawn(async move { a.next(WAIT).await.unwrap().unwrap().job_id });
        tokio::task::yield_now().await;
        let id = Uuid::new_v4();
        q.publish(id, JobClass::Query, Route::Any).await.unwrap();
        assert_eq!(waiter.await.unwrap(), id);
    }
}
