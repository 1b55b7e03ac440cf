//! Controller settings.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use osapi_api::auth::CustomRoles;
use osapi_api::signing::JobSigner;

/// How the controller listens, authenticates and bounds its work.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind (default 0.0.0.0).
    pub bind: IpAddr,
    /// Port (default 8080; 0 picks a free one).
    pub port: u16,
    /// HMAC key for tokens: the raw bytes of this string (as upstream).
    pub signing_key: String,
    /// Roles defined or redefined in configuration.
    pub roles: CustomRoles,
    /// Largest accepted upload (default 64 MiB); larger ones get 413.
    pub max_upload_bytes: usize,
    /// Deadline of a job when the request does not give one (default 5 min).
    pub job_timeout: Duration,
    /// How long the synchronous `/node/…` endpoints wait (default 30 s).
    pub sync_timeout: Duration,
    /// Longest `?wait=` honoured by `GET /job/{id}` (default 10 min).
    pub max_wait: Duration,
    /// How long the controller caches the agent list (default 1 s; agents
    /// joining or leaving invalidate it at once).
    pub directory_cache: Duration,
    /// Accept tokens without an `exp` claim (default false).
    pub allow_tokens_without_expiry: bool,
    /// Proxies whose `X-Forwarded-For` / `X-Real-IP` the audit log believes
    /// (default none: the source is always the peer address).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Connection limits.
    pub limits: ConnectionLimits,
    /// Signs every job created (`api.server.security.job_signing_key_file`);
    /// agents that trust its public key run only jobs it signed.
    pub job_signer: Option<Arc<JobSigner>>,
    /// The W3C `traceparent` of the current span, when spans are exported
    /// (set by a build that exports them, such as the CLI's `otel`
    /// feature): each job carries its creating request's, so that the
    /// agent's job span joins the request's trace.
    pub trace_parent: Option<fn() -> Option<String>>,
    /// Origins a browser may call the API from
    /// (`api.server.security.cors.allow_origins`, `scheme://host[:port]`);
    /// empty or `*`: any origin, as upstream.
    pub cors_allow_origins: Vec<String>,
    /// Where Prometheus scrapes the controller's metrics
    /// (`telemetry.metrics.path`, default `/metrics`; empty: not served).
    pub metrics_path: String,
    /// Whether a scrape needs a token with `health:read`
    /// (`telemetry.metrics.auth`, default false, as upstream).
    pub metrics_auth: bool,
    /// The version `GET /health/status` reports (default: this crate's,
    /// [`osapi_api::VERSION`]; the `osapi` binary adds its git commit as
    /// semver build metadata, `0.1.0+8d085288c507`).
    pub version: String,
    /// Agents older than this, or reporting no version, are listed with a
    /// `VersionSkew` condition (`api.server.min_agent_version`). Default:
    /// the controller's own `major.minor.0`
    /// ([`default_min_agent_version`](crate::version::default_min_agent_version));
    /// `None` turns the check off.
    pub min_agent_version: Option<semver::Version>,
}

/// How long a connection may stay silent, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A connection that has not sent complete request headers this long
    /// after it opened (or after the first byte of a later request) is
    /// closed (default 10 s).
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed
    /// (default 60 s). Requests being answered, long-polls included, are
    /// never idle.
    pub idle_timeout: Duration,
    /// Connections open at once; beyond, new ones wait in the kernel's
    /// accept queue. `None`: 80 % of the process's file-descriptor limit.
    pub max_connections: Option<usize>,
    /// How long a stopping controller lets requests finish before it
    /// closes their connections (default 5 s); long-polls are answered at
    /// once (`api.server.shutdown_grace`).
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: None,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            signing_key: String::new(),
            roles: CustomRoles::new(),
            max_upload_bytes: 64 << 20,
            job_timeout: Duration::from_secs(300),
            sync_timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(600),
            directory_cache: Duration::from_secs(1),
            allow_tokens_without_expiry: false,
            trusted_proxies: Vec::new(),
            limits: ConnectionLimits::default(),
            job_signer: None,
            trace_parent: None,
            cors_allow_origins: Vec::new(),
            metrics_path: "/metrics".into(),
            metrics_auth: false,
            version: osapi_api::VERSION.to_string(),
            min_agent_version: crate::version::parse_version(osapi_api::VERSION)
                .ok()
                .map(|v| crate::version::default_min_agent_version(&v)),
        }
    }
}

impl ServerConfig {
    /// Checks the settings; the error says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.signing_key.is_empty() {
            return Err("api.server.security.signing_key is required (for example the output of `openssl rand -hex 32`)".into());
        }
        for (role, perms) in &self.roles {
            if role.is_empty() {
                return Err("custom role names must not be empty".into());
            }
            for p in perms {
                p.parse::<osapi_api::auth::Permission>()
                    .map_err(|e| format!("api.server.security.roles.{role}.permissions: {e}"))?;
            }
        }
        if self.max_upload_bytes == 0 {
            return Err("max upload size must be greater than zero".into());
        }
        if self.job_timeout.is_zero() || self.sync_timeout.is_zero() {
            return Err("job and sync timeouts must be greater than zero".into());
        }
        if self.limits.header_read_timeout.is_zero() {
            return Err("api.server.header_read_timeout must be greater than zero".into());
        }
        if self.limits.idle_timeout.is_zero() {
            return Err("api.server.idle_timeout must be greater than zero".into());
        }
        if self.limits.max_connections == Some(0) {
            return Err("api.server.max_connections must be greater than zero".into());
        }
        if !self.metrics_path.is_empty() {
            let path = self.metrics_path.strip_prefix('/').unwrap_or("");
            let reserved = [
                "health",
                "agent",
                "job",
                "file",
                "audit",
                "node",
                "api",
                "openapi.json",
            ];
            if path.is_empty()
                || path.contains(['{', '}', '*', '?', '#', ':'])
                || reserved.contains(&path.split('/').next().unwrap_or_default())
            {
                return Err(format!(
                    "telemetry.metrics.path: {:?} must be a path of its own such as /metrics (not under an API route)",
                    self.metrics_path
                ));
            }
        }
        for origin in &self.cors_allow_origins {
            if origin != "*" && cors_origin(origin).is_none() {
                return Err(format!(
                    "api.server.security.cors.allow_origins: {origin:?} is not an origin (scheme://host[:port], or *)"
                ));
            }
        }
        Ok(())
    }
}

/// `origin` as a header value when it is `scheme://host[:port]` (no path).
pub(crate) fn cors_origin(origin: &str) -> Option<axum::http::HeaderValue> {
    let (scheme, rest) = origin.split_once("://")?;
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']');
    let ok = matches!(scheme, "http" | "https") && !rest.is_empty() && rest.chars().all(plain);
    ok.then(|| axum::http::HeaderValue::from_str(origin).ok())
        .flatten()
}
