//! Job notifications on the `<ns>-JOBS` work-queue stream. `_any` jobs go to
//! `<ns>.jobs.<class>._any`, read by one durable consumer shared by every
//! agent (each job to exactly one); a host's jobs go to
//! `<ns>.jobs.<class>.host.<host>`, read by that host's durable consumer.
//! A job is acknowledged when taken, so it is run once: an `_any` job's
//! acknowledgement is confirmed by the server first; a host's own job is
//! acknowledged without waiting, and a copy delivered again (its
//! acknowledgement lost) carries the same stream sequence, by which the
//! agent knows it for a job it took.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::stream;
use async_trait::async_trait;
use futures::StreamExt;
use osapi_api::ops::JobClass;
use osapi_api::records::JobRecord;
use osapi_api::target::sanitize_key;
use uuid::Uuid;

use super::Conn;
use super::util::{backend, encode};
use crate::cancel::CancelSource;
use crate::{BusError, BusResult, CancelFeed, Delivery, JobConsumer, JobQueue, QueueKind, Route};

/// Job notifications on NATS.
pub struct NatsJobQueue {
    conn: Arc<Conn>,
    stream: stream::Stream<()>,
}

impl NatsJobQueue {
    pub(crate) fn new(conn: Arc<Conn>, stream: stream::Stream<()>) -> Self {
        NatsJobQueue { conn, stream }
    }

    /// Publishes a notification and waits for the stream's acknowledgement.
    async fn send(&self, class: JobClass, route: &Route, payload: bytes::Bytes) -> BusResult<()> {
        let root = self.conn.config.subject_root();
        let subject = match &route {
            Route::Any => format!("{root}.{}._any", class.as_str()),
            Route::Host(h) => format!("{root}.{}.host.{}", class.as_str(), sanitize_key(h)),
        };
        let ack = self
            .conn
            .js
            .publish(subject, payload)
            .await
            .map_err(|e| backend("publish job", e))?;
        ack.await
            .map_err(|e| backend("publish job (no acknowledgement)", e))?;
        Ok(())
    }
}

#[async_trait]
impl JobQueue for NatsJobQueue {
    async fn publish(&self, job_id: Uuid, class: JobClass, route: Route) -> BusResult<()> {
        self.send(class, &route, job_id.to_string().into()).await
    }

    async fn publish_record(&self, record: Arc<JobRecord>, route: Route) -> BusResult<()> {
        self.send(record.class, &route, encode(&*record)?).await
    }

    async fn cancel(&self, job_id: Uuid, hostname: &str) -> BusResult<()> {
        self.conn
            .client
            .publish(self.cancel_subject(hostname), job_id.to_string().into())
            .await
            .map_err(|e| backend("send a cancellation", e))
    }

    async fn cancellations(&self, hostname: &str) -> BusResult<CancelFeed> {
        let subscriber = self
            .conn
            .client
            .subscribe(self.cancel_subject(hostname))
            .await
            .map_err(|e| backend("listen for cancellations", e))?;
        Ok(CancelFeed::new(Cancellations(subscriber)))
    }

    fn connects(&self) -> u64 {
        self.conn
            .client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn consumer(&self, hostname: &str, kind: QueueKind) -> BusResult<Box<dyn JobConsumer>> {
        let (name, config, route) = self.consumer_config(hostname, kind);
        let mut consumer = NatsConsumer {
            stream: self.stream.clone(),
            name,
            config,
            route,
            consumer: None,
            opened_once: false,
            messages: None,
        };
        consumer.open().await?;
        Ok(Box::new(consumer))
    }
}

impl NatsJobQueue {
    /// Where an agent hears that a job it runs is cancelled: the core (not
    /// stored) subject `<ns>.cancel.<host>`.
    fn cancel_subject(&self, hostname: &str) -> String {
        let ns = &self.conn.config.namespace;
        let host = sanitize_key(hostname);
        if ns.is_empty() {
            format!("cancel.{host}")
        } else {
            format!("{ns}.cancel.{host}")
        }
    }

    /// The durable consumer of one of an agent's queues: its name, config
    /// and route.
    fn consumer_config(&self, hostname: &str, kind: QueueKind) -> (String, pull::Config, Route) {
        let root = self.conn.config.subject_root();
        let (name, filter, route, inactive, memory_storage) = match kind {
            QueueKind::Any => (
                "any".to_string(),
                format!("{root}.*._any"),
                Route::Any,
                Duration::ZERO,
                false,
            ),
            QueueKind::Host => (
                format!("host_{}", sanitize_key(hostname)),
                format!("{root}.*.host.{}", sanitize_key(hostname)),
                Route::Host(hostname.to_string()),
                // Consumers of decommissioned hosts go away after a day.
                Duration::from_secs(24 * 3600),
                // A host's consumer keeps its state in memory: nats-server
                // writes no file when it is created (most of the cost of an
                // agent's start) or when a job is acknowledged. Nothing is
                // lost with it: the work-queue stream keeps every job not
                // yet acknowledged, and the agent creates the consumer
                // again (delivering from the start) after a restart of
                // nats-server. The shared `_any` consumer stays on disk:
                // only controllers may create it.
                true,
            ),
        };
        let config = pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: filter,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.conn.config.ack_wait,
            deliver_policy: DeliverPolicy::All,
            inactive_threshold: inactive,
            max_ack_pending: 10_000,
            memory_storage,
            ..Default::default()
        };
        (name, config, route)
    }

