//! The `osapi.yaml` file, following upstream's tree for the keys we use (and
//! ignoring the others), plus `OSAPI_*` environment overrides: the dotted path
//! of any key, upper-cased with `_` for `.` (`OSAPI_API_SERVER_SECURITY_SIGNING_KEY`).
//! Values given in the environment are read as YAML, so
//! `OSAPI_AGENT_LABELS='{role: web}'` works for maps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use osapi_agent::conditions::ConditionThresholds;
use osapi_agent::providers::{DEFAULT_RESOLV_CONF, ProviderConfig, ResolvectlMode};
use osapi_agent::{AgentConfig, AgentSecurity};
use osapi_api::format::{go_duration, parse_duration, parse_size};
use osapi_api::signing::{JobSigner, PublicKey};
use osapi_bus::memory::MemoryBusConfig;
use osapi_bus::nats::{BucketSettings, NatsAuth, NatsConfig, NatsSecurity, NatsTls};
use osapi_server::{ConnectionLimits, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value as JsonValue;
use yaml_serde::Value;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OsapiFile {
    /// Debug logging.
    pub debug: bool,
    /// `api.*`
    pub api: ApiSection,
    /// `agent.*`
    pub agent: AgentSection,
    /// `nats.*`: streams and buckets.
    pub nats: NatsSection,
    /// `telemetry.*`: metrics and traces.
    pub telemetry: TelemetrySection,
}

/// `telemetry.*` (upstream's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetrySection {
    /// `telemetry.metrics.*`
    pub metrics: MetricsSection,
    /// `telemetry.tracing.*`
    pub tracing: TracingSection,
}

/// `telemetry.metrics.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSection {
    /// Path of the controller's Prometheus endpoint (default `/metrics`;
    /// empty: not served).
    pub path: String,
    /// A scrape needs a token with `health:read` (ours; default false, as
    /// upstream serves it to anyone).
    pub auth: bool,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            path: "/metrics".into(),
            auth: false,
        }
    }
}

/// `telemetry.tracing.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TracingSection {
    /// Spans are exported at all.
    pub enabled: bool,
    /// `""` or `none`: spans go nowhere (logs still carry their fields);
    /// `stdout`: one JSON line per finished span on standard output;
    /// `otlp`: to `otlp_endpoint` (a build with the `otel` cargo feature).
    pub exporter: String,
    /// OTLP collector (OTLP/HTTP), e.g. `http://localhost:4318`.
    pub otlp_endpoint: String,
}

impl Default for TracingSection {
    fn default() -> Self {
        TracingSection {
            enabled: true,
            exporter: String::new(),
            otlp_endpoint: String::new(),
        }
    }
}

/// Where finished spans go (`telemetry.tracing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanExport {
    /// Nowhere.
    None,
    /// JSON lines on standard output.
    Stdout,
    /// An OTLP collector.
    Otlp {
        /// Its address.
        endpoint: String,
    },
}

impl TracingSection {
    /// What the section asks for; an exporter this build cannot honour is an
    /// error naming the key.
    pub fn export(&self) -> Result<SpanExport> {
        if !self.enabled {
            return Ok(SpanExport::None);
        }
        match self.exporter.as_str() {
            "" | "none" => Ok(SpanExport::None),
            "stdout" => Ok(SpanExport::Stdout),
            "otlp" => {
                if self.otlp_endpoint.is_empty() {
                    bail!("telemetry.tracing.otlp_endpoint is required with exporter: otlp");
                }
                Ok(SpanExport::Otlp {
                    endpoint: self.otlp_endpoint.clone(),
                })
            }
            other => {
                bail!("telemetry.tracing.exporter must be none, stdout or otlp, got {other:?}")
            }
        }
    }
}

/// How a process reaches NATS (`api.server.nats`, `agent.nats`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsConnection {
    /// Host; empty means "not configured". `tls://host` turns TLS on.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Prefix of names and subjects.
    pub namespace: String,
    /// Connection name.
    pub client_name: String,
    /// Credentials (upstream's keys, plus `creds` and `token`).
    pub auth: NatsAuthSection,
    /// TLS; present (even `{}`) turns it on.
    pub tls: Option<NatsTlsSection>,
}

impl Default for NatsConnection {
    fn default() -> Self {
        NatsConnection {
            host: String::new(),
            port: 4222,
            namespace: "osapi".into(),
            client_name: String::new(),
            auth: NatsAuthSection::default(),
            tls: None,
        }
    }
}

/// `<…>.nats.auth`: how the process proves who it is to NATS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsAuthSection {
    /// `none`, `user_pass`, `nkey`, `creds` or `token`.
    #[serde(rename = "type")]
    pub kind: String,
    /// User (`user_pass`).
    pub username: String,
    /// Password (`user_pass`), or …
    pub password: String,
    /// … a file holding it.
    pub password_file: String,
    /// File with the nkey seed (`nkey`).
    pub nkey_file: String,
    /// NATS `.creds` file (`creds`).
    pub creds_file: String,
    /// Token (`token`), or …
    pub token: String,
    /// … a file holding it.
    pub token_file: String,
}

impl Default for NatsAuthSection {
    fn default() -> Self {
        NatsAuthSection {
            kind: "none".into(),
            username: String::new(),
            password: String::new(),
            password_file: String::new(),
            nkey_file: String::new(),
            creds_file: String::new(),
            token: String::new(),
            token_file: String::new(),
        }
    }
}

/// `<…>.nats.tls`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsTlsSection {
    /// CA certificates (PEM) the server must chain to; the system's when empty.
    pub ca_file: String,
    /// Client certificate (PEM), for servers that verify clients.
    pub cert_file: String,
    /// Its key (PEM).
    pub key_file: String,
}

