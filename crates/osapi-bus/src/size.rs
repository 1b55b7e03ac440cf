//! Approximate memory held by job records, events and responses, for the
//! byte budgets of stores that keep them in memory. Estimates, not exact
//! heap accounting: string and container contents plus a fixed overhead per
//! value, which is what grows with large outputs.

use osapi_api::records::{AgentResponse, JobEvent, JobRecord};
use serde_json::Value;

/// Fixed cost of a value or container header.
const OVERHEAD: usize = 32;

/// Approximate bytes of a JSON value.
///
/// ```
/// # use osapi_bus::size::value_size;
/// let big = serde_json::json!({"stdout": "x".repeat(4096)});
/// assert!(value_size(&big) >= 4096);
/// ```
pub fn value_size(v: &Value) -> usize {
    OVERHEAD
        + match v {
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(value_size).sum(),
            Value::Object(o) => o.iter().map(|(k, v)| k.len() + value_size(v)).sum(),
        }
}

/// Approximate bytes of a job record.
pub fn record_size(r: &JobRecord) -> usize {
    4 * OVERHEAD
        + value_size(&r.operation)
        + r.op_type.len()
        + r.target.len()
        + r.expected_hosts
            .iter()
            .map(|h| h.len() + OVERHEAD)
            .sum::<usize>()
}

/// Approximate bytes of a job event.
pub fn event_size(e: &JobEvent) -> usize {
    4 * OVERHEAD + e.hostname.len() + e.error.as_ref().map_or(0, String::len) + value_size(&e.data)
}

/// Approximate bytes of an agent response.
pub fn response_size(r: &AgentResponse) -> usize {
    4 * OVERHEAD
        + r.hostname.len()
        + r.error.as_ref().map_or(0, String::len)
        + r.data.as_ref().map_or(0, value_size)
}