    /// Creates the shared `_any` consumer (controllers do, so that agents
    /// need no right to create or change it).
    pub(crate) async fn ensure_any_consumer(&self) -> BusResult<()> {
        let (name, config, _) = self.consumer_config("", QueueKind::Any);
        self.stream
            .get_or_create_consumer(&name, config)
            .await
            .map(|_: PullConsumer| ())
            .map_err(|e| backend(&format!("create consumer {name}"), e))
    }
}

/// Cancellation requests, read straight off the connection's subscription
/// (so a job about to start sees every one that came before it).
struct Cancellations(async_nats::Subscriber);

impl CancelSource for Cancellations {
    fn poll_cancel(&mut self, cx: &mut Context<'_>) -> Poll<Option<Uuid>> {
        loop {
            match self.0.poll_next_unpin(cx) {
                Poll::Ready(Some(m)) => {
                    let id = std::str::from_utf8(&m.payload)
                        .ok()
                        .and_then(|t| Uuid::parse_str(t.trim()).ok());
                    if let Some(id) = id {
                        return Poll::Ready(Some(id));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

struct NatsConsumer {
    stream: stream::Stream<()>,
    name: String,
    config: pull::Config,
    route: Route,
    consumer: Option<PullConsumer>,
    /// Opened before in this process (a reopening reads before it writes).
    opened_once: bool,
    /// A standing pull of one message at a time (a message held in the
    /// client would be redelivered after `ack_wait` while the agent is busy
    /// or drained); kept across calls so a wait that ends loses nothing.
    messages: Option<pull::Stream>,
}

impl NatsConsumer {
    async fn open(&mut self) -> BusResult<&PullConsumer> {
        if self.consumer.is_none() {
            let opened = match self.route {
                Route::Host(_) if !self.opened_once => self.make_or_keep().await,
                // Opened again after a connection or consumer error (every
                // agent at once, after a blip): read first, which changes
                // nothing on the server (an update of a clustered consumer
                // is a write to the cluster's log), made only if gone (a
                // restart of nats-server drops consumers kept in memory).
                // The shared `_any` one is made by controllers.
                Route::Host(_) | Route::Any => self
                    .stream
                    .get_or_create_consumer(&self.name, self.config.clone())
                    .await
                    .map_err(|e| backend(&format!("open consumer {}", self.name), e)),
            };
            self.consumer = Some(opened?);
            self.opened_once = true;
        }
        self.consumer
            .as_ref()
            .ok_or_else(|| BusError::Backend("consumer unavailable".into()))
    }

    /// A host's own consumer, at the agent's start: made (or brought up to
    /// date) in one request. Should the server refuse to change one made
    /// otherwise (say, on disk by an older version), that one is used as it
    /// is.
    async fn make_or_keep(&self) -> BusResult<PullConsumer> {
        let made = match self.stream.create_consumer(self.config.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        let kept = self.stream.get_consumer(&self.name).await.map_err(|got| {
            backend(
                &format!("open consumer {}", self.name),
                format!("{made}; then reading it: {got}"),
            )
        })?;
        tracing::warn!(
            consumer = %self.name,
            reason = %made,
            "keeping this host's consumer as it is on the server \
             (delete it while the agent is stopped to have it made afresh)"
        );
        Ok(kept)
    }
}

#[async_trait]
impl JobConsumer for NatsConsumer {
    fn restart(&mut self) {
        self.messages = None;
    }

    async fn next(&mut self, wait: Duration) -> BusResult<Option<Delivery>> {
        if self.messages.is_none() {
            let consumer = self.open().await?.clone();
            let messages = consumer
                .stream()
                .max_messages_per_batch(1)
                .messages()
                .await
                .map_err(|e| {
                    self.consumer = None;
                    backend(&format!("pull from {}", self.name), e)
                })?;
            self.messages = Some(messages);
        }
        let Some(messages) = self.messages.as_mut() else {
            return Ok(None);
        };
        let message = match tokio::time::timeout(wait, messages.next()).await {
            Err(_) => return Ok(None),
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                // Connection or consumer trouble: start over next time.
                self.messages = None;
                self.consumer = None;
                return Err(backend(&format!("pull from {}", self.name), e));
            }
            Ok(None) => {
                self.messages = None;
                return Ok(None);
            }
        };
        // Taken: acknowledged before running, so it is never run twice.
        // `_any` jobs wait for the server to confirm (another agent would
        // take one whose acknowledgement was lost, and run it again). A
        // host's own job is acknowledged without waiting: were the
        // acknowledgement lost, the job would come back to this same agent,
        // which remembers the jobs it took and drops the copy.
        let acked = match self.route {
            Route::Any => message.double_ack().await,
            Route::Host(_) => message.ack().await,
        };
        acked.map_err(|e| backend(&format!("acknowledge job on {}", self.name), e))?;
        let (redelivered, stream_sequence, pending) = match message.info() {
            Ok(info) => (
                info.delivered > 1,
                Some(info.stream_sequence),
                Some(info.pending),
            ),
            Err(_) => (false, None, None),
        };
        // The payload is the job record (ours) or just its id (upstream's shape).
        let record: Option<Arc<JobRecord>> = serde_json::from_slice::<JobRecord>(&message.payload)
            .ok()
            .map(Arc::new);
        let job_id = match &record {
            Some(r) => r.id,
            None => {
                let text = std::str::from_utf8(&message.payload).unwrap_or_default();
                Uuid::parse_str(text.trim()).map_err(|_| {
                    BusError::Corrupt(format!(
                        "job notification {text:?} is neither a job record nor a job id"
                    ))
                })?
            }
        };
        Ok(Some(Delivery {
            job_id,
            route: self.route.clone(),
            record,
            redelivered,
            stream_sequence,
            pending,
        }))
    }
}