/// A size in bytes, written as a count (`52428800`) or with a unit
/// (`50MiB`, `1GB`); see [`parse_size`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a size such as 52428800 or \"50MiB\"")
        })? {
            Raw::Count(n) => Ok(ByteSize(n)),
            Raw::Text(t) => parse_size(&t)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A stream or bucket (`nats.<name>.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreSection {
    /// Bucket name (for `nats.stream`: the stream name).
    pub bucket: String,
    /// Stream name (upstream's key for `nats.stream`).
    pub name: String,
    /// Lifetime of values (`ttl`).
    pub ttl: String,
    /// Lifetime of stream messages (`max_age`).
    pub max_age: String,
    /// Message limit (streams).
    pub max_msgs: i64,
    /// Size limit (0: the default).
    pub max_bytes: ByteSize,
    /// `file` or `memory`.
    pub storage: String,
    /// Replicas.
    pub replicas: usize,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            bucket: String::new(),
            name: String::new(),
            ttl: String::new(),
            max_age: String::new(),
            max_msgs: 0,
            max_bytes: ByteSize(0),
            storage: "file".into(),
            replicas: 1,
        }
    }
}

/// `nats.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsSection {
    /// The job stream.
    pub stream: StoreSection,
    /// Job records.
    pub kv: StoreSection,
    /// Job progress (ours).
    pub progress: StoreSection,
    /// Agent registry (`ttl` = heartbeat expiry).
    pub registry: StoreSection,
    /// Agent facts.
    pub facts: StoreSection,
    /// Drain flags and timelines.
    pub state: StoreSection,
    /// Audit log.
    pub audit: StoreSection,
    /// Uploaded files.
    pub objects: StoreSection,
    /// Deployed-file records.
    pub file_state: StoreSection,
}

/// `api.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiSection {
    /// `api.client.*`
    pub client: ClientSection,
    /// `api.server.*`
    pub server: ServerSection,
}

/// `api.client.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientSection {
    /// Controller URL.
    pub url: String,
    /// `api.client.security.*`
    pub security: ClientSecurity,
}

/// `api.client.security.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientSecurity {
    /// Token the client sends.
    pub bearer_token: String,
}

/// `api.server.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSection {
    /// Listen port.
    pub port: u16,
    /// Listen address (ours; upstream listens on all interfaces).
    pub bind: String,
    /// `api.server.security.*`
    pub security: ServerSecurity,
    /// Largest upload in bytes (ours).
    pub max_upload_bytes: usize,
    /// Default job deadline (ours).
    pub job_timeout: String,
    /// Wait of the synchronous node endpoints (ours).
    pub sync_timeout: String,
    /// Close connections that have not sent complete request headers this
    /// long after opening (or after a request's first byte).
    pub header_read_timeout: String,
    /// Close keep-alive connections idle this long.
    pub idle_timeout: String,
    /// Connections served at once (0: 80 % of the open-file limit).
    pub max_connections: usize,
    /// How long a stopping controller lets requests finish (ours).
    pub shutdown_grace: String,
    /// Proxies (IPs or CIDRs) whose forwarded-for headers the audit log believes.
    pub trusted_proxies: Vec<String>,
    /// Job retention of the in-memory store (`osapi start` without NATS).
    pub jobs: JobsSection,
    /// NATS connection of the controller.
    pub nats: NatsConnection,
    /// Agents older than this semantic version, or reporting none, are
    /// listed with a `VersionSkew` condition (ours). Default: this
    /// controller's `major.minor.0`; empty turns the check off.
    #[serde(deserialize_with = "version_text")]
    pub min_agent_version: String,
}

/// A version setting: a string, or nothing (null reads as empty). A bare
/// number is refused rather than guessed at: YAML reads `1.10` as 1.1.
fn version_text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s),
        other => Err(serde::de::Error::custom(format!(
            "expected a version in quotes, such as \"0.1.0\", got {}",
            yaml_serde::to_string(&other)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        ))),
    }
}

/// `api.server.jobs.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct JobsSection {
    /// Bytes of job records and outputs kept in memory; beyond, the oldest
    /// finished jobs are dropped.
    pub max_bytes: ByteSize,
}

impl Default for JobsSection {
    fn default() -> Self {
        JobsSection {
            max_bytes: ByteSize(MemoryBusConfig::default().max_job_bytes as u64),
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        let d = ServerConfig::default();
        ServerSection {
            port: d.port,
            bind: String::new(),
            security: ServerSecurity::default(),
            max_upload_bytes: d.max_upload_bytes,
            job_timeout: go_duration(d.job_timeout),
            sync_timeout: go_duration(d.sync_timeout),
            header_read_timeout: go_duration(d.limits.header_read_timeout),
            idle_timeout: go_duration(d.limits.idle_timeout),
            max_connections: 0,
            shutdown_grace: go_duration(d.limits.shutdown_grace),
            trusted_proxies: Vec::new(),
            jobs: JobsSection::default(),
            nats: NatsConnection::default(),
            min_agent_version: d
                .min_agent_version
                .map(|v| v.to_string())
                .unwrap_or_default(),
        }
    }
}

/// `api.server.security.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSecurity {
    /// HMAC key (raw string bytes).
    pub signing_key: String,
    /// Accept tokens without an `exp` claim (off by default).
    pub allow_tokens_without_expiry: bool,
    /// Ed25519 key that signs every job (PKCS#8 PEM/DER or a 32-byte seed;
    /// `osapi key generate` writes one).
    pub job_signing_key_file: String,
    /// Roles defined or redefined here.
    pub roles: BTreeMap<String, RoleSection>,
    /// `api.server.security.cors`.
    pub cors: CorsSection,
}

/// `api.server.security.cors`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CorsSection {
    /// Origins browsers may call the API from; empty: any (as upstream).
    pub allow_origins: Vec<String>,
}

/// `api.server.security.roles.<name>`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleSection {
    /// Permissions of the role.
    pub permissions: Vec<String>,
}

/// `agent.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSection {
    /// Identity (default: the OS hostname).
    pub hostname: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Custom facts; the key `interval` sets the collection interval instead
    /// (upstream's `agent.facts.interval`).
    pub facts: BTreeMap<String, JsonValue>,
    /// Condition thresholds.
    pub conditions: ConditionSection,
    /// Concurrent jobs.
    pub max_jobs: usize,
    /// Heartbeat interval (ours); empty: a third of `nats.registry.ttl`.
    pub heartbeat_interval: String,
    /// DNS provider settings (ours).
    pub dns: DnsSection,
    /// Command provider settings (ours).
    pub command: CommandSection,
    /// NATS connection of the agent.
    pub nats: NatsConnection,
    /// Job consumer settings.
    pub consumer: ConsumerSection,
    /// Which jobs the agent accepts.
    pub security: AgentSecuritySection,
    /// Where the agent keeps what must survive a restart (default
    /// `/var/lib/osapi` as root, else `$XDG_STATE_HOME/osapi` or
    /// `~/.local/state/osapi`).
    pub state_dir: String,
    /// `agent.metrics.*` (ours).
    pub metrics: AgentMetricsSection,
    /// How long a stopping agent lets running jobs finish (ours).
    pub shutdown_grace: String,
}

/// `agent.metrics.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentMetricsSection {
    /// Address (`127.0.0.1:9102`) where the agent serves Prometheus metrics
    /// on `/metrics`; empty (the default): not served.
    pub listen: String,
}

