//! Agent configuration and the agent error type.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use osapi_api::signing::PublicKey;
use serde_json::Value;

use crate::conditions::ConditionThresholds;
use crate::providers::ProviderConfig;

/// How an agent identifies itself and behaves.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Identity; the OS hostname when `None`.
    pub hostname: Option<String>,
    /// Labels, targeted with `key:value` (dotted prefixes match).
    pub labels: BTreeMap<String, String>,
    /// Custom facts, reported with the collected ones.
    pub facts: BTreeMap<String, Value>,
    /// Heartbeat interval (default 10 s). Must be well below the registry TTL.
    pub heartbeat_interval: Duration,
    /// Facts collection interval (default 60 s).
    pub facts_interval: Duration,
    /// Jobs run at the same time (default 32).
    pub max_jobs: usize,
    /// Condition thresholds.
    pub conditions: ConditionThresholds,
    /// Provider settings (DNS file, command limits …).
    pub providers: ProviderConfig,
    /// Which jobs the agent accepts.
    pub security: AgentSecurity,
    /// Where the agent keeps what must survive a restart (job ids it ran,
    /// process groups it started); `None` keeps them in memory only.
    pub state_dir: Option<PathBuf>,
    /// How long a stopping agent lets running jobs finish before it stops
    /// them and reports them failed (default 10 s).
    pub shutdown_grace: Duration,
    /// The version the agent reports in its registration and in the
    /// `started` event of every job (default [`osapi_api::VERSION`]; the
    /// `osapi-agent` binary adds its git commit as semver build metadata,
    /// `0.1.0+8d085288c507`). Controllers flag agents older than their
    /// `api.server.min_agent_version` with a `VersionSkew` condition.
    pub version: String,
    /// Makes a job's span a child of the W3C `traceparent` its record
    /// carries (the controller's request), when spans are exported (set by
    /// a build that exports them, such as the CLI's `otel` feature).
    pub trace_adopt: Option<fn(&tracing::Span, &str)>,
}

/// Which jobs an agent runs.
#[derive(Debug, Clone, Default)]
pub struct AgentSecurity {
    /// Controllers' public keys (`agent.security.job_verify_keys`). With any
    /// set, only jobs signed by one of them, unmodified, are run.
    pub job_verify_keys: Vec<PublicKey>,
    /// Run unsigned jobs when no key is set, even on a NATS server that is
    /// not on this machine (`agent.security.allow_unsigned_jobs`).
    pub allow_unsigned_jobs: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            hostname: None,
            labels: BTreeMap::new(),
            facts: BTreeMap::new(),
            heartbeat_interval: Duration::from_secs(10),
            facts_interval: Duration::from_secs(60),
            max_jobs: 32,
            conditions: ConditionThresholds::default(),
            providers: ProviderConfig::default(),
            shutdown_grace: Duration::from_secs(10),
            security: AgentSecurity::default(),
            state_dir: None,
            version: osapi_api::VERSION.to_string(),
            trace_adopt: None,
        }
    }
}

impl AgentConfig {
    /// Defaults with an explicit identity.
    pub fn named(hostname: impl Into<String>) -> Self {
        AgentConfig {
            hostname: Some(hostname.into()),
            ..Default::default()
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The identity the agent registers under: the configured hostname, or
    /// the OS hostname.
    pub fn resolved_hostname(&self) -> Result<String, AgentError> {
        match &self.hostname {
            Some(h) => Ok(h.clone()),
            None => crate::providers::node::os_hostname()
                .map_err(|e| AgentError::Hostname(e.to_string())),
        }
    }

    /// Trusts a controller's job-signing key.
    pub fn trust(mut self, key: PublicKey) -> Self {
        if !self.security.job_verify_keys.contains(&key) {
            self.security.job_verify_keys.push(key);
        }
        self
    }

    /// Adds a custom fact.
    pub fn fact(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.facts.insert(key.into(), value.into());
        self
    }

    /// Checks the configuration; the error says what to fix.
    pub fn validate(&self) -> Result<(), AgentError> {
        if let Some(h) = &self.hostname {
            if h.is_empty() || h.starts_with('_') || h.contains(':') {
                return Err(AgentError::Config(format!(
                    "agent hostname {h:?} is invalid: it must be non-empty, must not start with '_' and must not contain ':'"
                )));
            }
            if h.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(AgentError::Config(format!(
                    "agent hostname {h:?} must not contain whitespace"
                )));
            }
        }
        check_labels(&self.labels)?;
        if self.heartbeat_interval.is_zero() {
            return Err(AgentError::Config(
                "heartbeat interval must be greater than zero".into(),
            ));
        }
        if self.facts_interval.is_zero() {
            return Err(AgentError::Config(
                "facts interval must be greater than zero".into(),
            ));
        }
        if self.max_jobs == 0 {
            return Err(AgentError::Config("max_jobs must be at least 1".into()));
        }
        Ok(())
    }
}

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration is invalid.
    #[error("invalid agent configuration: {0}")]
    Config(String),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] osapi_bus::BusError),
    /// The state directory could not be used.
    #[error("agent state directory {path}: {source}")]
    State {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The OS hostname could not be read and none was configured.
    #[error("cannot determine the hostname (set agent.hostname): {0}")]
    Hostname(String),
}

/// Checks that every label key, and each dot-separated part of every value,
/// matches `[A-Za-z0-9_-]+`.
pub(crate) fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), AgentError> {
    let seg_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    for (k, v) in labels {
        if !seg_ok(k) || !v.split('.').all(seg_ok) {
            return Err(AgentError::Config(format!(
                "label {k}={v} is invalid: the key and each dot-separated part of the value must match [A-Za-z0-9_-]+"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_identity_and_labels() {
        assert!(AgentConfig::named("_all").validate().is_err());
        assert!(AgentConfig::named("a:b").validate().is_err());
        assert!(
            AgentConfig::named("web-01")
                .label("group", "web..dev")
                .validate()
                .is_err()
        );
        assert!(
            AgentConfig::named("web-01")
                .label("group", "web.dev.us-east")
                .validate()
                .is_ok()
        );
    }
}
