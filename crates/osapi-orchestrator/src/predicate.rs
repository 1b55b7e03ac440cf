//! Agent predicates for discovery and `when_fact`: the nine of upstream
//! (`os`, `arch`, `min_memory`, `min_cpu`, `has_label`, `fact_equals`,
//! `has_condition`, `no_condition`, `healthy`) and the combinators `and`,
//! `or`, `not`. They never panic on unexpected agent data.

use std::fmt;
use std::sync::Arc;

use osapi_api::agent::AgentInfo;
use serde_json::Value;

/// A test on an agent.
///
/// ```
/// use osapi_orchestrator::predicate::{has_label, os, healthy};
/// let p = os("ubuntu").and(has_label("role", "web")).and(healthy());
/// assert_eq!(p.to_string(), r#"((os == "ubuntu" and label role == "web") and healthy)"#);
/// ```
#[derive(Clone)]
pub struct Predicate {
    test: Arc<dyn Fn(&AgentInfo) -> bool + Send + Sync>,
    description: Arc<str>,
}

impl Predicate {
    /// A predicate from a closure, with a description for `explain()`.
    pub fn new(
        description: impl Into<String>,
        test: impl Fn(&AgentInfo) -> bool + Send + Sync + 'static,
    ) -> Self {
        Predicate {
            test: Arc::new(test),
            description: description.into().into(),
        }
    }

    /// True when the agent matches.
    pub fn matches(&self, agent: &AgentInfo) -> bool {
        (self.test)(agent)
    }

    /// Both must match.
    pub fn and(self, other: Predicate) -> Predicate {
        let desc = format!("({self} and {other})");
        Predicate::new(desc, move |a| self.matches(a) && other.matches(a))
    }

    /// Either must match.
    pub fn or(self, other: Predicate) -> Predicate {
        let desc = format!("({self} or {other})");
        Predicate::new(desc, move |a| self.matches(a) || other.matches(a))
    }

    /// Must not match.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Predicate {
        let desc = format!("not {self}");
        Predicate::new(desc, move |a| !self.matches(a))
    }
}

/// A closure over the agent is a predicate ("custom predicate" in `explain()`).
impl<F> From<F> for Predicate
where
    F: Fn(&AgentInfo) -> bool + Send + Sync + 'static,
{
    fn from(test: F) -> Self {
        Predicate::new("custom predicate", test)
    }
}

impl std::ops::Not for Predicate {
    type Output = Predicate;
    fn not(self) -> Predicate {
        Predicate::not(self)
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

impl fmt::Debug for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Predicate({})", self.description)
    }
}

/// True when every predicate matches (true for none).
pub fn match_all(agent: &AgentInfo, predicates: &[Predicate]) -> bool {
    predicates.iter().all(|p| p.matches(agent))
}

/// Distribution equals `distribution`, ignoring case (`Ubuntu` matches `ubuntu`).
pub fn os(distribution: &str) -> Predicate {
    let want = distribution.to_lowercase();
    Predicate::new(format!("os == {distribution:?}"), move |a| {
        a.os_info
            .as_ref()
            .is_some_and(|o| o.distribution.to_lowercase() == want)
    })
}

/// Architecture equals `arch`, ignoring case; `amd64` and `x86_64` (and
/// `arm64`/`aarch64`) are the same architecture.
pub fn arch(arch: &str) -> Predicate {
    fn canon(s: &str) -> String {
        match s.to_lowercase().as_str() {
            "amd64" | "x86_64" | "x86-64" => "x86_64".into(),
            "arm64" | "aarch64" => "aarch64".into(),
            other => other.to_string(),
        }
    }
    let want = canon(arch);
    Predicate::new(format!("arch == {arch:?}"), move |a| {
        a.architecture.as_deref().is_some_and(|x| canon(x) == want)
    })
}

/// Total memory of at least `bytes`.
pub fn min_memory(bytes: u64) -> Predicate {
    Predicate::new(format!("memory >= {bytes} bytes"), move |a| {
        a.memory.as_ref().is_some_and(|m| m.total >= bytes)
    })
}

/// At least `cpus` logical CPUs.
pub fn min_cpu(cpus: u32) -> Predicate {
    Predicate::new(format!("cpus >= {cpus}"), move |a| {
        a.cpu_count.unwrap_or(0) >= cpus
    })
}

/// Label `key` equals `value` exactly.
pub fn has_label(key: &str, value: &str) -> Predicate {
    let (k, v) = (key.to_string(), value.to_string());
    Predicate::new(format!("label {key} == {value:?}"), move |a| {
        a.labels.get(&k).is_some_and(|x| *x == v)
    })
}

/// Fact `key` equals `value`. Keys: `os.distribution`, `os.version`,
/// `architecture`, `kernel_version`, `cpu_count`, `fqdn`, `service_manager`,
/// `package_manager`, `primary_interface`, `hostname`, or a custom fact.
/// Numbers compare by value (`3` equals `3.0`).
pub fn fact_equals(key: &str, value: impl Into<Value>) -> Predicate {
    let k = key.to_string();
    let want: Value = value.into();
    Predicate::new(format!("fact {key} == {want}"), move |a| {
        fact_json(a, &k).is_some_and(|v| json_equal(&v, &want))
    })
}

/// Condition `condition_type` (e.g. `DiskPressure`, any case) is active.
pub fn has_condition(condition_type: &str) -> Predicate {
    let want = condition_type.to_lowercase();
    Predicate::new(format!("has condition {condition_type}"), move |a| {
        a.conditions
            .iter()
            .any(|c| c.status && c.condition_type.to_lowercase() == want)
    })
}