/// `agent.security.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSecuritySection {
    /// Controllers' job-signing public keys (base64, as `osapi key generate`
    /// prints them). With any set, only jobs they signed run.
    pub job_verify_keys: Vec<String>,
    /// Run unsigned jobs when no key is set even on a NATS server elsewhere.
    pub allow_unsigned_jobs: bool,
}

/// `agent.consumer.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerSection {
    /// How long a taken-but-unacknowledged job waits before another delivery.
    pub ack_wait: String,
}

impl Default for ConsumerSection {
    fn default() -> Self {
        ConsumerSection {
            ack_wait: go_duration(NatsConfig::default().ack_wait),
        }
    }
}

impl Default for AgentSection {
    fn default() -> Self {
        let d = AgentConfig::default();
        AgentSection {
            hostname: String::new(),
            labels: BTreeMap::new(),
            facts: BTreeMap::new(),
            conditions: ConditionSection::default(),
            max_jobs: d.max_jobs,
            heartbeat_interval: String::new(),
            dns: DnsSection::default(),
            command: CommandSection::default(),
            nats: NatsConnection::default(),
            consumer: ConsumerSection::default(),
            security: AgentSecuritySection::default(),
            state_dir: String::new(),
            metrics: AgentMetricsSection::default(),
            shutdown_grace: go_duration(AgentConfig::default().shutdown_grace),
        }
    }
}

/// `agent.conditions.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ConditionSection {
    /// Percent of memory in use.
    pub memory_pressure_threshold: f64,
    /// Load over CPUs.
    pub high_load_multiplier: f64,
    /// Percent of a filesystem in use.
    pub disk_pressure_threshold: f64,
}

impl Default for ConditionSection {
    fn default() -> Self {
        let d = ConditionThresholds::default();
        ConditionSection {
            memory_pressure_threshold: d.memory_pressure_percent,
            high_load_multiplier: d.high_load_multiplier,
            disk_pressure_threshold: d.disk_pressure_percent,
        }
    }
}

/// `agent.dns.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsSection {
    /// resolv.conf to read and update when resolvectl is not used.
    pub resolv_conf: String,
    /// `auto`, `never` or `always`.
    pub resolvectl: String,
}

impl Default for DnsSection {
    fn default() -> Self {
        DnsSection {
            resolv_conf: DEFAULT_RESOLV_CONF.into(),
            resolvectl: "auto".into(),
        }
    }
}

/// `agent.command.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandSection {
    /// Timeout when the job gives none.
    pub default_timeout: String,
    /// Largest timeout a job may ask for.
    pub max_timeout: String,
}

impl Default for CommandSection {
    fn default() -> Self {
        let d = ProviderConfig::default();
        CommandSection {
            default_timeout: go_duration(d.command_default_timeout),
            max_timeout: go_duration(d.command_max_timeout),
        }
    }
}

impl OsapiFile {
    /// Reads `path` (when given) and applies `OSAPI_*` overrides from this
    /// process's environment.
    pub fn load_with_process_env(path: Option<&Path>) -> Result<OsapiFile> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        OsapiFile::load(path, &env)
    }

    /// Reads `path` (when given) and applies `OSAPI_*` overrides from `env`.
    pub fn load(path: Option<&Path>, env: &BTreeMap<String, String>) -> Result<OsapiFile> {
        let raw: Value = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                if text.trim().is_empty() {
                    Value::Mapping(Default::default())
                } else {
                    yaml_serde::from_str(&text)
                        .with_context(|| format!("{} is not valid YAML", p.display()))?
                }
            }
            None => Value::Mapping(Default::default()),
        };
        let where_ = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".into());
        let parsed: OsapiFile =
            decode(raw).with_context(|| format!("invalid configuration in {where_}"))?;
        let mut tree = yaml_serde::to_value(&parsed).context("cannot re-encode configuration")?;
        let mut applied = false;
        for path in leaf_paths(&tree) {
            let var = format!("OSAPI_{}", path.join("_").to_uppercase());
            if let Some(value) = env.get(&var) {
                let parsed: Value =
                    yaml_serde::from_str(value).unwrap_or(Value::String(value.clone()));
                set_path(&mut tree, &path, parsed);
                applied = true;
            }
        }
        if !applied {
            return Ok(parsed);
        }
        decode(tree).context("invalid value in an OSAPI_* environment variable")
    }

    /// Controller settings; `port` (a command-line flag) wins over the file.
    pub fn server_config(&self, port: Option<u16>) -> Result<ServerConfig> {
        let s = &self.api.server;
        let mut config = ServerConfig {
            port: port.unwrap_or(s.port),
            signing_key: s.security.signing_key.clone(),
            roles: s
                .security
                .roles
                .iter()
                .map(|(k, v)| (k.clone(), v.permissions.clone()))
                .collect(),
            max_upload_bytes: s.max_upload_bytes,
            job_timeout: duration("api.server.job_timeout", &s.job_timeout)?,
            sync_timeout: duration("api.server.sync_timeout", &s.sync_timeout)?,
            allow_tokens_without_expiry: s.security.allow_tokens_without_expiry,
            trusted_proxies: s
                .trusted_proxies
                .iter()
                .map(|p| parse_proxy(p))
                .collect::<Result<_>>()?,
            job_signer: self.job_signer()?,
            trace_parent: crate::otel::trace_parent_hook(&self.telemetry.tracing.export()?),
            cors_allow_origins: s.security.cors.allow_origins.clone(),
            version: crate::version::wire(),
            min_agent_version: match s.min_agent_version.trim() {
                "" => None,
                text => Some(
                    osapi_server::version::parse_version(text)
                        .context("api.server.min_agent_version")?,
                ),
            },
            limits: ConnectionLimits {
                header_read_timeout: duration(
                    "api.server.header_read_timeout",
                    &s.header_read_timeout,
                )?,
                idle_timeout: duration("api.server.idle_timeout", &s.idle_timeout)?,
                max_connections: (s.max_connections > 0).then_some(s.max_connections),
                shutdown_grace: duration("api.server.shutdown_grace", &s.shutdown_grace)?,
            },
            metrics_path: self.telemetry.metrics.path.clone(),
            metrics_auth: self.telemetry.metrics.auth,
            ..Default::default()
        };
        if !s.bind.is_empty() {
            config.bind = s
                .bind
                .parse()
                .with_context(|| format!("api.server.bind {:?} is not an IP address", s.bind))?;
        }
        Ok(config)
    }

    /// Agent settings.
    pub fn agent_config(&self) -> Result<AgentConfig> {
        self.agent_config_beating(self.heartbeat_interval()?)
    }

    /// Agent settings for an agent on NATS, whose heartbeat is checked
    /// against the registry's time to live only once connected (see
    /// [`OsapiFile::heartbeat_interval_on_server`]): until then it is the
    /// one set, or a third of this file's TTL.
    pub fn agent_config_on_nats(&self) -> Result<AgentConfig> {
        let heartbeat = match self.heartbeat_set()? {
            Some(set) => set,
            None => self.registry_ttl()? / 3,
        };
        self.agent_config_beating(heartbeat)
    }

    fn agent_config_beating(&self, heartbeat_interval: Duration) -> Result<AgentConfig> {
        let a = &self.agent;
        let mut facts = a.facts.clone();
        let facts_interval = match facts.remove("interval") {
            Some(JsonValue::String(s)) => duration("agent.facts.interval", &s)?,
            Some(other) => {
                bail!("agent.facts.interval must be a duration such as \"60s\", got {other}")
            }
            None => AgentConfig::default().facts_interval,
        };
        let resolvectl = match a.dns.resolvectl.as_str() {
            "auto" | "" => ResolvectlMode::Auto,
            "never" => ResolvectlMode::Never,
            "always" => ResolvectlMode::Always,
            other => bail!("agent.dns.resolvectl must be auto, never or always, got {other:?}"),
        };
        let config = AgentConfig {
            hostname: (!a.hostname.is_empty()).then(|| a.hostname.clone()),
            labels: a.labels.clone(),
            facts,
            heartbeat_interval,
            facts_interval,
            max_jobs: a.max_jobs,
            shutdown_grace: duration("agent.shutdown_grace", &a.shutdown_grace)?,
            conditions: ConditionThresholds {
                memory_pressure_percent: a.conditions.memory_pressure_threshold,
                high_load_multiplier: a.conditions.high_load_multiplier,
                disk_pressure_percent: a.conditions.disk_pressure_threshold,
            },
            providers: ProviderConfig {
                resolv_conf: a.dns.resolv_conf.clone().into(),
                resolvectl,
                command_default_timeout: duration(
                    "agent.command.default_timeout",
                    &a.command.default_timeout,
                )?,
                command_max_timeout: duration("agent.command.max_timeout", &a.command.max_timeout)?,
                ..ProviderConfig::default()
            },
            security: AgentSecurity {
                job_verify_keys: a
                    .security
                    .job_verify_keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        k.parse::<PublicKey>()
                            .with_context(|| format!("agent.security.job_verify_keys[{i}]"))
                    })
                    .collect::<Result<_>>()?,
                allow_unsigned_jobs: a.security.allow_unsigned_jobs,
            },
            // Explicit only: `osapi agent start` fills in the default (an
            // embedded agent on the in-memory bus needs none).
            state_dir: (!a.state_dir.is_empty()).then(|| PathBuf::from(&a.state_dir)),
            version: crate::version::wire(),
            trace_adopt: crate::otel::trace_adopt_hook(&self.telemetry.tracing.export()?),
        };
        config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(config)
    }
}

