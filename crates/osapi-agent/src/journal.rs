//! What an agent must clean up after a crash: the process groups of the
//! commands it started, and the temporary files of deploys in progress. They
//! are lines of one append-only log, `<state dir>/journal/log`: `+<n> <what>`
//! before the work starts, `-<n>` when it ends. After a `kill -9` the next
//! start reads what was left: process groups that are still the ones
//! recorded (the same start time, so a reused id is never hit) are killed,
//! and temporary files are removed. The log is not synced: it has to survive
//! the agent's death, not the machine's (which ends its commands anyway).
//! It is emptied whenever nothing is in progress and has grown, and
//! rewritten with the live entries when it grows too large without such a
//! moment. The directory and the log are made when first needed: an agent
//! that never runs a command or a deploy writes nothing, and its start
//! creates no file for it. Without a state directory nothing is written
//! (the in-process agents of the embedded stack die with it).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The log's name in the journal directory.
const LOG: &str = "log";
/// A log this large is emptied as soon as nothing is in progress.
const EMPTY_AFTER: u64 = 256 << 10;
/// A log this large is rewritten with only the entries still live.
const REWRITE_AFTER: u64 = 16 << 20;

/// The journal of one agent.
#[derive(Debug, Default)]
pub struct Journal {
    log: Option<Arc<Log>>,
}

/// The open log and what is live in it.
#[derive(Debug)]
struct Log {
    dir: PathBuf,
    state: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    /// Opened (and made, with its directory) by the first entry.
    file: Option<File>,
    next: u64,
    live: HashMap<u64, String>,
    bytes: u64,
    failed: bool,
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
    record: Option<(Arc<Log>, u64)>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some((log, n)) = self.record.take() {
            log.remove(n);
        }
    }
}

/// The start time of process `pid` (clock ticks since boot), from
/// `/proc/<pid>/stat`.
fn start_time(pid: i32) -> Option<u64> {
    // One read into a buffer on the stack (once per command started): the
    // fields up to the start time take well under 1 KiB (a command name is
    // at most 16 bytes, each number at most 20 digits).
    let mut buf = [0u8; 1024];
    let n =
        std::io::Read::read(&mut File::open(format!("/proc/{pid}/stat")).ok()?, &mut buf).ok()?;
    let stat = buf.get(..n)?;
    // The command name (field 2) may hold spaces, parentheses and bytes
    // that are not UTF-8: count fields after its closing parenthesis.
    // Start time is field 22.
    let after = stat.iter().rposition(|&b| b == b')')? + 1;
    let rest = std::str::from_utf8(&stat[after..]).ok()?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The log in `dir`, opened to append to; made when `create` is set.
fn open_log(dir: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .create(create)
        .append(true)
        .open(dir.join(LOG))
}

/// The log left by an earlier run, if there is one.
fn existing_log(dir: &Path) -> io::Result<Option<File>> {
    match open_log(dir, false) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, state: &mut LogState, line: &str) {
        let file = match &mut state.file {
            Some(f) => Ok(f),
            None => std::fs::create_dir_all(&self.dir)
                .and_then(|()| open_log(&self.dir, true))
                .map(|f| state.file.insert(f)),
        };
        match file.and_then(|f| f.write_all(line.as_bytes())) {
            Ok(()) => state.bytes += line.len() as u64,
            Err(e) => {
                if !state.failed {
                    tracing::warn!(error = %e, "cannot write to the agent's journal; a crash would leave this work behind");
                }
                state.failed = true;
            }
        }
    }

    fn add(&self, what: String) -> u64 {
        let mut state = self.lock();
        let n = state.next;
        state.next += 1;
        self.append(&mut state, &format!("+{n} {what}\n"));
        state.live.insert(n, what);
        n
    }

    fn remove(&self, n: u64) {
        let mut state = self.lock();
        state.live.remove(&n);
        if state.live.is_empty() && state.bytes >= EMPTY_AFTER {
            // Nothing in progress: the whole log is history.
            if state.file.as_ref().is_some_and(|f| f.set_len(0).is_ok()) {
                state.bytes = 0;
                return;
            }
        }
        self.append(&mut state, &format!("-{n}\n"));
        if state.bytes >= REWRITE_AFTER
            && let Err(e) = self.rewrite(&mut state)
        {
            tracing::warn!(error = %e, "cannot rewrite the agent's journal");
        }
    }

    /// Replaces the log by one holding only the live entries.
    fn rewrite(&self, state: &mut LogState) -> io::Result<()> {
        let tmp = self.dir.join(format!("{LOG}.new"));
        let mut text = String::new();
        for (n, what) in &state.live {
            text.push_str(&format!("+{n} {what}\n"));
        }
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, self.dir.join(LOG))?;
        state.file = Some(open_log(&self.dir, true)?);
        state.bytes = text.len() as u64;
        Ok(())
    }
}

