//! Command providers (`command.exec.execute`, `command.shell.execute`).
//!
//! Exec runs a program found on `PATH` (or given by path) with arguments and
//! no shell; shell runs `/bin/sh -c <command>`. Both run in a process group
//! of their own with stdin from `/dev/null`, capture stdout and stderr
//! concurrently up to [`ProviderConfig::max_output_bytes`] each, and on
//! timeout kill the whole group. A non-zero exit code is a successful
//! operation here; the caller decides what it means.
//!
//! Before either runs, its conditions are checked on the host (`creates`,
//! `removes`: a path exists or not; `unless`, `only_if`: a command line's
//! exit code); one that says the work is done skips the command, and the
//! result is unchanged with `skipped` set.
//!
//! When the main process has exited but a background process it started
//! still holds the output pipes, output is read for [`OUTPUT_GRACE`] more
//! and then the result is returned; the background process is left alone.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};

use crate::journal::Journal;
use nix::unistd::Pid;
use osapi_api::ops::{CommandExecParams, CommandShellParams, RunConditions};
use osapi_api::results::CommandResult;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{ProviderConfig, ProviderError, find_in_path};

/// How long output is still read after the main process exited.
pub const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// The shell used by `command.shell.execute`.
const SHELL: &str = "/bin/sh";

/// `command.exec.execute`.
pub async fn exec(
    params: &CommandExecParams,
    config: &ProviderConfig,
    journal: Option<&Journal>,
) -> Result<CommandResult, ProviderError> {
    let wrap = |e: String| {
        ProviderError(format!(
            "command exec failed: command execution failed: {e}"
        ))
    };
    if params.command.is_empty() {
        return Err(wrap("command is required".into()));
    }
    let place = (params.cwd.as_deref(), params.timeout);
    if let Some(reason) = skip_reason(&params.conditions, params.dry_run, place, config, journal)
        .await
        .map_err(wrap)?
    {
        return Ok(skipped(reason));
    }
    let program: OsString = if params.command.contains('/') {
        OsString::from(&params.command)
    } else {
        find_in_path(&params.command)
            .ok_or_else(|| {
                wrap(format!(
                    "failed to execute command {:?}: executable file not found in PATH",
                    params.command
                ))
            })?
            .into_os_string()
    };
    run(
        Invocation {
            program,
            arg0: &params.command,
            args: &params.args,
            cwd: params.cwd.as_deref(),
            timeout: params.timeout,
        },
        config,
        journal,
    )
    .await
    .map_err(wrap)
}

/// `command.shell.execute`.
pub async fn shell(
    params: &CommandShellParams,
    config: &ProviderConfig,
    journal: Option<&Journal>,
) -> Result<CommandResult, ProviderError> {
    let wrap =
        |e: String| ProviderError(format!("command shell failed: shell execution failed: {e}"));
    if params.command.is_empty() {
        return Err(wrap("command is required".into()));
    }
    let place = (params.cwd.as_deref(), params.timeout);
    if let Some(reason) = skip_reason(&params.conditions, params.dry_run, place, config, journal)
        .await
        .map_err(wrap)?
    {
        return Ok(skipped(reason));
    }
    let args = ["-c".to_string(), params.command.clone()];
    run(
        Invocation {
            program: OsString::from(SHELL),
            arg0: SHELL,
            args: &args,
            cwd: params.cwd.as_deref(),
            timeout: params.timeout,
        },
        config,
        journal,
    )
    .await
    .map_err(wrap)
}

/// The result of a command its conditions skipped.
fn skipped(reason: String) -> CommandResult {
    CommandResult {
        changed: false,
        skipped: Some(reason),
        ..CommandResult::default()
    }
}