/// Decodes a tree, naming the key that failed (`api.server.port: invalid type …`).
fn decode(tree: Value) -> Result<OsapiFile> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        anyhow::anyhow!("{path}: {}", e.into_inner())
    })
}

impl OsapiFile {
    /// The controller's job-signing key, read from
    /// `api.server.security.job_signing_key_file` (none when unset).
    pub fn job_signer(&self) -> Result<Option<Arc<JobSigner>>> {
        let path = &self.api.server.security.job_signing_key_file;
        if path.is_empty() {
            return Ok(None);
        }
        let bytes = std::fs::read(path).with_context(|| {
            format!("api.server.security.job_signing_key_file: cannot read {path}")
        })?;
        // The error names the file, never its content.
        let signer = JobSigner::from_bytes(&bytes)
            .with_context(|| format!("api.server.security.job_signing_key_file: {path}"))?;
        Ok(Some(Arc::new(signer)))
    }

    /// The agent's state directory: `agent.state_dir`, or the default for
    /// this user.
    pub fn state_dir(&self) -> Result<PathBuf> {
        if !self.agent.state_dir.is_empty() {
            return Ok(PathBuf::from(&self.agent.state_dir));
        }
        if nix::unistd::Uid::effective().is_root() {
            return Ok(PathBuf::from("/var/lib/osapi"));
        }
        if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
            return Ok(PathBuf::from(state).join("osapi"));
        }
        match std::env::var_os("HOME").filter(|s| !s.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".local/state/osapi")),
            None => bail!("no home directory: set agent.state_dir"),
        }
    }

    /// How long a silent agent stays registered (`nats.registry.ttl`, 30 s).
    pub fn registry_ttl(&self) -> Result<Duration> {
        let ttl = &self.nats.registry.ttl;
        if ttl.is_empty() {
            return Ok(NatsConfig::default().registry.max_age);
        }
        let ttl = duration("nats.registry.ttl", ttl)?;
        if ttl.is_zero() {
            bail!(
                "nats.registry.ttl must be greater than zero (it is how long a silent agent stays registered)"
            );
        }
        Ok(ttl)
    }

    /// The agent's heartbeat: `agent.heartbeat_interval`, or a third of the
    /// registry TTL (`nats.registry.ttl`) when unset. One at or above the
    /// TTL is an error (the agent would keep vanishing from the registry).
    pub fn heartbeat_interval(&self) -> Result<Duration> {
        self.heartbeat_interval_on_server(self.registry_ttl()?)
    }

    /// The heartbeat of an agent on NATS, whose registrations live as long
    /// as the registry bucket on the server says (`held`): that is the
    /// controllers' `nats.registry.ttl`, whatever the agent's own file says.
    pub fn heartbeat_interval_on_server(&self, held: Duration) -> Result<Duration> {
        let Some(interval) = self.heartbeat_set()? else {
            return Ok(held / 3);
        };
        if interval >= held {
            let ttl_is = if held == self.registry_ttl()? {
                format!("nats.registry.ttl ({})", go_duration(held))
            } else {
                format!(
                    "the registry's time to live on the NATS server ({}, the controllers' nats.registry.ttl)",
                    go_duration(held)
                )
            };
            bail!(
                "agent.heartbeat_interval ({}) must be shorter than {ttl_is}: \
                 agents would drop out of the registry between heartbeats (leave it unset for a third of the TTL)",
                go_duration(interval),
            );
        }
        Ok(interval)
    }

    /// `agent.heartbeat_interval`, when set.
    fn heartbeat_set(&self) -> Result<Option<Duration>> {
        let set = &self.agent.heartbeat_interval;
        if set.is_empty() {
            return Ok(None);
        }
        duration("agent.heartbeat_interval", set).map(Some)
    }

    /// Limits of the in-memory bus of `osapi start` without NATS:
    /// `api.server.jobs.max_bytes`, `nats.objects.max_bytes` (1 GiB
    /// unless set) for uploaded files and `nats.audit.max_bytes` (50 MiB
    /// unless set) for each audit log.
    pub fn memory_bus_config(&self) -> Result<MemoryBusConfig> {
        let d = MemoryBusConfig::default();
        Ok(MemoryBusConfig {
            max_job_bytes: usize::try_from(self.api.server.jobs.max_bytes.0)
                .context("api.server.jobs.max_bytes is too large")?,
            max_object_bytes: match self.nats.objects.max_bytes.0 {
                0 => d.max_object_bytes,
                n => n,
            },
            max_audit_bytes: match self.nats.audit.max_bytes.0 {
                0 => d.max_audit_bytes,
                n => usize::try_from(n).context("nats.audit.max_bytes is too large")?,
            },
            ..d
        })
    }

    /// True when the controller is configured to use NATS.
    pub fn server_uses_nats(&self) -> bool {
        !self.api.server.nats.host.is_empty()
    }

    /// NATS settings for a process connecting with `conn` (`api.server.nats`
    /// or `agent.nats`), with the stream and bucket settings of `nats.*`.
    pub fn nats_config(&self, conn: &NatsConnection, role: &str) -> Result<NatsConfig> {
        let key = if role == "agent" {
            "agent.nats"
        } else {
            "api.server.nats"
        };
        let (host, tls_scheme) = match conn.host.strip_prefix("tls://") {
            Some(h) => (h, true),
            None => (conn.host.as_str(), false),
        };
        let host = if host.is_empty() { "localhost" } else { host };
        let security = NatsSecurity {
            auth: nats_auth(&conn.auth, key)?,
            tls: nats_tls(conn.tls.as_ref(), tls_scheme, key)?,
            inbox_prefix: None,
        };
        if security.auth == NatsAuth::None && !crate::serve::is_loopback(host) {
            tracing::warn!(
                "{key}.auth is none and NATS ({host}) is not on this machine: anyone who reaches \
                 it can read and write the fleet's state; see the README's secure fleet walkthrough"
            );
        }
        let scheme = if security.tls.is_some() {
            "tls"
        } else {
            "nats"
        };
        let mut c = NatsConfig {
            security,
            url: format!("{scheme}://{host}:{}", conn.port),
            namespace: conn.namespace.clone(),
            client_name: if conn.client_name.is_empty() {
                format!("osapi-{role}")
            } else {
                conn.client_name.clone()
            },
            ack_wait: duration("agent.consumer.ack_wait", &self.agent.consumer.ack_wait)?,
            ..NatsConfig::default()
        };
        let n = &self.nats;
        apply(&mut c.stream, &n.stream, "nats.stream", true)?;
        if n.stream.max_msgs > 0 {
            c.stream_max_msgs = n.stream.max_msgs;
        }
        apply(&mut c.jobs, &n.kv, "nats.kv", false)?;
        apply(&mut c.progress, &n.progress, "nats.progress", false)?;
        apply(&mut c.registry, &n.registry, "nats.registry", false)?;
        apply(&mut c.facts, &n.facts, "nats.facts", false)?;
        apply(&mut c.state, &n.state, "nats.state", false)?;
        apply(&mut c.audit, &n.audit, "nats.audit", false)?;
        apply(&mut c.objects, &n.objects, "nats.objects", false)?;
        apply(&mut c.file_state, &n.file_state, "nats.file_state", false)?;
        if c.registry.max_age.is_zero() {
            bail!(
                "nats.registry.ttl must be greater than zero (it is how long a silent agent stays registered)"
            );
        }
        Ok(c)
    }
}

