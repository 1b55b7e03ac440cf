//! Controller settings.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use osapi_api::auth::CustomRoles;

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
        Ok(())
    }
}
