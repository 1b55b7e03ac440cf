//! The run journal: every finished step's result as one JSON line,
//! appended while the plan runs (so a crash or Ctrl-C leaves what was done
//! readable), and read back by [`crate::Orchestrator::resume_from`] to skip
//! what already succeeded.
//!
//! A line is the step's [`StepResult`] (status, per-host results, data,
//! job ids) with `ts` and `fingerprint`: a digest of what the step does
//! (operation, target and parameters; for uploads the content; for custom
//! steps only their name, since code cannot be compared). A step is taken
//! from the journal only when its fingerprint is the same.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::lock;
use crate::plan::{Builtin, StepKind, StepSpec};
use crate::results::{StepResult, StepStatus};

/// A journal that cannot be written or read.
#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    /// The journal file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: std::io::Error,
}

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// When the step ended (RFC 3339).
    pub ts: String,
    /// What the step does (see the module docs).
    pub fingerprint: String,
    /// The step's result.
    #[serde(flatten)]
    pub result: StepResult,
}

impl Entry {
    /// True when the step succeeded (changed or unchanged).
    pub fn succeeded(&self) -> bool {
        matches!(
            self.result.status,
            StepStatus::Changed | StepStatus::Unchanged
        )
    }
}

/// Appends entries to a journal file.
pub(crate) struct Writer {
    path: PathBuf,
    file: Mutex<File>,
}

impl Writer {
    /// Opens `path` for appending (created when missing).
    pub fn open(path: &Path) -> Result<Writer, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| JournalError {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Writer {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends the result of `spec`, as one line written at once.
    pub fn record(&self, spec: &StepSpec, result: &StepResult) {
        let entry = Entry {
            ts: now(),
            fingerprint: fingerprint(spec),
            result: StepResult {
                from_journal: false,
                ..result.clone()
            },
        };
        let Ok(mut line) = serde_json::to_vec(&entry) else {
            return;
        };
        line.push(b'\n');
        if let Err(e) = lock(&self.file).write_all(&line) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write to the run journal");
        }
    }
}

/// The last entry of each step in the journal at `path`. A line that
/// cannot be read (the last one, cut by a crash) is left out.
pub(crate) fn read(path: &Path) -> Result<HashMap<String, Entry>, JournalError> {
    let err = |source| JournalError {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(err)?;
    let mut entries = HashMap::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(err)?;
        if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
            entries.insert(entry.result.name.clone(), entry);
        }
    }
    Ok(entries)
}

/// A digest of what `spec` does.
pub(crate) fn fingerprint(spec: &StepSpec) -> String {
    let what = match &spec.kind {
        StepKind::Job { op, target, data } => {
            json!({"op": op.as_str(), "target": target, "data": data})
        }
        StepKind::Builtin(b) => match b {
            Builtin::Upload {
                name,
                content_type,
                data,
                force,
            } => json!({
                "upload": name,
                "content_type": content_type,
                "sha256": hex(&Sha256::digest(data)),
                "force": force,
            }),
            Builtin::Changed { name, data } => {
                json!({"changed": name, "sha256": hex(&Sha256::digest(data))})
            }
            _ => Value::String(spec.kind.detail()),
        },
        StepKind::Func(_) => json!({"fn": spec.name}),
    };
    let digest = Sha256::digest(serde_json::to_vec(&what).unwrap_or_default());
    hex(&digest[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use osapi_api::ops::Operation;

    use super::*;

    fn job(target: &str, data: Value) -> StepSpec {
        StepSpec::new(
            "deploy".into(),
            StepKind::Job {
                op: Operation::CommandShell,
                target: target.into(),
                data,
            },
        )
    }

    #[test]
    fn fingerprints_follow_what_a_step_does() {
        let a = fingerprint(&job("_all", json!({"command": "true"})));
        assert_eq!(a, fingerprint(&job("_all", json!({"command": "true"}))));
        assert_eq!(a.len(), 32);
        assert_ne!(a, fingerprint(&job("role:web", json!({"command": "true"}))));
        assert_ne!(a, fingerprint(&job("_all", json!({"command": "false"}))));
        let upload = |content: &'static [u8]| {
            StepSpec::new(
                "upload".into(),
                StepKind::Builtin(Builtin::Upload {
                    name: "app.conf".into(),
                    content_type: osapi_api::ops::ContentType::Raw,
                    data: bytes::Bytes::from_static(content),
                    force: false,
                }),
            )
        };
        assert_ne!(fingerprint(&upload(b"v1")), fingerprint(&upload(b"v2")));
    }

    #[test]
    fn a_line_cut_by_a_crash_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.journal");
        let w = Writer::open(&path).unwrap();
        let spec = job("_all", json!({"command": "true"}));
        let result = StepResult {
            name: "deploy".into(),
            status: StepStatus::Changed,
            changed: true,
            error: None,
            skip_reason: None,
            data: json!({"exit_code": 0}),
            hosts: Vec::new(),
            job_id: None,
            duration: std::time::Duration::from_millis(5),
            attempts: 1,
            level: 0,
            from_journal: false,
        };
        w.record(&spec, &result);
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"ts\":\"2026-").unwrap();
        let entries = read(&path).unwrap();
        let entry = &entries["deploy"];
        assert!(entry.succeeded());
        assert_eq!(entry.fingerprint, fingerprint(&spec));
        assert_eq!(entry.result, result);
        let missing = read(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().starts_with("journal "), "{missing}");
    }
}