impl Journal {
    /// The journal under `state_dir` (its directory and log made by the
    /// first entry), or one that writes nothing.
    pub fn open(state_dir: Option<&Path>) -> io::Result<Journal> {
        let Some(state_dir) = state_dir else {
            return Ok(Journal::default());
        };
        let dir = state_dir.join("journal");
        let file = existing_log(&dir)?;
        let bytes = match &file {
            Some(f) => f.metadata()?.len(),
            None => 0,
        };
        Ok(Journal {
            log: Some(Arc::new(Log {
                dir,
                state: Mutex::new(LogState {
                    file,
                    next: 0,
                    live: HashMap::new(),
                    bytes,
                    failed: false,
                }),
            })),
        })
    }

    fn record(&self, what: String) -> Entry {
        Entry {
            record: self.log.as_ref().map(|log| (log.clone(), log.add(what))),
        }
    }

    /// Records a command's process group (its leader is `pgid`).
    pub fn process_group(&self, pgid: i32) -> Entry {
        if self.log.is_none() {
            return Entry { record: None };
        }
        match start_time(pgid) {
            Some(t) => self.record(format!("pg {pgid} {t}")),
            None => Entry { record: None },
        }
    }

    /// Records a temporary file about to be written.
    pub fn temp_file(&self, path: &Path) -> Entry {
        if self.log.is_none() {
            return Entry { record: None };
        }
        self.record(format!("tmp {}", path.display()))
    }

    /// Cleans up what a previous run of the agent left: kills its process
    /// groups that still run, removes its temporary files, and forgets them.
    /// Call it before recording anything.
    pub fn recover(&self) -> Recovered {
        let mut done = Recovered::default();
        let Some(log) = &self.log else { return done };
        let mut state = log.lock();
        let text = std::fs::read_to_string(log.dir.join(LOG)).unwrap_or_default();
        let mut left: Vec<(u64, &str)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix('+') {
                if let Some((n, what)) = rest.split_once(' ')
                    && let Ok(n) = n.parse::<u64>()
                {
                    left.push((n, what));
                }
            } else if let Some(n) = line.strip_prefix('-').and_then(|n| n.parse::<u64>().ok()) {
                left.retain(|(m, _)| *m != n);
            }
        }
        // Entries of earlier versions: one file each.
        let mut legacy = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&log.dir) {
            for entry in entries.flatten() {
                if entry.file_name() != LOG {
                    legacy.push(entry.path());
                }
            }
        }
        let legacy_text: Vec<String> = legacy
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect();
        for what in left
            .iter()
            .map(|(_, w)| *w)
            .chain(legacy_text.iter().map(|t| t.trim()))
        {
            undo(what, &mut done);
        }
        for path in legacy {
            let _ = std::fs::remove_file(path);
        }
        if state.file.as_ref().is_some_and(|f| f.set_len(0).is_ok()) {
            state.bytes = 0;
        }
        done
    }
}