/// Condition `condition_type` is not active (true when unknown).
pub fn no_condition(condition_type: &str) -> Predicate {
    has_condition(condition_type).not_described(format!("no condition {condition_type}"))
}

/// No condition is active.
pub fn healthy() -> Predicate {
    Predicate::new("healthy", |a| a.conditions.iter().all(|c| !c.status))
}

impl Predicate {
    fn not_described(self, description: String) -> Predicate {
        Predicate::new(description, move |a| !self.matches(a))
    }
}

/// A fact of an agent as JSON (`None` when unknown).
pub fn fact_json(agent: &AgentInfo, key: &str) -> Option<Value> {
    let s = |v: &Option<String>| v.clone().map(Value::String);
    match key {
        "os.distribution" => agent
            .os_info
            .as_ref()
            .map(|o| Value::String(o.distribution.clone())),
        "os.version" => agent
            .os_info
            .as_ref()
            .map(|o| Value::String(o.version.clone())),
        "architecture" | "arch" => s(&agent.architecture),
        "kernel_version" | "kernel" => s(&agent.kernel_version),
        "cpu_count" => agent.cpu_count.map(Value::from),
        "fqdn" => s(&agent.fqdn),
        "service_manager" | "service_mgr" => s(&agent.service_mgr),
        "package_manager" | "package_mgr" => s(&agent.package_mgr),
        "primary_interface" => s(&agent.primary_interface),
        "hostname" => Some(Value::String(agent.hostname.clone())),
        other => agent.facts.get(other).cloned(),
    }
}

/// A fact as text for grouping (`None` when unknown or empty).
pub fn fact_text(agent: &AgentInfo, key: &str) -> Option<String> {
    match fact_json(agent, key)? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// JSON equality with numbers compared by value.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osapi_api::agent::{MemoryResponse, NodeCondition, OsInfoResponse};

    fn agent() -> AgentInfo {
        let mut a = AgentInfo {
            hostname: "web-01".into(),
            os_info: Some(OsInfoResponse {
                distribution: "Ubuntu".into(),
                version: "24.04".into(),
            }),
            architecture: Some("x86_64".into()),
            cpu_count: Some(8),
            memory: Some(MemoryResponse {
                total: 16_000,
                free: 1,
                used: 1,
            }),
            ..Default::default()
        };
        a.labels.insert("role".into(), "web".into());
        a.facts.insert("env".into(), "prod".into());
        a.facts.insert("rack".into(), 3.into());
        a.facts.insert("tags".into(), serde_json::json!(["a", "b"]));
        a
    }

    fn cond(t: &str, status: bool) -> NodeCondition {
        NodeCondition {
            condition_type: t.into(),
            status,
            reason: None,
            last_transition_time: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn upstream_predicate_table() {
        let a = agent();
        assert!(os("ubuntu").matches(&a) && os("Ubuntu").matches(&a) && !os("debian").matches(&a));
        assert!(!os("ubuntu").matches(&AgentInfo::default()), "no os_info");
        assert!(
            arch("X86_64").matches(&a) && arch("amd64").matches(&a) && !arch("arm64").matches(&a)
        );
        assert!(min_memory(16_000).matches(&a) && !min_memory(16_001).matches(&a));
        assert!(!min_memory(1).matches(&AgentInfo::default()));
        assert!(min_cpu(8).matches(&a) && !min_cpu(9).matches(&a));
        assert!(has_label("role", "web").matches(&a) && !has_label("role", "db").matches(&a));
        assert!(!has_label("role", "web").matches(&AgentInfo::default()));
    }

    #[test]
    fn fact_equals_compares_json_values() {
        let a = agent();
        assert!(fact_equals("env", "prod").matches(&a));
        assert!(fact_equals("rack", 3).matches(&a));
        assert!(fact_equals("rack", 3.0).matches(&a), "numbers by value");
        assert!(!fact_equals("rack", "3").matches(&a));
        assert!(
            fact_equals("tags", serde_json::json!(["a", "b"])).matches(&a),
            "lists compare, no panic"
        );
        assert!(fact_equals("os.distribution", "Ubuntu").matches(&a));
        assert!(fact_equals("cpu_count", 8).matches(&a));
        assert!(!fact_equals("missing", "x").matches(&a));
        assert!(!fact_equals("env", "prod").matches(&AgentInfo::default()));
    }

    #[test]
    fn conditions_and_combinators() {
        let mut a = agent();
        assert!(healthy().matches(&a) && no_condition("DiskPressure").matches(&a));
        a.conditions = vec![cond("MemoryPressure", false), cond("DiskPressure", true)];
        assert!(has_condition("diskpressure").matches(&a));
        assert!(!has_condition("MemoryPressure").matches(&a));
        assert!(!no_condition("DiskPressure").matches(&a));
        assert!(!healthy().matches(&a));
        assert!(os("ubuntu").or(os("debian")).matches(&a));
        assert!(!(os("ubuntu").and(os("debian"))).matches(&a));
        assert!((!os("debian")).matches(&a));
        assert!(match_all(&a, &[]));
        assert!(!match_all(&a, &[os("ubuntu"), healthy()]));
        assert_eq!(
            no_condition("DiskPressure").to_string(),
            "no condition DiskPressure"
        );
    }

    #[test]
    fn grouping_text() {
        let a = agent();
        assert_eq!(fact_text(&a, "os.distribution").as_deref(), Some("Ubuntu"));
        assert_eq!(fact_text(&a, "rack").as_deref(), Some("3"));
        assert_eq!(fact_text(&a, "tags"), None);
        assert_eq!(fact_text(&AgentInfo::default(), "os.distribution"), None);
    }
}