/// A secret given inline or in a file (never both; the file's content is
/// trimmed). Errors name the keys, never the secret.
fn secret(inline: &str, file: &str, key: &str, name: &str) -> Result<String> {
    match (inline.is_empty(), file.is_empty()) {
        (false, true) => Ok(inline.to_string()),
        (true, false) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("{key}.{name}_file: cannot read {file}"))?;
            let text = text.trim().to_string();
            if text.is_empty() {
                bail!("{key}.{name}_file: {file} is empty");
            }
            Ok(text)
        }
        (false, false) => bail!("{key}: give {name} or {name}_file, not both"),
        (true, true) => bail!("{key}: {name} (or {name}_file) is required"),
    }
}

/// `<…>.nats.auth` as the bus takes it. A setting the chosen type does not
/// use is an error: it would be silently ignored otherwise.
fn nats_auth(a: &NatsAuthSection, key: &str) -> Result<NatsAuth> {
    let key = format!("{key}.auth");
    let set: Vec<&str> = [
        ("username", &a.username),
        ("password", &a.password),
        ("password_file", &a.password_file),
        ("nkey_file", &a.nkey_file),
        ("creds_file", &a.creds_file),
        ("token", &a.token),
        ("token_file", &a.token_file),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, _)| k)
    .collect();
    let allowed: &[&str] = match a.kind.as_str() {
        "none" | "" => &[],
        "user_pass" => &["username", "password", "password_file"],
        "nkey" => &["nkey_file"],
        "creds" => &["creds_file"],
        "token" => &["token", "token_file"],
        other => bail!(
            "{key}.type {other:?} is not supported: use none, user_pass, nkey, creds or token"
        ),
    };
    if let Some(extra) = set.iter().find(|k| !allowed.contains(k)) {
        bail!(
            "{key}.{extra} is set but {key}.type is {:?}, which does not use it",
            a.kind
        );
    }
    Ok(match a.kind.as_str() {
        "user_pass" => {
            if a.username.is_empty() {
                bail!("{key}.username is required for user_pass");
            }
            NatsAuth::UserPass {
                username: a.username.clone(),
                password: secret(&a.password, &a.password_file, &key, "password")?,
            }
        }
        "nkey" => {
            if a.nkey_file.is_empty() {
                bail!("{key}.nkey_file is required for nkey (the file holding the seed, SU…)");
            }
            let seed = std::fs::read_to_string(&a.nkey_file)
                .with_context(|| format!("{key}.nkey_file: cannot read {}", a.nkey_file))?;
            let seed = seed
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("SU"))
                .with_context(|| {
                    format!(
                        "{key}.nkey_file: {} holds no user seed (a line starting with SU)",
                        a.nkey_file
                    )
                })?
                .to_string();
            NatsAuth::Nkey { seed }
        }
        "creds" => {
            if a.creds_file.is_empty() {
                bail!("{key}.creds_file is required for creds");
            }
            let path = PathBuf::from(&a.creds_file);
            std::fs::metadata(&path)
                .with_context(|| format!("{key}.creds_file: cannot read {}", a.creds_file))?;
            NatsAuth::Creds { path }
        }
        "token" => NatsAuth::Token {
            token: secret(&a.token, &a.token_file, &key, "token")?,
        },
        _ => NatsAuth::None,
    })
}

