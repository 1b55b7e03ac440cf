//! Job targets (`_any`, `_all`, a hostname, a `key:value` label selector),
//! label matching with dotted prefixes, and the two key sanitisers upstream uses.

use std::collections::BTreeMap;
use std::fmt;

/// Where a job goes.
///
/// ```
/// use osapi_api::target::Target;
/// assert_eq!(Target::parse("_any").unwrap(), Target::Any);
/// assert_eq!(
///     Target::parse("group:web.dev").unwrap(),
///     Target::Label { key: "group".into(), value: "web.dev".into() }
/// );
/// assert_eq!(Target::parse("web-01").unwrap(), Target::Host("web-01".into()));
/// assert_eq!(
///     Target::parse("web-01,web-02").unwrap(),
///     Target::Hosts(vec!["web-01".into(), "web-02".into()])
/// );
/// assert!(Target::parse("group:we b").is_err());
/// assert!(Target::parse("web-01,,web-02").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Exactly one eligible agent runs the job.
    Any,
    /// Every eligible agent runs the job.
    All,
    /// The agent with this hostname.
    Host(String),
    /// Exactly these agents (`web-01,web-02`: hostnames separated by
    /// commas, which hostnames cannot contain). An extension of ours:
    /// upstream's controller refuses it as an unknown hostname.
    Hosts(Vec<String>),
    /// Every eligible agent whose label `key` equals `value` or starts with `value.`.
    Label {
        /// Label key.
        key: String,
        /// Label value or dotted prefix of it.
        value: String,
    },
}

/// Why a target string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The target was empty.
    #[error("target is required (use _any, _all, a hostname or key:value)")]
    Empty,
    /// A label selector had an invalid key or value segment.
    #[error(
        "invalid label selector {0:?}: key and each dot-separated value segment must match [A-Za-z0-9_-]+"
    )]
    BadLabel(String),
    /// A hostname contained whitespace or control characters.
    #[error("invalid hostname {0:?}: must not contain whitespace or control characters")]
    BadHost(String),
    /// A list of hostnames with an empty, special or label entry.
    #[error(
        "invalid host list {0:?}: hostnames separated by commas, each non-empty, not _any, _all or key:value"
    )]
    BadHostList(String),
}

impl Target {
    /// The special target that lets one agent run the job.
    pub const ANY: &'static str = "_any";
    /// The special target that broadcasts to every agent.
    pub const ALL: &'static str = "_all";

    /// Parses a target string.
    pub fn parse(s: &str) -> Result<Target, TargetError> {
        if s.is_empty() {
            return Err(TargetError::Empty);
        }
        if s == Self::ANY {
            return Ok(Target::Any);
        }
        if s == Self::ALL {
            return Ok(Target::All);
        }
        if s.contains(',') {
            let mut hosts: Vec<String> = Vec::new();
            for h in s.split(',') {
                let h = h.trim();
                let plain = !h.is_empty()
                    && h != Self::ANY
                    && h != Self::ALL
                    && !h.contains(':')
                    && !h.chars().any(|c| c.is_whitespace() || c.is_control());
                if !plain {
                    return Err(TargetError::BadHostList(s.to_string()));
                }
                if !hosts.iter().any(|x| x == h) {
                    hosts.push(h.to_string());
                }
            }
            return Ok(Target::Hosts(hosts));
        }
        if let Some(idx) = s.find(':')
            && idx > 0
            && idx < s.len() - 1
        {
            let key = &s[..idx];
            let value = &s[idx + 1..];
            if !is_segment(key) || !value.split('.').all(is_segment) {
                return Err(TargetError::BadLabel(s.to_string()));
            }
            return Ok(Target::Label {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TargetError::BadHost(s.to_string()));
        }
        Ok(Target::Host(s.to_string()))
    }

    /// True for targets that can reach several agents (`_all`, labels and
    /// host lists).
    pub fn is_broadcast(&self) -> bool {
        matches!(self, Target::All | Target::Label { .. } | Target::Hosts(_))
    }

    /// True if the agent `hostname` with `labels` is one the target can
    /// reach (for `_any`, every agent is a candidate).
    ///
    /// ```
    /// use osapi_api::target::Target;
    /// let labels = [("role".to_string(), "web".to_string())].into();
    /// assert!(Target::parse("role:web").unwrap().selects("web-01", &labels));
    /// assert!(Target::parse("db-01,web-01").unwrap().selects("web-01", &labels));
    /// assert!(!Target::parse("db-01").unwrap().selects("web-01", &labels));
    /// ```
    pub fn selects(&self, hostname: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Target::Any | Target::All => true,
            Target::Host(h) => h == hostname,
            Target::Hosts(hosts) => hosts.iter().any(|h| h == hostname),
            Target::Label { .. } => self.matches_labels(labels),
        }
    }

