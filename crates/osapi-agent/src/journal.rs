//! What an agent must clean up after a crash: the process groups of the
//! commands it started, and the temporary files of deploys in progress. Each
//! is one small file under `<state dir>/journal/`, written before the work
//! starts and removed when it ends, so that after a `kill -9` the next start
//! finds what was left: process groups that are still the ones recorded (the
//! same start time, so a reused id is never hit) are killed, and temporary
//! files are removed. Without a state directory nothing is written (the
//! in-process agents of the embedded stack die with it).

use std::io;
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use uuid::Uuid;

/// The journal of one agent.
#[derive(Debug, Default)]
pub struct Journal {
    dir: Option<PathBuf>,
}

/// What [`Journal::recover`] cleaned up.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Process groups killed.
    pub killed: usize,
    /// Temporary files removed.
    pub removed: usize,
}

/// One recorded piece of work; its record goes when this is dropped.
#[must_use = "the record is removed when this is dropped"]
pub struct Entry {
    record: Option<PathBuf>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(path) = self.record.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The start time of process `pid` (clock ticks since boot), from
/// `/proc/<pid>/stat`.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields after its closing parenthesis. Start time is field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Journal {
    /// The journal under `state_dir` (created if needed), or one that writes
    /// nothing.
    pub fn open(state_dir: Option<&Path>) -> io::Result<Journal> {
        let dir = match state_dir {
            Some(d) => {
                let dir = d.join("journal");
                std::fs::create_dir_all(&dir)?;
                Some(dir)
            }
            None => None,
        };
        Ok(Journal { dir })
    }

    fn record(&self, text: String) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let path = dir.join(Uuid::new_v4().to_string());
        match std::fs::write(&path, text) {
            Ok(()) => Some(path),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write to the agent's journal; a crash would leave this work behind");
                None
            }
        }
    }

    /// Records a command's process group (its leader is `pgid`).
    pub fn process_group(&self, pgid: i32) -> Entry {
        let record = start_time(pgid).and_then(|t| self.record(format!("pg {pgid} {t}\n")));
        Entry { record }
    }

    /// Records a temporary file about to be written.
    pub fn temp_file(&self, path: &Path) -> Entry {
        Entry {
            record: self.record(format!("tmp {}\n", path.display())),
        }
    }

    /// Cleans up what a previous run of the agent left: kills its process
    /// groups that still run, removes its temporary files, and forgets them.
    pub fn recover(&self) -> Recovered {
        let mut done = Recovered::default();
        let Some(dir) = &self.dir else { return done };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return done;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut words = text.split_whitespace();
            match words.next() {
                Some("pg") => {
                    let pgid = words.next().and_then(|w| w.parse::<i32>().ok());
                    let started = words.next().and_then(|w| w.parse::<u64>().ok());
                    if let (Some(pgid), Some(started)) = (pgid, started)
                        && pgid > 1
                        && start_time(pgid) == Some(started)
                        && killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
                    {
                        tracing::warn!(
                            pgid,
                            "killed a command left running by a crash of this agent"
                        );
                        done.killed += 1;
                    }
                }
                Some("tmp") => {
                    let file = text.trim_start().trim_start_matches("tmp").trim();
                    if !file.is_empty() && std::fs::remove_file(file).is_ok() {
                        tracing::info!(
                            file,
                            "removed a temporary file left by a crash of this agent"
                        );
                        done.removed += 1;
                    }
                }
                _ => {}
            }
            let _ = std::fs::remove_file(&path);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_restart_kills_what_a_crash_left_running_and_removes_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(Some(dir.path())).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let temp = dir.path().join(".app.conf.osapi-x.tmp");
        std::fs::write(&temp, b"half").unwrap();
        // A crash: the records stay behind.
        std::mem::forget(journal.process_group(pgid));
        std::mem::forget(journal.temp_file(&temp));
        let again = Journal::open(Some(dir.path())).unwrap();
        assert_eq!(
            again.recover(),
            Recovered {
                killed: 1,
                removed: 1
            }
        );
        let status = child.wait().unwrap();
        assert!(!status.success(), "the orphan was killed: {status:?}");
        assert!(!temp.exists());
        assert_eq!(
            again.recover(),
            Recovered::default(),
            "nothing is left twice"
        );
    }

    #[test]
    fn finished_work_leaves_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(Some(dir.path())).unwrap();
        {
            let _e = journal.temp_file(&dir.path().join("t"));
            assert_eq!(
                std::fs::read_dir(dir.path().join("journal"))
                    .unwrap()
                    .count(),
                1
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("journal"))
                .unwrap()
                .count(),
            0
        );
    }
}