/// `<…>.nats.tls` as the bus takes it (`tls://` in the host also turns it on).
fn nats_tls(t: Option<&NatsTlsSection>, scheme: bool, key: &str) -> Result<Option<NatsTls>> {
    let Some(t) = t.cloned().or(scheme.then(NatsTlsSection::default)) else {
        return Ok(None);
    };
    let file = |v: &str, name: &str| -> Result<Option<PathBuf>> {
        if v.is_empty() {
            return Ok(None);
        }
        std::fs::metadata(v).with_context(|| format!("{key}.tls.{name}: cannot read {v}"))?;
        Ok(Some(PathBuf::from(v)))
    };
    let tls = NatsTls {
        ca_file: file(&t.ca_file, "ca_file")?,
        cert_file: file(&t.cert_file, "cert_file")?,
        key_file: file(&t.key_file, "key_file")?,
    };
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        bail!("{key}.tls: cert_file and key_file go together");
    }
    Ok(Some(tls))
}

fn apply(target: &mut BucketSettings, s: &StoreSection, key: &str, stream: bool) -> Result<()> {
    let name = if stream { &s.name } else { &s.bucket };
    if !name.is_empty() {
        target.name = name.clone();
    }
    let age = if stream { &s.max_age } else { &s.ttl };
    if !age.is_empty() {
        let field = if stream { "max_age" } else { "ttl" };
        target.max_age = duration(&format!("{key}.{field}"), age)?;
    }
    if s.max_bytes.0 > 0 {
        target.max_bytes = i64::try_from(s.max_bytes.0)
            .with_context(|| format!("{key}.max_bytes is too large"))?;
    }
    target.memory = match s.storage.as_str() {
        "memory" => true,
        "file" | "" => false,
        other => bail!("{key}.storage must be file or memory, got {other:?}"),
    };
    if s.replicas > 0 {
        target.replicas = s.replicas;
    }
    Ok(())
}

/// A trusted proxy: an IP address or a CIDR block.
fn parse_proxy(p: &str) -> Result<ipnet::IpNet> {
    p.parse::<ipnet::IpNet>()
        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            anyhow::anyhow!(
                "api.server.trusted_proxies: {p:?} is not an IP address or a CIDR block such as 10.0.0.0/8"
            )
        })
}

fn duration(key: &str, value: &str) -> Result<Duration> {
    parse_duration(value).with_context(|| format!("{key}: expected a duration such as \"30s\""))
}