/// Undoes one recorded piece of work.
fn undo(what: &str, done: &mut Recovered) {
    let mut words = what.split_whitespace();
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
            let file = what.trim_start().trim_start_matches("tmp").trim();
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// A command whose name is not UTF-8 (and holds a parenthesis) is
    /// recorded too: its start time is found.
    #[test]
    fn a_command_with_any_name_has_its_start_time_read() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"sl)\xffp");
        let program = dir.path().join(name);
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap();
        std::fs::copy(sleep, &program).unwrap();
        // Another test's fork may briefly hold the copy open for writing.
        let mut child = (0..100)
            .find_map(
                |_| match std::process::Command::new(&program).arg("30").spawn() {
                    Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32) => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        None
                    }
                    spawned => Some(spawned.unwrap()),
                },
            )
            .unwrap();
        let stat = std::fs::read(format!("/proc/{}/stat", child.id())).unwrap();
        assert!(std::str::from_utf8(&stat).is_err(), "the name is not UTF-8");
        let started = start_time(child.id() as i32);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(started.is_some_and(|t| t > 0));
    }

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
        let temp = dir.path().join("t");
        {
            let _e = journal.temp_file(&temp);
            std::fs::write(&temp, b"x").unwrap();
            // A crash now would leave it to clean up.
            let again = Journal::open(Some(dir.path())).unwrap();
            let log = std::fs::read_to_string(dir.path().join("journal").join(LOG)).unwrap();
            assert!(log.contains("tmp "), "{log}");
            drop(again);
        }
        // Finished: a restart finds nothing to undo.
        let again = Journal::open(Some(dir.path())).unwrap();
        assert_eq!(again.recover(), Recovered::default());
        assert!(temp.exists(), "a finished write is not undone");
    }

    #[test]
    fn the_log_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(Some(dir.path())).unwrap();
        let path = dir.path().join("journal").join(LOG);
        let long_running = journal.temp_file(&dir.path().join("long"));
        // Many short entries while one stays live: the log is rewritten.
        let name = dir.path().join("x".repeat(200));
        for _ in 0..(REWRITE_AFTER / 200 + 10) {
            drop(journal.temp_file(&name));
        }
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < REWRITE_AFTER, "rewritten: {size} bytes");
        // The live entry survived the rewrite.
        std::mem::forget(long_running);
        std::fs::write(dir.path().join("long"), b"half").unwrap();
        let again = Journal::open(Some(dir.path())).unwrap();
        assert_eq!(again.recover().removed, 1);
        // Nothing live: the log empties once it has grown.
        let journal = Journal::open(Some(dir.path())).unwrap();
        for _ in 0..(EMPTY_AFTER / 200 + 10) {
            drop(journal.temp_file(&name));
        }
        assert!(std::fs::metadata(&path).unwrap().len() < EMPTY_AFTER);
    }

    #[test]
    fn entries_of_earlier_versions_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let journal_dir = dir.path().join("journal");
        std::fs::create_dir_all(&journal_dir).unwrap();
        let temp = dir.path().join(".a.osapi-x.tmp");
        std::fs::write(&temp, b"half").unwrap();
        std::fs::write(
            journal_dir.join("0b0c6c1e-2f51-4c5e-9a0f-4d3f5f1c2b3a"),
            format!("tmp {}\n", temp.display()),
        )
        .unwrap();
        let journal = Journal::open(Some(dir.path())).unwrap();
        assert_eq!(journal.recover().removed, 1);
        assert!(!temp.exists());
        assert_eq!(
            std::fs::read_dir(&journal_dir).unwrap().count(),
            0,
            "the old entries are gone (and no log is made before an entry)"
        );
    }

    #[test]
    fn nothing_is_written_before_the_first_entry() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(Some(dir.path())).unwrap();
        assert_eq!(journal.recover(), Recovered::default());
        let journal_dir = dir.path().join("journal");
        assert!(!journal_dir.exists(), "an agent's start makes no file");
        // The first entry makes the directory and the log, and is undone
        // after a crash like any other.
        let temp = dir.path().join(".b.osapi-x.tmp");
        std::fs::write(&temp, b"half").unwrap();
        std::mem::forget(journal.temp_file(&temp));
        let log = std::fs::read_to_string(journal_dir.join(LOG)).unwrap();
        assert!(log.contains("tmp "), "{log}");
        let again = Journal::open(Some(dir.path())).unwrap();
        assert_eq!(again.recover().removed, 1);
        assert!(!temp.exists());
    }
}