/// Why the command is not to run: check mode (`dry_run`), or the first of
/// `conditions` (`creates`, `removes`, `unless`, `only_if`, in that order)
/// that says the work is done. Relative paths and the condition commands
/// use the command's `cwd` and timeout.
async fn skip_reason(
    conditions: &RunConditions,
    dry_run: bool,
    (cwd, timeout): (Option<&str>, Option<u64>),
    config: &ProviderConfig,
    journal: Option<&Journal>,
) -> Result<Option<String>, String> {
    if dry_run {
        return Ok(Some("check mode".into()));
    }
    if conditions.is_empty() {
        return Ok(None);
    }
    let cwd = cwd.filter(|c| !c.is_empty());
    let path = |p: &str| match cwd {
        Some(dir) => std::path::Path::new(dir).join(p),
        None => std::path::PathBuf::from(p),
    };
    // The path is checked, not what it points to: a dangling symlink exists.
    let exists = |p: &str| std::fs::symlink_metadata(path(p)).is_ok();
    if let Some(p) = &conditions.creates
        && exists(p)
    {
        return Ok(Some(format!("creates: {p} exists")));
    }
    if let Some(p) = &conditions.removes
        && !exists(p)
    {
        return Ok(Some(format!("removes: {p} does not exist")));
    }
    let check = |command: &str| {
        let args = ["-c".to_string(), command.to_string()];
        async move {
            run(
                Invocation {
                    program: OsString::from(SHELL),
                    arg0: SHELL,
                    args: &args,
                    cwd,
                    timeout,
                },
                config,
                journal,
            )
            .await
            .map(|r| r.exit_code)
        }
    };
    if let Some(command) = &conditions.unless {
        let code = check(command).await.map_err(|e| format!("unless: {e}"))?;
        if code == 0 {
            return Ok(Some(format!("unless: `{command}` exited 0")));
        }
    }
    if let Some(command) = &conditions.only_if {
        let code = check(command).await.map_err(|e| format!("only_if: {e}"))?;
        if code != 0 {
            return Ok(Some(format!("only_if: `{command}` exited {code}")));
        }
    }
    Ok(None)
}

/// What to run.
struct Invocation<'a> {
    program: OsString,
    arg0: &'a str,
    args: &'a [String],
    cwd: Option<&'a str>,
    timeout: Option<u64>,
}

/// The effective timeout: the job's (1 s up to the maximum) or the default.
fn resolve_timeout(requested: Option<u64>, config: &ProviderConfig) -> Result<Duration, String> {
    match requested {
        None => Ok(config.command_default_timeout),
        Some(0) => Err("timeout must be at least 1 second".into()),
        Some(secs) if Duration::from_secs(secs) > config.command_max_timeout => Err(format!(
            "timeout {secs}s exceeds the maximum of {}s",
            config.command_max_timeout.as_secs()
        )),
        Some(secs) => Ok(Duration::from_secs(secs)),
    }
}

fn check_cwd(cwd: &str) -> Result<(), String> {
    match std::fs::metadata(cwd) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("working directory {cwd:?} is not a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("working directory {cwd:?} does not exist"))
        }
        Err(e) => Err(format!("working directory {cwd:?} cannot be used: {e}")),
    }
}

async fn run(
    inv: Invocation<'_>,
    config: &ProviderConfig,
    journal: Option<&Journal>,
) -> Result<CommandResult, String> {
    let timeout = resolve_timeout(inv.timeout, config)?;
    let cwd = inv.cwd.filter(|c| !c.is_empty());
    if let Some(cwd) = cwd {
        check_cwd(cwd)?;
    }

    let mut cmd = Command::new(&inv.program);
    cmd.arg0(inv.arg0)
        .args(inv.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }

    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("failed to execute command {:?}: {e}", inv.arg0))?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    // Recorded until the command ends, so a restart after a crash kills it.
    let _recorded = journal.zip(group).map(|(j, g)| j.process_group(g.as_raw()));

    let cap = config.max_output_bytes;
    let stdout = Capture::start(child.stdout.take(), cap);
    let stderr = Capture::start(child.stderr.take(), cap);

    // Kills the group if this future is dropped (job cancelled) while the
    // command runs; disarmed once the child is reaped and its id may be reused.
    let mut guard = GroupGuard(group);
    let status = match tokio::time::timeout_at(started + timeout, child.wait()).await {
        Ok(Ok(status)) => {
            guard.disarm();
            status
        }
        Ok(Err(e)) => {
            return Err(format!("failed to wait for command {:?}: {e}", inv.arg0));
        }
        Err(_) => {
            kill_group(group);
            // Reap the child; the group is already dead.
            let _ = child.wait().await;
            guard.disarm();
            stdout.stop();
            stderr.stop();
            return Err(format!("command timed out after {}s", timeout.as_secs()));
        }
    };
    let elapsed = started.elapsed();

    let grace_end = Instant::now() + OUTPUT_GRACE;
    let (stdout, stdout_truncated) = stdout.finish(grace_end).await;
    let (stderr, stderr_truncated) = stderr.finish(grace_end).await;

    let exit_code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(CommandResult {
        stdout,
        stderr,
        exit_code,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        changed: true,
        stdout_truncated,
        stderr_truncated,
        skipped: None,
    })
}