/// Paths of the leaves (scalars, empty maps, lists) and maps of a YAML tree.
fn leaf_paths(v: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Mapping(m) if !m.is_empty() => {
                for (k, child) in m {
                    if let Some(k) = k.as_str() {
                        path.push(k.to_string());
                        walk(child, path, out);
                        path.pop();
                    }
                }
                // A map itself can be replaced as a whole too (labels, roles …).
                if !path.is_empty() {
                    out.push(path.clone());
                }
            }
            _ => out.push(path.clone()),
        }
    }
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn set_path(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for key in path {
        let Value::Mapping(m) = node else { return };
        node = m
            .entry(Value::String(key.clone()))
            .or_insert(Value::Mapping(Default::default()));
    }
    *node = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn upstream_shaped_file_loads_and_ignores_unknown_keys() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(
            f,
            "debug: true\napi:\n  client:\n    url: http://h:8080\n    security:\n      bearer_token: tok\n  server:\n    port: 9999\n    nats: {{host: localhost, port: 4222}}\n    security:\n      signing_key: k\n      roles:\n        ops:\n          permissions: [node:read]\nnats:\n  stream: {{name: JOBS}}\nagent:\n  hostname: web-01\n  labels: {{group: web.dev}}\n  facts: {{interval: 30s, env: prod}}\n  conditions: {{memory_pressure_threshold: 80}}\n"
        )
        .unwrap();
        let cfg = OsapiFile::load(Some(f.path()), &env(&[])).unwrap();
        assert_eq!(cfg.api.server.port, 9999);
        let server = cfg.server_config(None).unwrap();
        assert_eq!(server.signing_key, "k");
        assert_eq!(server.roles["ops"], vec!["node:read"]);
        let agent = cfg.agent_config().unwrap();
        assert_eq!(agent.hostname.as_deref(), Some("web-01"));
        assert_eq!(agent.facts_interval, Duration::from_secs(30));
        assert_eq!(agent.facts["env"], "prod");
        assert!(!agent.facts.contains_key("interval"));
        assert_eq!(agent.conditions.memory_pressure_percent, 80.0);
        assert_eq!(agent.conditions.high_load_multiplier, 2.0);
    }

    #[test]
    fn env_overrides_any_key() {
        let cfg = OsapiFile::load(
            None,
            &env(&[
                ("OSAPI_API_SERVER_SECURITY_SIGNING_KEY", "from-env"),
                ("OSAPI_API_SERVER_PORT", "7000"),
                ("OSAPI_AGENT_LABELS", "{role: web}"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.api.server.security.signing_key, "from-env");
        assert_eq!(cfg.api.server.port, 7000);
        assert_eq!(cfg.agent.labels["role"], "web");
    }

    #[test]
    fn bad_values_say_where() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "api:\n  server:\n    port: eighty\n").unwrap();
        let err = format!(
            "{:#}",
            OsapiFile::load(Some(f.path()), &env(&[])).unwrap_err()
        );
        assert!(err.contains("api.server.port: invalid type"), "{err}");
        let err = format!(
            "{:#}",
            OsapiFile::load(None, &env(&[("OSAPI_API_SERVER_PORT", "x")])).unwrap_err()
        );
        assert!(err.contains("OSAPI_"), "{err}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(
            f,
            "agent:\n  heartbeat_interval: 8s\nnats:\n  registry: {{ttl: 6s}}\n"
        )
        .unwrap();
        let cfg = OsapiFile::load(Some(f.path()), &env(&[])).unwrap();
        let err = format!("{:#}", cfg.agent_config().unwrap_err());
        assert!(
            err.contains(
                "agent.heartbeat_interval (8s) must be shorter than nats.registry.ttl (6s)"
            ),
            "{err}"
        );
        let short = OsapiFile::load(None, &env(&[("OSAPI_NATS_REGISTRY_TTL", "6s")])).unwrap();
        assert_eq!(
            short.agent_config().unwrap().heartbeat_interval,
            Duration::from_secs(2),
            "a third of the TTL when unset"
        );
        // On NATS the bucket's TTL, as the controllers made it, counts,
        // also when it is longer than the file's.
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "agent:\n  heartbeat_interval: 40s\n").unwrap();
        let cfg = OsapiFile::load(Some(f.path()), &env(&[])).unwrap();
        assert!(cfg.agent_config().is_err(), "40s is above the file's 30s");
        let on_nats = cfg.agent_config_on_nats().unwrap();
        assert_eq!(on_nats.heartbeat_interval, Duration::from_secs(40));
        assert_eq!(
            cfg.heartbeat_interval_on_server(Duration::from_secs(120))
                .unwrap(),
            Duration::from_secs(40)
        );
        assert_eq!(
            short
                .heartbeat_interval_on_server(Duration::from_secs(3))
                .unwrap(),
            Duration::from_secs(1)
        );
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "agent:\n  heartbeat_interval: 5s\n").unwrap();
        let cfg = OsapiFile::load(Some(f.path()), &env(&[])).unwrap();
        assert_eq!(
            cfg.heartbeat_interval_on_server(Duration::from_secs(30))
                .unwrap(),
            Duration::from_secs(5)
        );
        let err = format!(
            "{:#}",
            cfg.heartbeat_interval_on_server(Duration::from_secs(4))
                .unwrap_err()
        );
        assert!(
            err.contains("must be shorter than the registry's time to live on the NATS server (4s"),
            "{err}"
        );
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "agent:\n  heartbeat_interval: soon\n").unwrap();
        let cfg = OsapiFile::load(Some(f.path()), &env(&[])).unwrap();
        let err = format!("{:#}", cfg.agent_config().unwrap_err());
        assert!(err.contains("agent.heartbeat_interval"), "{err}");
        assert!(OsapiFile::load(Some(Path::new("/nonexistent/osapi.yaml")), &env(&[])).is_err());
    }

    #[test]
    fn telemetry_keys() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(
            f,
            "api:\n  server:\n    shutdown_grace: 2s\n    security: {{signing_key: k}}\ntelemetry:\n  metrics: {{path: /prom, auth: true}}\n  tracing: {{enabled: true, exporter: stdout}}\nagent:\n  metrics: {{listen: 127.0.0.1:9102}}\n"
        )
        .unwrap();
        let cfg = OsapiFile::load(Some(f.path()), &env(&[])).unwrap();
        let server = cfg.server_config(None).unwrap();
        assert_eq!(server.metrics_path, "/prom");
        assert!(server.metrics_auth);
        assert_eq!(server.limits.shutdown_grace, Duration::from_secs(2));
        assert_eq!(cfg.telemetry.tracing.export().unwrap(), SpanExport::Stdout);
        assert_eq!(cfg.agent.metrics.listen, "127.0.0.1:9102");

        // Defaults: /metrics without a token, 5 s, no span export.
        let d = OsapiFile::load(None, &env(&[])).unwrap();
        let server = d.server_config(None).unwrap();
        assert_eq!(server.metrics_path, "/metrics");
        assert!(!server.metrics_auth);
        assert_eq!(server.limits.shutdown_grace, Duration::from_secs(5));
        assert_eq!(d.telemetry.tracing.export().unwrap(), SpanExport::None);
        assert!(d.agent.metrics.listen.is_empty());

        // Upstream's exporters; anything else says what is allowed.
        let export = |pairs: &[(&str, &str)]| {
            OsapiFile::load(None, &env(pairs))
                .unwrap()
                .telemetry
                .tracing
                .export()
        };
        assert_eq!(
            export(&[
                ("OSAPI_TELEMETRY_TRACING_EXPORTER", "otlp"),
                ("OSAPI_TELEMETRY_TRACING_OTLP_ENDPOINT", "http://c:4318")
            ])
            .unwrap(),
            SpanExport::Otlp {
                endpoint: "http://c:4318".into()
            }
        );
        assert_eq!(
            export(&[
                ("OSAPI_TELEMETRY_TRACING_EXPORTER", "stdout"),
                ("OSAPI_TELEMETRY_TRACING_ENABLED", "false")
            ])
            .unwrap(),
            SpanExport::None
        );
        let err = export(&[("OSAPI_TELEMETRY_TRACING_EXPORTER", "jaeger")]).unwrap_err();
        assert!(err.to_string().contains("none, stdout or otlp"), "{err}");
        let err = export(&[("OSAPI_TELEMETRY_TRACING_EXPORTER", "otlp")]).unwrap_err();
        assert!(err.to_string().contains("otlp_endpoint"), "{err}");
        // A metrics path that would hide an API route is refused at start.
        for bad in ["/job", "metrics", "/api/metrics", "/", "/m/:x", "/m/*x"] {
            let mut server = d.server_config(None).unwrap();
            server.signing_key = "k".into();
            server.metrics_path = bad.into();
            let err = server.validate().unwrap_err();
            assert!(err.contains("telemetry.metrics.path"), "{bad}: {err}");
        }
        let err = format!(
            "{:#}",
            OsapiFile::load(None, &env(&[("OSAPI_API_SERVER_SHUTDOWN_GRACE", "soon")]))
                .unwrap()
                .server_config(None)
                .unwrap_err()
        );
        assert!(err.contains("api.server.shutdown_grace"), "{err}");
        let agent = |pairs: &[(&str, &str)]| {
            OsapiFile::load(None, &env(pairs))
                .unwrap()
                .agent_config()
                .map(|c| c.shutdown_grace)
        };
        assert_eq!(agent(&[]).unwrap(), Duration::from_secs(10));
        assert_eq!(
            agent(&[("OSAPI_AGENT_SHUTDOWN_GRACE", "45s")]).unwrap(),
            Duration::from_secs(45)
        );
        let err = format!(
            "{:#}",
            agent(&[("OSAPI_AGENT_SHUTDOWN_GRACE", "soon")]).unwrap_err()
        );
        assert!(err.contains("agent.shutdown_grace"), "{err}");
    }

    #[test]
    fn limits_and_security_keys() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(
            f,
            "api:\n  server:\n    header_read_timeout: 5s\n    idle_timeout: 2m\n    max_connections: 100\n    trusted_proxies: [10.0.0.0/8, 192.168.1.1]\n    jobs: {{max_bytes: 64MiB}}\n    security: {{signing_key: k, allow_tokens_without_expiry: true, cors: {{allow_origins: [http://localhost:3001]}}}}\nnats:\n  audit: {{max_bytes: 10MiB}}\n  objects: {{max_bytes: 2147483648}}\n"
        )
        .unwrap();
        let cfg = OsapiFile::load(Some(f.path()), &env(&[])).unwrap();
        let server = cfg.server_config(None).unwrap();
        assert_eq!(server.limits.header_read_timeout, Duration::from_secs(5));
        assert_eq!(server.limits.idle_timeout, Duration::from_secs(120));
        assert_eq!(server.limits.max_connections, Some(100));
        assert!(server.allow_tokens_without_expiry);
        assert_eq!(server.cors_allow_origins, ["http://localhost:3001"]);
        assert_eq!(server.trusted_proxies.len(), 2);
        assert!(
            server.trusted_proxies[1].contains(&"192.168.1.1".parse::<std::net::IpAddr>().unwrap())
        );
        let bus = cfg.memory_bus_config().unwrap();
        assert_eq!(bus.max_job_bytes, 64 << 20);
        assert_eq!(bus.max_object_bytes, 2 << 30);
        assert_eq!(bus.max_audit_bytes, 10 << 20);
        let nats = cfg.nats_config(&cfg.api.server.nats, "api").unwrap();
        assert_eq!(nats.audit.max_bytes, 10 << 20);

        // Defaults: 10 s, 60 s, 80 % of the fd limit, 256 MiB, 1 GiB in memory.
        let d = OsapiFile::load(None, &env(&[])).unwrap();
        let server = d.server_config(None).unwrap();
        assert_eq!(server.limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(server.limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(server.limits.max_connections, None);
        assert!(!server.allow_tokens_without_expiry);
        assert_eq!(d.memory_bus_config().unwrap().max_job_bytes, 256 << 20);
        assert_eq!(d.memory_bus_config().unwrap().max_object_bytes, 1 << 30);
        assert_eq!(d.memory_bus_config().unwrap().max_audit_bytes, 50 << 20);
        let nats = d.nats_config(&d.api.server.nats, "api").unwrap();
        assert_eq!(nats.audit.max_bytes, 50 << 20);

        let err = format!(
            "{:#}",
            OsapiFile::load(
                None,
                &env(&[("OSAPI_API_SERVER_TRUSTED_PROXIES", "[everyone]")])
            )
            .unwrap()
            .server_config(None)
            .unwrap_err()
        );
        assert!(
            err.contains("api.server.trusted_proxies") && err.contains("everyone"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            OsapiFile::load(None, &env(&[("OSAPI_API_SERVER_JOBS_MAX_BYTES", "lots")]))
                .unwrap_err()
        );
        assert!(err.contains("size"), "{err}");
        let err = format!(
            "{:#}",
            OsapiFile::load(None, &env(&[("OSAPI_API_SERVER_IDLE_TIMEOUT", "never")]))
                .unwrap()
                .server_config(None)
                .unwrap_err()
        );
        assert!(err.contains("api.server.idle_timeout"), "{err}");
    }

    #[test]
    fn min_agent_version_key() {
        let load = |yaml: &str| {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            write!(f, "{yaml}").unwrap();
            OsapiFile::load(Some(f.path()), &env(&[]))
        };
        let min = |cfg: &OsapiFile| {
            cfg.server_config(None)
                .unwrap()
                .min_agent_version
                .map(|v| v.to_string())
        };
        // Default: the controller's own major.minor.0.
        let own = osapi_server::version::parse_version(crate::version::VERSION).unwrap();
        let d = OsapiFile::load(None, &env(&[])).unwrap();
        assert_eq!(min(&d), Some(format!("{}.{}.0", own.major, own.minor)));
        // The controller reports its version with the commit.
        assert_eq!(
            d.server_config(None).unwrap().version,
            crate::version::wire()
        );
        assert_eq!(d.agent_config().unwrap().version, crate::version::wire());

        let set = load("api:\n  server:\n    min_agent_version: 0.3.1-rc.1\n").unwrap();
        assert_eq!(min(&set).as_deref(), Some("0.3.1-rc.1"));
        let short = load("api:\n  server:\n    min_agent_version: \"0.2\"\n").unwrap();
        assert_eq!(min(&short).as_deref(), Some("0.2.0"));
        for off in ["\"\"", "", "null"] {
            let cfg = load(&format!("api:\n  server:\n    min_agent_version: {off}\n")).unwrap();
            assert_eq!(min(&cfg), None, "{off:?} turns the check off");
        }
        let env_set = OsapiFile::load(
            None,
            &env(&[("OSAPI_API_SERVER_MIN_AGENT_VERSION", "1.4.0")]),
        )
        .unwrap();
        assert_eq!(min(&env_set).as_deref(), Some("1.4.0"));
        let env_off =
            OsapiFile::load(None, &env(&[("OSAPI_API_SERVER_MIN_AGENT_VERSION", "")])).unwrap();
        assert_eq!(min(&env_off), None);

        // A version that is not one stops the controller, naming the key.
        let bad = load("api:\n  server:\n    min_agent_version: v0.1\n").unwrap();
        let err = format!("{:#}", bad.server_config(None).unwrap_err());
        assert!(
            err.starts_with("api.server.min_agent_version: \"v0.1\" is not a semantic version"),
            "{err}"
        );
        // A bare number is refused rather than misread (1.10 is 1.1 to YAML).
        let err = format!(
            "{:#}",
            load("api:\n  server:\n    min_agent_version: 1.10\n").unwrap_err()
        );
        assert!(
            err.contains("api.server.min_agent_version: expected a version in quotes"),
            "{err}"
        );
    }

    #[test]
    fn the_sample_file_loads_with_its_commented_keys_too() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/osapi.yaml");
        let cfg = OsapiFile::load(Some(&sample), &env(&[])).unwrap();
        cfg.agent_config().unwrap();
        let own = osapi_server::version::parse_version(crate::version::VERSION).unwrap();
        assert_eq!(
            cfg.server_config(None).unwrap().min_agent_version,
            Some(osapi_server::version::default_min_agent_version(&own))
        );
        // Uncommented, the example minimum is read as written.
        let text = std::fs::read_to_string(&sample).unwrap();
        let uncommented = text.replace("    # min_agent_version:", "    min_agent_version:");
        assert_ne!(uncommented, text);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "{uncommented}").unwrap();
        let cfg = OsapiFile::load(Some(f.path()), &env(&[])).unwrap();
        assert_eq!(
            cfg.server_config(None)
                .unwrap()
                .min_agent_version
                .map(|v| v.to_string())
                .as_deref(),
            Some("0.1.0")
        );
    }
}
