//! Results of `osapi client` for a person at a terminal: a list response
//! (agents, jobs, files, audit entries, per-host results) as a table of its
//! items' plain fields, anything else as `key: value` lines. Scripts get
//! JSON (`--json`, or when stdout is not a terminal).

use serde_json::{Map, Value};

/// Longest cell before it is cut (with `…`).
const MAX_CELL: usize = 60;
/// Most columns a table shows (the first ones the items have).
const MAX_COLUMNS: usize = 8;

/// The text of `value` for a terminal.
pub fn render(value: &Value) -> String {
    match value {
        Value::Object(map) => match list_of_items(map) {
            Some((key, items)) => {
                let mut out = rows(items);
                for (k, v) in map.iter().filter(|(k, _)| k.as_str() != key) {
                    out.push_str(&format!("{k}: {}\n", cell(v)));
                }
                out
            }
            None => key_values(map),
        },
        Value::Array(items) => rows(items),
        other => format!("{}\n", cell(other)),
    }
}

/// The one field of a list response that holds its items.
fn list_of_items(map: &Map<String, Value>) -> Option<(&str, &Vec<Value>)> {
    let mut lists = map.iter().filter_map(|(k, v)| match v {
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => Some((k.as_str(), a)),
        _ => None,
    });
    let first = lists.next()?;
    lists.next().is_none().then_some(first)
}

fn key_values(map: &Map<String, Value>) -> String {
    let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    map.iter()
        .map(|(k, v)| format!("{k:<width$}  {}\n", cell(v)))
        .collect()
}

fn rows(items: &[Value]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for item in items {
        for (k, v) in item.as_object().into_iter().flatten() {
            if !v.is_object() && !v.is_array() && !columns.contains(&k.as_str()) {
                columns.push(k);
            }
        }
    }
    columns.truncate(MAX_COLUMNS);
    let table: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| item.get(*c).map(cell).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", text.join("  ").trim_end())
    };
    let mut out = line(columns.iter().map(|c| c.to_uppercase()).collect());
    for row in table {
        out.push_str(&line(row));
    }
    out
}

/// One value as a cell: text as is, the rest as compact JSON, cut to fit.
fn cell(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let text = text.replace('\n', "⏎");
    if text.chars().count() > MAX_CELL {
        let cut: String = text.chars().take(MAX_CELL - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_become_tables_and_objects_lines() {
        let agents = json!({"total": 2, "agents": [
            {"hostname": "web-01", "status": "Ready", "labels": {"role": "web"}},
            {"hostname": "db-01", "status": "Ready", "cpu_count": 4},
        ]});
        assert_eq!(
            render(&agents),
            "HOSTNAME  STATUS  CPU_COUNT\nweb-01    Ready\ndb-01     Ready   4\ntotal: 2\n"
        );
        let job = json!({"id": "j1", "status": "completed", "result": {"stdout": "a\nb"}});
        assert_eq!(
            render(&job),
            "id      j1\nresult  {\"stdout\":\"a\\nb\"}\nstatus  completed\n"
        );
        assert!(cell(&json!("x".repeat(100))).ends_with('…'));
    }
}