    /// True if an agent with these labels is selected by a label target.
    /// Always false for other targets.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Target::Label { key, value } => labels
                .get(key)
                .is_some_and(|v| label_value_matches(v, value)),
            _ => false,
        }
    }
}

/// True if an agent's label value equals `selector` or starts with `selector.`.
///
/// ```
/// use osapi_api::target::label_value_matches;
/// assert!(label_value_matches("web.dev.us-east", "web"));
/// assert!(label_value_matches("web.dev.us-east", "web.dev"));
/// assert!(!label_value_matches("web.dev.us-east", "we"));
/// ```
pub fn label_value_matches(agent_value: &str, selector: &str) -> bool {
    agent_value == selector
        || (agent_value.len() > selector.len()
            && agent_value.starts_with(selector)
            && agent_value.as_bytes()[selector.len()] == b'.')
}

fn is_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Any => f.write_str(Self::ANY),
            Target::All => f.write_str(Self::ALL),
            Target::Host(h) => f.write_str(h),
            Target::Hosts(hosts) => f.write_str(&hosts.join(",")),
            Target::Label { key, value } => write!(f, "{key}:{value}"),
        }
    }
}

/// Upstream's key sanitiser S1: every character outside `[A-Za-z0-9_]` becomes `_`.
/// Used for registry keys, subjects and consumer names.
pub fn sanitize_key(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Upstream's sanitiser S2: every character outside `[A-Za-z0-9_-]` becomes `_`.
/// Used for the keys of the `responses` map of a job.
pub fn sanitize_host(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colon_at_edges_is_a_hostname() {
        assert_eq!(Target::parse(":x").unwrap(), Target::Host(":x".into()));
        assert_eq!(Target::parse("x:").unwrap(), Target::Host("x:".into()));
    }

    #[test]
    fn label_matching() {
        let mut labels = BTreeMap::new();
        labels.insert("group".to_string(), "web.dev.us-east".to_string());
        assert!(Target::parse("group:web").unwrap().matches_labels(&labels));
        assert!(
            Target::parse("group:web.dev.us-east")
                .unwrap()
                .matches_labels(&labels)
        );
        assert!(
            !Target::parse("group:web.prod")
                .unwrap()
                .matches_labels(&labels)
        );
        assert!(!Target::parse("role:web").unwrap().matches_labels(&labels));
        assert!(!Target::All.matches_labels(&labels));
    }

    #[test]
    fn sanitisers() {
        assert_eq!(sanitize_key("web-01.example"), "web_01_example");
        assert_eq!(sanitize_host("web-01.example"), "web-01_example");
    }

    #[test]
    fn bad_targets() {
        assert_eq!(Target::parse(""), Err(TargetError::Empty));
        assert!(matches!(
            Target::parse("a:b..c"),
            Err(TargetError::BadLabel(_))
        ));
        assert!(matches!(
            Target::parse("web 01"),
            Err(TargetError::BadHost(_))
        ));
    }
}