/// Sends SIGKILL to every process of the command's group.
fn kill_group(group: Option<Pid>) {
    if let Some(pgid) = group
        && let Err(e) = killpg(pgid, Signal::SIGKILL)
        && e != nix::errno::Errno::ESRCH
    {
        tracing::warn!(error = %e, pgid = pgid.as_raw(), "cannot kill command process group");
    }
}

/// Kills a command's process group when dropped, unless disarmed.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

/// How much of a stream one read takes at most. Well under glibc's 64 KiB,
/// above which each free of the buffer (two per command) consolidates the
/// heap and hands memory back to the kernel, to be asked for again by the
/// next command.
const READ_CHUNK: usize = 16 * 1024;

/// Bytes read from one stream so far.
#[derive(Default)]
struct Captured {
    data: Vec<u8>,
    truncated: bool,
}

/// A stream being read in the background, up to a byte limit; the excess is
/// read and dropped so the writer never blocks.
struct Capture {
    buffer: Arc<Mutex<Captured>>,
    task: Option<JoinHandle<()>>,
}

fn locked(m: &Mutex<Captured>) -> MutexGuard<'_, Captured> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Capture {
    fn start<R: AsyncRead + Unpin + Send + 'static>(stream: Option<R>, cap: usize) -> Capture {
        let buffer = Arc::new(Mutex::new(Captured::default()));
        let task = stream.map(|mut stream| {
            let buffer = buffer.clone();
            tokio::spawn(async move {
                // Filled by the kernel as it is, never zeroed first.
                let mut chunk = Vec::with_capacity(READ_CHUNK);
                loop {
                    chunk.clear();
                    match stream.read_buf(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut b = locked(&buffer);
                            let room = cap.saturating_sub(b.data.len());
                            let take = n.min(room);
                            b.data.extend_from_slice(&chunk[..take]);
                            if take < n {
                                b.truncated = true;
                            }
                        }
                    }
                }
            })
        });
        Capture { buffer, task }
    }

    /// Stops reading.
    fn stop(&self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }

    /// Waits for end of stream until `until`, then returns the text read
    /// and whether the stream went past the limit.
    async fn finish(mut self, until: Instant) -> (String, bool) {
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(until, task).await.is_err() {
                abort.abort();
            }
        }
        let b = locked(&self.buffer);
        (String::from_utf8_lossy(&b.data).into_owned(), b.truncated)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_params(command: &str, args: &[&str]) -> CommandExecParams {
        CommandExecParams {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        }
    }

    fn shell_params(command: &str) -> CommandShellParams {
        CommandShellParams {
            command: command.into(),
            ..Default::default()
        }
    }

    /// True when the process is gone (or only a zombie waiting for its reaper).
    fn process_gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false),
        }
    }

    /// Runs `touch ran` in `dir` under `conditions`: whether it ran, and the
    /// skip reason.
    async fn run_under(dir: &std::path::Path, conditions: RunConditions) -> (bool, Option<String>) {
        let marker = dir.join("ran");
        let _ = std::fs::remove_file(&marker);
        let params = CommandShellParams {
            command: "touch ran".into(),
            cwd: Some(dir.display().to_string()),
            conditions,
            ..Default::default()
        };
        let r = shell(&params, &ProviderConfig::default(), None)
            .await
            .unwrap();
        assert_eq!(r.changed, r.skipped.is_none(), "{r:?}");
        (marker.exists(), r.skipped)
    }

    #[tokio::test]
    async fn conditions_skip_commands_whose_work_is_done() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("present"), "").unwrap();
        let c = |creates: Option<&str>,
                 removes: Option<&str>,
                 unless: Option<&str>,
                 only_if: Option<&str>| RunConditions {
            creates: creates.map(Into::into),
            removes: removes.map(Into::into),
            unless: unless.map(Into::into),
            only_if: only_if.map(Into::into),
        };
        // Relative paths are taken from cwd.
        let (ran, why) = run_under(dir.path(), c(Some("present"), None, None, None)).await;
        assert!(!ran);
        assert_eq!(why.as_deref(), Some("creates: present exists"));
        let (ran, why) = run_under(dir.path(), c(Some("absent"), None, None, None)).await;
        assert!(ran && why.is_none());
        let (ran, why) = run_under(dir.path(), c(None, Some("absent"), None, None)).await;
        assert!(!ran);
        assert_eq!(why.as_deref(), Some("removes: absent does not exist"));
        let (ran, _) = run_under(dir.path(), c(None, Some("present"), None, None)).await;
        assert!(ran);
        // The condition commands run in cwd too.
        let (ran, why) = run_under(dir.path(), c(None, None, Some("test -f present"), None)).await;
        assert!(!ran);
        assert_eq!(why.as_deref(), Some("unless: `test -f present` exited 0"));
        let (ran, _) = run_under(dir.path(), c(None, None, Some("test -f absent"), None)).await;
        assert!(ran);
        let (ran, why) = run_under(dir.path(), c(None, None, None, Some("exit 4"))).await;
        assert!(!ran);
        assert_eq!(why.as_deref(), Some("only_if: `exit 4` exited 4"));
        let (ran, _) = run_under(dir.path(), c(None, None, None, Some("true"))).await;
        assert!(ran);
        // Every condition must allow the command.
        let (ran, why) = run_under(
            dir.path(),
            c(
                Some("absent"),
                Some("present"),
                Some("false"),
                Some("false"),
            ),
        )
        .await;
        assert!(!ran);
        assert!(why.unwrap().starts_with("only_if"));
        // exec checks them too.
        let mut params = exec_params("touch", &["ran"]);
        params.cwd = Some(dir.path().display().to_string());
        params.conditions.creates = Some(dir.path().join("present").display().to_string());
        let r = exec(&params, &ProviderConfig::default(), None)
            .await
            .unwrap();
        assert!(r.skipped.is_some() && !dir.path().join("ran").exists());
    }

    #[tokio::test]
    async fn check_mode_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut params = shell_params("touch ran");
        params.cwd = Some(dir.path().display().to_string());
        params.dry_run = true;
        let r = shell(&params, &ProviderConfig::default(), None)
            .await
            .unwrap();
        assert_eq!(r.skipped.as_deref(), Some("check mode"));
        assert!(!r.changed && !dir.path().join("ran").exists());
        let mut exec_p = exec_params("touch", &["ran"]);
        exec_p.cwd = params.cwd.clone();
        exec_p.dry_run = true;
        let r = exec(&exec_p, &ProviderConfig::default(), None)
            .await
            .unwrap();
        assert_eq!(r.skipped.as_deref(), Some("check mode"));
        assert!(!dir.path().join("ran").exists());
    }

    #[tokio::test]
    async fn non_zero_exit_is_success() {
        let r = exec(
            &exec_params("sh", &["-c", "echo out; echo err >&2; exit 3"]),
            &ProviderConfig::default(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(r.exit_code, 3);
        assert_eq!(r.stdout, "out\n");
        assert_eq!(r.stderr, "err\n");
        assert!(r.changed);
    }

    #[tokio::test]
    async fn exec_passes_arguments_without_a_shell() {
        let r = exec(
            &exec_params("echo", &["a b", "$HOME", "*"]),
            &ProviderConfig::default(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(r.stdout, "a b $HOME *\n");
        assert_eq!(r.exit_code, 0);
    }

    #[tokio::test]
    async fn exec_timeout_kills() {
        let mut p = exec_params("sleep", &["5"]);
        p.timeout = Some(1);
        let started = std::time::Instant::now();
        let err = exec(&p, &ProviderConfig::default(), None)
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(
            err.0,
            "command exec failed: command execution failed: command timed out after 1s"
        );
        assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    }

    #[tokio::test]
    async fn shell_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut p = shell_params(&format!(
            "sleep 30 & echo $! > '{}'; wait",
            pidfile.display()
        ));
        p.timeout = Some(1);
        let started = std::time::Instant::now();
        let err = shell(&p, &ProviderConfig::default(), None)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(1500));
        assert_eq!(
            err.0,
            "command shell failed: shell execution failed: command timed out after 1s"
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL delivery is asynchronous: allow the kernel a moment.
        let mut gone = false;
        for _ in 0..50 {
            if process_gone(pid) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gone, "background sleep {pid} survived the timeout");
    }

    #[tokio::test]
    async fn cancelled_job_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let p = shell_params(&format!(
            "sleep 30 & echo $! > '{}'; wait",
            pidfile.display()
        ));
        let config = ProviderConfig::default();
        let run = shell(&p, &config, None);
        // Drop the running operation once the background process exists.
        let cancelled = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::pin!(run);
            loop {
                tokio::select! {
                    _ = &mut run => return false,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {
                        if std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n')) {
                            return true;
                        }
                    }
                }
            }
        })
        .await
        .unwrap();
        assert!(cancelled);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut gone = false;
        for _ in 0..50 {
            if process_gone(pid) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gone, "background sleep {pid} survived cancellation");
    }

    #[tokio::test]
    async fn cwd_is_used_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = exec_params("pwd", &[]);
        p.cwd = Some(dir.path().display().to_string());
        let r = exec(&p, &ProviderConfig::default(), None).await.unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(r.stdout.trim_end(), real.display().to_string());

        let missing = dir.path().join("missing");
        p.cwd = Some(missing.display().to_string());
        let err = exec(&p, &ProviderConfig::default(), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.0,
            format!(
                "command exec failed: command execution failed: working directory {:?} does not exist",
                missing.display().to_string()
            )
        );

        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let mut s = shell_params("true");
        s.cwd = Some(file.display().to_string());
        let err = shell(&s, &ProviderConfig::default(), None)
            .await
            .unwrap_err();
        assert!(
            err.0
                .starts_with("command shell failed: shell execution failed: working directory")
        );
        assert!(err.0.ends_with("is not a directory"), "{err}");
    }

    #[tokio::test]
    async fn missing_command() {
        let err = exec(
            &exec_params("no-such-command-osapi", &[]),
            &ProviderConfig::default(),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.0,
            "command exec failed: command execution failed: failed to execute command \"no-such-command-osapi\": executable file not found in PATH"
        );
        let err = exec(
            &exec_params("/nonexistent/bin/tool", &[]),
            &ProviderConfig::default(),
            None,
        )
        .await
        .unwrap_err();
        assert!(
            err.0.starts_with("command exec failed: command execution failed: failed to execute command \"/nonexistent/bin/tool\": No such file or directory"),
            "{err}"
        );
        let err = exec(&exec_params("", &[]), &ProviderConfig::default(), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.0,
            "command exec failed: command execution failed: command is required"
        );
    }

    #[tokio::test]
    async fn timeout_limits() {
        let config = ProviderConfig::default();
        let mut p = exec_params("true", &[]);
        p.timeout = Some(0);
        assert_eq!(
            exec(&p, &config, None).await.unwrap_err().0,
            "command exec failed: command execution failed: timeout must be at least 1 second"
        );
        p.timeout = Some(301);
        assert_eq!(
            exec(&p, &config, None).await.unwrap_err().0,
            "command exec failed: command execution failed: timeout 301s exceeds the maximum of 300s"
        );
        p.timeout = Some(300);
        assert_eq!(exec(&p, &config, None).await.unwrap().exit_code, 0);
    }

    #[tokio::test]
    async fn shell_pipes_signals_and_stdin() {
        let config = ProviderConfig::default();
        let r = shell(
            &shell_params("printf 'a\\nb\\nc\\n' | grep -c . | tr -d ' '"),
            &config,
            None,
        )
        .await
        .unwrap();
        assert_eq!(r.stdout, "3\n");
        assert_eq!(r.exit_code, 0);
        let r = shell(&shell_params("kill -TERM $$"), &config, None)
            .await
            .unwrap();
        assert_eq!(r.exit_code, 128 + 15);
        // stdin is /dev/null: cat ends at once.
        let r = shell(&shell_params("cat; echo done"), &config, None)
            .await
            .unwrap();
        assert_eq!(r.stdout, "done\n");
    }

    #[tokio::test]
    async fn output_is_capped_per_stream() {
        let config = ProviderConfig {
            max_output_bytes: 10,
            ..Default::default()
        };
        let r = shell(
            &shell_params("printf 0123456789abcdef; printf short >&2; head -c 1000000 /dev/zero"),
            &config,
            None,
        )
        .await
        .unwrap();
        assert_eq!(r.stdout, "0123456789");
        assert!(r.stdout_truncated);
        assert_eq!(r.stderr, "short");
        assert!(!r.stderr_truncated);
        assert_eq!(r.exit_code, 0);
        let r = shell(&shell_params("printf 0123456789"), &config, None)
            .await
            .unwrap();
        assert_eq!(r.stdout, "0123456789");
        assert!(!r.stdout_truncated, "exactly the limit is not truncated");
    }

    #[tokio::test]
    async fn background_process_holding_the_pipe_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let p = shell_params(&format!(
            "sleep 30 & echo $! > '{}'; echo done",
            pidfile.display()
        ));
        let started = std::time::Instant::now();
        let r = shell(&p, &ProviderConfig::default(), None).await.unwrap();
        assert!(started.elapsed() < OUTPUT_GRACE + Duration::from_secs(1));
        assert_eq!(r.stdout, "done\n");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}
