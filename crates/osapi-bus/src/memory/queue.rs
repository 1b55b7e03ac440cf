//! In-memory job queues: one shared `_any` work queue that hands each job to
//! exactly one consumer, and one queue per host.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use osapi_api::ops::JobClass;
use osapi_api::target::sanitize_key;
use tokio::sync::Notify;
use uuid::Uuid;

use super::lock;
use crate::{BusResult, Delivery, JobConsumer, JobQueue, Route};

#[derive(Default)]
struct HostQueue {
    items: Mutex<VecDeque<(Uuid, JobClass)>>,
    notify: Notify,
}

#[derive(Default)]
struct Shared {
    any: Mutex<VecDeque<(Uuid, JobClass)>>,
    any_notify: Notify,
    hosts: Mutex<HashMap<String, Arc<HostQueue>>>,
}

impl Shared {
    fn host(&self, hostname: &str) -> Arc<HostQueue> {
        lock(&self.hosts)
            .entry(sanitize_key(hostname))
            .or_default()
            .clone()
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
    async fn publish(&self, job_id: Uuid, class: JobClass, route: Route) -> BusResult<()> {
        match route {
            Route::Any => {
                lock(&self.shared.any).push_back((job_id, class));
                self.shared.any_notify.notify_one();
            }
            Route::Host(h) => {
                let q = self.shared.host(&h);
                lock(&q.items).push_back((job_id, class));
                q.notify.notify_one();
            }
        }
        Ok(())
    }

    async fn consumer(&self, hostname: &str) -> BusResult<Box<dyn JobConsumer>> {
        Ok(Box::new(MemoryConsumer {
            hostname: hostname.to_string(),
            own: self.shared.host(hostname),
            shared: self.shared.clone(),
        }))
    }
}

struct MemoryConsumer {
    hostname: String,
    own: Arc<HostQueue>,
    shared: Arc<Shared>,
}

impl MemoryConsumer {
    fn try_pop(&self) -> Option<Delivery> {
        if let Some((job_id, class)) = lock(&self.own.items).pop_front() {
            return Some(Delivery {
                job_id,
                route: Route::Host(self.hostname.clone()),
                class,
            });
        }
        let mut any = lock(&self.shared.any);
        let (job_id, class) = any.pop_front()?;
        if !any.is_empty() {
            // Pass the turn on so another idle consumer picks up the rest.
            self.shared.any_notify.notify_one();
        }
        Some(Delivery {
            job_id,
            route: Route::Any,
            class,
        })
    }
}

#[async_trait]
impl JobConsumer for MemoryConsumer {
    async fn next(&mut self) -> BusResult<Option<Delivery>> {
        loop {
            let own = self.own.notify.notified();
            let any = self.shared.any_notify.notified();
            tokio::pin!(own, any);
            own.as_mut().enable();
            any.as_mut().enable();
            if let Some(d) = self.try_pop() {
                return Ok(Some(d));
            }
            tokio::select! {
                _ = own => {}
                _ = any => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn any_jobs_go_to_exactly_one_consumer() {
        let q = MemoryJobQueue::new();
        let mut a = q.consumer("a").await.unwrap();
        let mut b = q.consumer("b").await.unwrap();
        let ids: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            q.publish(*id, JobClass::Query, Route::Any).await.unwrap();
        }
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.push(a.next().await.unwrap().unwrap().job_id);
            seen.push(b.next().await.unwrap().unwrap().job_id);
        }
        seen.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn host_jobs_only_reach_their_host() {
        let q = MemoryJobQueue::new();
        let mut a = q.consumer("web-01").await.unwrap();
        let mut b = q.consumer("web-02").await.unwrap();
        let id = Uuid::new_v4();
        q.publish(id, JobClass::Modify, Route::Host("web-02".into()))
            .await
            .unwrap();
        let got = b.next().await.unwrap().unwrap();
        assert_eq!(got.job_id, id);
        assert_eq!(got.route, Route::Host("web-02".into()));
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(20), a.next()).await;
        assert!(nothing.is_err(), "web-01 must not receive web-02's job");
    }

    #[tokio::test]
    async fn waiting_consumer_wakes_on_publish() {
        let q = Arc::new(MemoryJobQueue::new());
        let mut a = q.consumer("a").await.unwrap();
        let waiter = tokio::spawn(async move { a.next().await.unwrap().unwrap().job_id });
        tokio::task::yield_now().await;
        let id = Uuid::new_v4();
        q.publish(id, JobClass::Query, Route::Any).await.unwrap();
        assert_eq!(waiter.await.unwrap(), id);
    }
}
