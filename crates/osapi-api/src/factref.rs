//! `@fact.<key>` references in job data, resolved against the agent's facts
//! before an operation runs (upstream §6.6), plus `@fact.custom.<key>` for
//! custom facts from the agent's configuration. Unlike upstream, a reference
//! also ends at `/` and other punctuation, so `/srv/@fact.hostname/app.conf` works.

use crate::records::Facts;
use serde_json::Value;

/// Fact keys a reference may name (besides `custom.<key>`).
pub const KNOWN_KEYS: [&str; 5] = ["interface.primary", "hostname", "arch", "kernel", "fqdn"];

const PREFIX: &str = "@fact.";

/// Replaces every `@fact.` reference in every string of `data`.
///
/// ```
/// use osapi_api::factref::resolve;
/// use osapi_api::records::Facts;
/// let facts = Facts { primary_interface: "eth0".into(), ..Default::default() };
/// let mut data = serde_json::json!({"interface": "@fact.interface.primary", "args": ["on @fact.hostname"]});
/// resolve(&mut data, Some(&facts), "web-01").unwrap();
/// assert_eq!(data, serde_json::json!({"interface": "eth0", "args": ["on web-01"]}));
/// ```
pub fn resolve(data: &mut Value, facts: Option<&Facts>, hostname: &str) -> Result<(), String> {
    match data {
        Value::String(s) if s.contains(PREFIX) => {
            *s = resolve_str(s, facts, hostname)?;
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| resolve(v, facts, hostname)),
        Value::Object(map) => map
            .values_mut()
            .try_for_each(|v| resolve(v, facts, hostname)),
        _ => Ok(()),
    }
}

fn resolve_str(s: &str, facts: Option<&Facts>, hostname: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(PREFIX) {
        out.push_str(&rest[..start]);
        let after = &rest[start + PREFIX.len()..];
        // A key is made of letters, digits, `_`, `-` and `.`; anything else
        // (space, quote, comma, `/` …) ends it, and so does a trailing dot.
        let mut end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .unwrap_or(after.len());
        while end > 0 && after.as_bytes()[end - 1] == b'.' {
            end -= 1;
        }
        // `@fact.hostname.conf`: the longest prefix that names a fact wins,
        // so text after a reference may start with `.` or `-`.
        let full = &after[..end];
        let resolved = std::iter::once(end)
            .chain(full.rmatch_indices(['.', '-']).map(|(i, _)| i))
            .filter(|&i| i > 0)
            .find_map(|i| lookup(&after[..i], facts, hostname).ok().map(|v| (i, v)));
        let (used, value) = match resolved {
            Some(found) => found,
            None => {
                let why = lookup(full, facts, hostname).err().unwrap_or_default();
                return Err(format!(
                    "failed to resolve fact references: unresolvable fact reference \"{PREFIX}{full}\": {why}"
                ));
            }
        };
        out.push_str(&value);
        rest = &after[used..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(key: &str, facts: Option<&Facts>, hostname: &str) -> Result<String, String> {
    let facts = facts.ok_or("facts not available")?;
    let non_empty = |v: &str, what: &str| {
        if v.is_empty() {
            Err(format!("{what} is not known on this host"))
        } else {
            Ok(v.to_string())
        }
    };
    match key {
        "hostname" => Ok(hostname.to_string()),
        "interface.primary" => non_empty(&facts.primary_interface, "the primary interface"),
        "arch" => non_empty(&facts.architecture, "the architecture"),
        "kernel" => non_empty(&facts.kernel_version, "the kernel version"),
        "fqdn" => non_empty(&facts.fqdn, "the fqdn"),
        _ => {
            if let Some(custom) = key.strip_prefix("custom.").filter(|k| !k.is_empty()) {
                return match facts.facts.get(custom) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(Value::Null) | None => Err(format!("custom fact {custom:?} is not set")),
                    Some(other) => Ok(other.to_string()),
                };
            }
            Err(format!(
                "unknown fact key (known: {}, custom.<name>)",
                KNOWN_KEYS.join(", ")
            ))
        }
    }
}

/// True if `s` is `@fact.` followed by a key agents can resolve.
/// Used by the controller's input validation.
pub fn is_fact_ref(s: &str) -> bool {
    s.strip_prefix(PREFIX).is_some_and(|key| {
        KNOWN_KEYS.contains(&key) || key.strip_prefix("custom.").is_some_and(|k| !k.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_facts_fail_clearly() {
        let mut v = serde_json::json!("@fact.os");
        let err = resolve(&mut v, Some(&Facts::default()), "h").unwrap_err();
        assert!(
            err.contains("unresolvable fact reference \"@fact.os\""),
            "{err}"
        );
        let mut v = serde_json::json!("@fact.hostname");
        assert!(
            resolve(&mut v, None, "h")
                .unwrap_err()
                .contains("facts not available")
        );
    }

    #[test]
    fn custom_facts_resolve() {
        let mut facts = Facts::default();
        facts.facts.insert("env".into(), "prod".into());
        facts.facts.insert("rack".into(), 7.into());
        let mut v = serde_json::json!({"x": "@fact.custom.env;@fact.custom.rack"});
        resolve(&mut v, Some(&facts), "h").unwrap();
        assert_eq!(v["x"], "prod;7");
    }

    #[test]
    fn references_end_at_punctuation() {
        let facts = Facts::default();
        let mut v = serde_json::json!("/srv/@fact.hostname/app.conf and @fact.hostname.");
        resolve(&mut v, Some(&facts), "web-01").unwrap();
        assert_eq!(v, "/srv/web-01/app.conf and web-01.");
        let mut v = serde_json::json!("/etc/@fact.hostname.conf /x/@fact.hostname-old");
        resolve(&mut v, Some(&facts), "web-01").unwrap();
        assert_eq!(v, "/etc/web-01.conf /x/web-01-old");
    }

    #[test]
    fn validation_helper() {
        assert!(is_fact_ref("@fact.interface.primary"));
        assert!(is_fact_ref("@fact.custom.env"));
        assert!(!is_fact_ref("@fact.custom."));
        assert!(!is_fact_ref("@fact.os"));
    }
}
