//! Whether a delivered job may run: signed by a controller key the agent
//! trusts and unmodified (when keys are configured), and never run before by
//! this agent (a replayed message runs once only, also across restarts: the
//! ids of jobs taken are kept in the state directory until their deadline).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use osapi_api::records::JobRecord;
use osapi_api::signing::JobVerifier;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::{AgentError, AgentSecurity};
use crate::metrics::Refusal;

/// Name of the file of job ids taken, in the state directory.
const SEEN_FILE: &str = "jobs-taken";
/// Entries added between prunes of expired ids.
const PRUNE_EVERY: usize = 4096;

/// Jobs taken: id → deadline (after which a replay is refused anyway).
struct Seen {
    ids: HashMap<Uuid, OffsetDateTime>,
    /// The bus's stream sequence of each job taken since this process
    /// started, when the bus has one (a copy delivered again has the same).
    sequences: HashMap<Uuid, u64>,
    log: Option<File>,
    path: Option<PathBuf>,
    added: usize,
}

/// The agent's admission checks.
pub(crate) struct Admission {
    verifier: JobVerifier,
    seen: Mutex<Seen>,
}

impl Admission {
    /// Checks built from `security`, with the ids of jobs taken before a
    /// restart read back from `state_dir`.
    pub(crate) fn new(
        security: &AgentSecurity,
        state_dir: Option<&Path>,
    ) -> Result<Admission, AgentError> {
        let mut seen = Seen {
            ids: HashMap::new(),
            sequences: HashMap::new(),
            log: None,
            path: None,
            added: 0,
        };
        if let Some(dir) = state_dir {
            let path = dir.join(SEEN_FILE);
            let file = read_seen(&path).map_err(|source| AgentError::State {
                path: path.clone(),
                source,
            })?;
            seen.ids = file.ids;
            seen.path = Some(path.clone());
            // Written afresh only when something is to be dropped: an
            // agent's start writes (and syncs) no file for nothing.
            let opened = if file.tidy {
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&path)
                    .map(|f| seen.log = Some(f))
            } else {
                seen.rewrite()
            };
            opened.map_err(|source| AgentError::State {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        Ok(Admission {
            verifier: JobVerifier::new(security.job_verify_keys.clone()),
            seen: Mutex::new(seen),
        })
    }

    /// `Ok` when `record` may run; otherwise why not (`rejected: …`). A job
    /// admitted is recorded as taken before it runs.
    /// Whether `record` may run: signed by a trusted key when keys are
    /// configured, and not taken before. A job admitted is remembered as
    /// taken, with the bus's stream `sequence` of its message when known.
    pub(crate) fn admit(
        &self,
        record: &JobRecord,
        sequence: Option<u64>,
    ) -> Result<(), (Refusal, String)> {
        if !self.verifier.is_empty() {
            self.verifier
                .verify(record)
                .map_err(|e| (Refusal::from(&e), format!("rejected: {e}")))?;
        }
        let mut seen = crate::runtime::lock(&self.seen);
        if seen.ids.contains_key(&record.id) {
            return Err((
                Refusal::Replay,
                "rejected: this agent already took this job (a replayed message)".to_string(),
            ));
        }
        seen.insert(record.id, record.deadline);
        if let Some(sequence) = sequence {
            seen.sequences.insert(record.id, sequence);
        }
        Ok(())
    }

    /// True when this agent took the job `id` before.
    pub(crate) fn taken(&self, id: &Uuid) -> bool {
        crate::runtime::lock(&self.seen).ids.contains_key(id)
    }

    /// True when a message of job `id` at stream `sequence` is the very
    /// message this process took (delivered again because its
    /// acknowledgement was lost), not a copy published again.
    pub(crate) fn same_message(&self, id: &Uuid, sequence: Option<u64>) -> bool {
        sequence.is_some()
            && crate::runtime::lock(&self.seen).sequences.get(id).copied() == sequence
    }
}

impl Seen {
    fn insert(&mut self, id: Uuid, deadline: OffsetDateTime) {
        self.ids.insert(id, deadline);
        // One write per entry: a crash leaves it whole or cut, never
        // split across writes of its parts.
        let line = format!("{id} {}\n", deadline.unix_timestamp());
        if let Some(log) = &mut self.log
            && let Err(e) = log.write_all(line.as_bytes())
        {
            tracing::warn!(error = %e, "cannot record a job taken; a replay after a restart would not be caught");
        }
        self.added += 1;
        if self.added >= PRUNE_EVERY {
            self.added = 0;
            let now = OffsetDateTime::now_utc();
            self.ids.retain(|_, deadline| *deadline > now);
            let ids = &self.ids;
            self.sequences.retain(|id, _| ids.contains_key(id));
            if let Err(e) = self.rewrite() {
                tracing::warn!(error = %e, "cannot compact the file of jobs taken");
            }
        }
    }

    /// Writes the live ids afresh and reopens the file for appending.
    fn rewrite(&mut self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            for (id, deadline) in &self.ids {
                writeln!(f, "{id} {}", deadline.unix_timestamp())?;
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        self.log = Some(OpenOptions::new().append(true).open(path)?);
        Ok(())
    }
}

/// What the file of jobs taken holds.
struct SeenFile {
    /// Ids whose deadline has not passed.
    ids: HashMap<Uuid, OffsetDateTime>,
    /// Every line is whole and readable, and the expired ones are few:
    /// the file can be appended to as it is (expired ones are dropped when
    /// read, and by the next compaction).
    tidy: bool,
}

/// Reads the file of jobs taken (missing: none).
fn read_seen(path: &Path) -> std::io::Result<SeenFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SeenFile {
                ids: HashMap::new(),
                tidy: true,
            });
        }
        Err(e) => return Err(e),
    };
    let now = OffsetDateTime::now_utc();
    let mut ids = HashMap::new();
    // A crash can leave a last line half written: appending after it would
    // spoil the next entry.
    let mut tidy = text.is_empty() || text.ends_with('\n');
    let mut expired = 0;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let entry = parts.next().zip(parts.next()).and_then(|(id, deadline)| {
            let id = Uuid::parse_str(id).ok()?;
            let deadline = OffsetDateTime::from_unix_timestamp(deadline.parse().ok()?).ok()?;
            Some((id, deadline))
        });
        match entry {
            Some((id, deadline)) if deadline > now => {
                ids.insert(id, deadline);
            }
            Some(_) => expired += 1,
            None => tidy = false,
        }
    }
    Ok(SeenFile {
        ids,
        tidy: tidy && expired < PRUNE_EVERY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use osapi_api::ops::JobClass;
    use osapi_api::signing::JobSigner;

    fn record(deadline_in: i64) -> JobRecord {
        JobRecord {
            id: Uuid::new_v4(),
            created: OffsetDateTime::now_utc(),
            operation: serde_json::json!({"type": "node.hostname.get"}),
            op_type: "node.hostname.get".into(),
            class: JobClass::Query,
            target: "_any".into(),
            expected_hosts: vec![],
            deadline: OffsetDateTime::now_utc() + time::Duration::seconds(deadline_in),
            retry_of: None,
            signature: None,
            trace_parent: None,
        }
    }

    #[test]
    fn replays_are_refused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let security = AgentSecurity::default();
        let live = record(300);
        let expired = record(-1);
        {
            let a = Admission::new(&security, Some(dir.path())).unwrap();
            assert_eq!(a.admit(&live, None), Ok(()));
            assert_eq!(a.admit(&expired, None), Ok(()));
            assert_eq!(a.admit(&live, None).unwrap_err().0, Refusal::Replay);
            assert!(a.admit(&live, None).unwrap_err().1.contains("replayed"));
        }
        let again = Admission::new(&security, Some(dir.path())).unwrap();
        assert!(
            again.admit(&live, None).unwrap_err().1.contains("replayed"),
            "remembered after a restart"
        );
        assert!(
            !again.taken(&expired.id),
            "ids past their deadline are dropped"
        );
    }

    #[test]
    fn many_expired_entries_are_compacted_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SEEN_FILE);
        let live = record(300);
        let past = OffsetDateTime::now_utc().unix_timestamp() - 1;
        let mut text: String = (0..PRUNE_EVERY)
            .map(|_| format!("{} {past}\n", Uuid::new_v4()))
            .collect();
        text.push_str(&format!("{} {}\n", live.id, live.deadline.unix_timestamp()));
        std::fs::write(&path, text).unwrap();
        let a = Admission::new(&AgentSecurity::default(), Some(dir.path())).unwrap();
        assert!(a.taken(&live.id));
        let kept = std::fs::read_to_string(&path).unwrap();
        assert_eq!(kept.lines().count(), 1, "only the live entry is kept");
    }

    #[test]
    fn a_half_written_last_entry_spoils_no_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let security = AgentSecurity::default();
        let (before, after) = (record(300), record(300));
        let path = dir.path().join(SEEN_FILE);
        let whole = format!("{} {}", before.id, before.deadline.unix_timestamp());
        // What a crash in the middle of a write can leave: a cut entry, or
        // a whole one without its end of line.
        for left in [format!("{whole}\n4f1c"), whole.clone()] {
            std::fs::write(&path, &left).unwrap();
            {
                let a = Admission::new(&security, Some(dir.path())).unwrap();
                assert_eq!(a.admit(&after, None), Ok(()), "{left:?}");
            }
            let again = Admission::new(&security, Some(dir.path())).unwrap();
            for taken in [&before, &after] {
                let refused = again.admit(taken, None).unwrap_err().0;
                assert_eq!(refused, Refusal::Replay, "{left:?}");
            }
        }
    }

    #[test]
    fn a_start_with_nothing_to_drop_writes_nothing_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let security = AgentSecurity::default();
        let live = record(300);
        {
            let a = Admission::new(&security, Some(dir.path())).unwrap();
            assert_eq!(a.admit(&live, None), Ok(()));
        }
        let path = dir.path().join(SEEN_FILE);
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let first = inode(&path);
        let again = Admission::new(&security, Some(dir.path())).unwrap();
        assert_eq!(inode(&path), first, "appended to, not replaced");
        assert_eq!(again.admit(&live, None).unwrap_err().0, Refusal::Replay);
    }

    #[test]
    fn a_copy_of_the_message_taken_is_told_from_one_published_again() {
        let a = Admission::new(&AgentSecurity::default(), None).unwrap();
        let job = record(300);
        assert!(!a.taken(&job.id));
        assert_eq!(a.admit(&job, Some(7)), Ok(()));
        assert!(a.taken(&job.id));
        // Delivered again: the same stream message.
        assert!(a.same_message(&job.id, Some(7)));
        // Published again: a message of its own.
        assert!(!a.same_message(&job.id, Some(8)));
        assert!(!a.same_message(&job.id, None));
        // Without a sequence (the in-memory bus) nothing is a copy.
        let other = record(300);
        assert_eq!(a.admit(&other, None), Ok(()));
        assert!(!a.same_message(&other.id, None));
    }

    #[test]
    fn trusted_keys_make_signatures_mandatory() {
        let signer = JobSigner::generate().unwrap();
        let security = AgentSecurity {
            job_verify_keys: vec![signer.public_key()],
            allow_unsigned_jobs: false,
        };
        let a = Admission::new(&security, None).unwrap();
        let unsigned = record(60);
        assert!(
            a.admit(&unsigned, None)
                .unwrap_err()
                .1
                .starts_with("rejected: the job is not signed")
        );
        let mut signed = record(60);
        signer.sign(&mut signed);
        assert_eq!(a.admit(&signed, None), Ok(()));
        let mut forged = record(60);
        signer.sign(&mut forged);
        forged.operation =
            serde_json::json!({"type": "command.shell.execute", "data": {"command": "id"}});
        let (why, message) = a.admit(&forged, None).unwrap_err();
        assert_eq!(why, Refusal::BadSignature);
        assert!(message.contains("does not match"));
    }
}
