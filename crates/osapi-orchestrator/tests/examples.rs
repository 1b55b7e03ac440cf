//! Runs every example as its own process (each with its own embedded control
//! plane on a random loopback port) and checks what it prints.
//!
//! The example binaries are the ones cargo builds next to this test
//! (`target/<profile>/examples/<name>`): `cargo test -p osapi-orchestrator`
//! builds them before running the tests. With a target filter such as
//! `--test examples` cargo does not rebuild them, so this test refuses a
//! binary older than any source its dep-info file lists.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

mod standin;

use osapi_agent::AgentConfig;
use osapi_orchestrator::Embedded;
use sha2::{Digest, Sha256};

/// An example that runs longer than this is killed and fails its test.
const DEADLINE: Duration = Duration::from_secs(120);

/// What the file examples upload.
const APP_CONFIG: &str = "server:\n  port: 8080\n  debug: false\n";

/// Environment variables the examples read; cleared so that the outcome
/// depends on nothing but the test.
const CLEARED: &[&str] = &[
    "OSAPI_URL",
    "OSAPI_TOKEN",
    "OSAPI_TARGET",
    "OSAPI_INTERFACE",
    "OSAPI_DEPLOY_DIR",
    "CLICOLOR_FORCE",
    "RUST_LOG",
];

fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    profile.join("examples")
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The source files cargo's dep-info (`<binary>.d`, written next to the
/// binary) lists for it: the example and every local crate it is built from.
fn sources(depinfo: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(depinfo) else {
        return Vec::new();
    };
    let Some((_, deps)) = text.lines().next().and_then(|l| l.split_once(": ")) else {
        return Vec::new();
    };
    // Paths are separated by spaces; a space inside a path is escaped as `\ `.
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' => paths
                .extend((!current.is_empty()).then(|| PathBuf::from(std::mem::take(&mut current)))),
            c => current.push(c),
        }
    }
    paths.extend((!current.is_empty()).then(|| PathBuf::from(current)));
    paths
}

/// The example's binary; fails when it is missing or older than a source it
/// is built from.
fn binary(name: &str) -> PathBuf {
    let path = examples_dir().join(name);
    let Some(built) = modified(&path) else {
        panic!(
            "example binary {} is missing: run this test with `cargo test -p osapi-orchestrator`, \
             which builds the examples first (or build them with `cargo build -p osapi-orchestrator --examples`)",
            path.display()
        );
    };
    for source in sources(&path.with_extension("d")) {
        if modified(&source).is_some_and(|changed| changed > built) {
            panic!(
                "example binary {} is older than {}: run this test with `cargo test -p osapi-orchestrator`, \
                 which rebuilds the examples first (with a target filter such as `--test examples` cargo \
                 does not; then run `cargo build -p osapi-orchestrator --examples` before)",
                path.display(),
                source.display()
            );
        }
    }
    path
}

/// Runs an example to completion (killing it after [`DEADLINE`]), with
/// `NO_COLOR=1`, the cleared variables removed and `env` added; asserts it
/// exited 0 and returns its stdout.
fn run_with(name: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(binary(name));
    cmd.env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in CLEARED {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<std::io::Result<Output>>();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(DEADLINE) {
        Ok(output) => output.unwrap_or_else(|e| panic!("cannot wait for example {name}: {e}")),
        Err(_) => {
            // The waiting thread has not reaped the child, so the pid is
            // still this child's (unless it exited in this very instant).
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("example {name} did not finish within {DEADLINE:?}; killed it (pid {pid})");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "example {name} failed ({}).\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    assert!(
        !stdout.contains('\u{1b}'),
        "example {name} printed colour codes despite NO_COLOR:\n{stdout}"
    );
    stdout
}

/// Runs an example against its own embedded control plane and checks the
/// lines every such run prints.
fn run(name: &str) -> String {
    let out = run_with(name, &[]);
    expect(
        name,
        &out,
        "Started an embedded control plane at http://127.0.0.1:",
    );
    expect(name, &out, "\nExecution Plan\n");
    expect(name, &out, "\nComplete: ");
    out
}

#[track_caller]
fn expect(name: &str, out: &str, needle: &str) {
    assert!(
        out.contains(needle),
        "example {name}: expected {needle:?} in its output:\n{out}"
    );
}

#[track_caller]
fn reject(name: &str, out: &str, needle: &str) {
    assert!(
        !out.contains(needle),
        "example {name}: did not expect {needle:?} in its output:\n{out}"
    );
}

/// Each needle, in this order.
#[track_caller]
fn expect_in_order(name: &str, out: &str, needles: &[&str]) {
    let mut rest = out;
    for needle in needles {
        match rest.find(needle) {
            Some(at) => rest = &rest[at + needle.len()..],
            None => panic!(
                "example {name}: expected {needle:?} (after {:?}) in its output:\n{out}",
                needles
            ),
        }
    }
}

/// The text after `prefix` on the first line that starts with it.
#[track_caller]
fn line_after<'a>(name: &str, out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("example {name}: no line starting with {prefix:?} in:\n{out}"))
}

/// The start of a finished step's line: `␠␠[tag]<pad>␠<name padded to 25>␠changed=`.
fn done(tag: &str, step: &str) -> String {
    // A failed step's line has no `changed=`: its tag says what happened.
    let tail = if tag == "failed" { "" } else { "changed=" };
    format!("  {:<11} {step:<25} {tail}", format!("[{tag}]"))
}

fn started(step: &str) -> String {
    format!("  {:<11} {step:<25} ", "[start]")
}

fn skipped(step: &str, reason: &str) -> String {
    format!("  {:<11} {step:<25} reason={reason:?}", "[skip]")
}

fn retried(step: &str, attempt: u32, error: &str) -> String {
    format!(
        "  {:<11} {step:<25} attempt={attempt} error={error:?}",
        "[retry]"
    )
}

/// A host line under a step: 13 spaces, `[host] <status>`.
fn host(hostname: &str, status: &str) -> String {
    format!("             [{hostname}] {status}")
}

/// `[changed]` or `[unchanged]`, whichever the step finished with.
#[track_caller]
fn expect_succeeded(name: &str, out: &str, step: &str) {
    assert!(
        out.contains(&done("changed", step)) || out.contains(&done("unchanged", step)),
        "example {name}: expected step {step} to succeed:\n{out}"
    );
}

/// `Load: 0.12 0.34 0.56`-style numbers.
fn is_load_triplet(text: &str) -> bool {
    let parts: Vec<&str> = text.split_whitespace().collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            p.split_once('.').is_some_and(|(i, f)| {
                !i.is_empty()
                    && f.len() == 2
                    && p.replace('.', "").bytes().all(|b| b.is_ascii_digit())
            })
        })
}

fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

/// `ID=` of /etc/os-release, lower-case, unquoted.
fn os_release_id() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim_matches('"').to_lowercase())
}

#[test]
fn basic() {
    let n = "basic";
    let out = run(n);
    expect(n, &out, "Plan: 2 steps in 2 levels\n");
    expect(n, &out, &done("unchanged", "health-check"));
    expect(n, &out, &done("unchanged", "get-hostname"));
    expect(n, &out, "Complete: 2 steps, 2 unchanged in ");
    assert!(!line_after(n, &out, "Hostname: ").is_empty());
}

#[test]
fn parallel() {
    let n = "parallel";
    let out = run(n);
    expect(n, &out, "Plan: 6 steps in 2 levels\n");
    expect(
        n,
        &out,
        "  Level 2 (parallel): get-hostname, get-disk, get-memory, get-load, get-uptime\n",
    );
    for step in [
        "get-hostname",
        "get-disk",
        "get-memory",
        "get-load",
        "get-uptime",
    ] {
        expect(n, &out, &started(step));
        expect(n, &out, &done("unchanged", step));
    }
    expect(n, &out, "Complete: 6 steps, 6 unchanged in ");
    assert!(!line_after(n, &out, "Hostname: ").is_empty());
    assert!(
        line_after(n, &out, "Disk ").contains(" GiB used of "),
        "{out}"
    );
    assert!(
        line_after(n, &out, "Memory: ").contains(" GiB used of "),
        "{out}"
    );
    assert!(is_load_triplet(line_after(n, &out, "Load: ")), "{out}");
    assert!(!line_after(n, &out, "Uptime: ").is_empty());
}

#[test]
fn retry() {
    let n = "retry";
    let out = run(n);
    expect_in_order(
        n,
        &out,
        &[
            &started("flaky"),
            &retried("flaky", 1, "transient failure on attempt 1"),
            &retried("flaky", 2, "transient failure on attempt 2"),
            &done("changed", "flaky"),
        ],
    );
    assert_eq!(
        out.matches("[retry]").count(),
        2,
        "only flaky retries:\n{out}"
    );
    expect(n, &out, &done("unchanged", "get-load"));
    expect(n, &out, "Complete: 3 steps, 1 changed, 2 unchanged in ");
    expect(n, &out, "\nflaky succeeded on attempt 3\n");
}

#[test]
fn command() {
    let n = "command";
    let out = run(n);
    expect(n, &out, "  Level 2 (parallel): run-uptime, shell-uname\n");
    expect(n, &out, &done("changed", "run-uptime"));
    expect(n, &out, &done("changed", "shell-uname"));
    assert!(
        line_after(n, &out, "uptime stdout: ").contains("load average"),
        "{out}"
    );
    assert!(
        line_after(n, &out, "uname: ").starts_with("Linux "),
        "{out}"
    );
}

#[test]
fn verbose() {
    let n = "verbose";
    let out = run(n);
    expect(n, &out, &done("unchanged", "get-hostname"));
    expect(n, &out, "\n             job_id: ");
    let hostname = line_after(n, &out, "Hostname: ");
    expect(n, &out, &format!("\n             hostname: {hostname}\n"));
}

#[test]
fn guards() {
    let n = "guards";
    let out = run(n);
    expect(n, &out, "Plan: 3 steps in 3 levels\n");
    expect(n, &out, &done("changed", "run-whoami"));
    reject(n, &out, "[skip]");
    assert!(!line_after(n, &out, "whoami: ").is_empty(), "{out}");
}

#[test]
fn only_if_changed() {
    let n = "only-if-changed";
    let out = run(n);
    expect(n, &out, "  Level 2 (parallel): get-hostname, get-disk\n");
    expect(n, &out, &done("unchanged", "get-hostname"));
    expect(n, &out, &done("unchanged", "get-disk"));
    expect(n, &out, &skipped("run-df", "no dependencies changed"));
    reject(n, &out, &started("run-df"));
    expect(n, &out, "Complete: 4 steps, 3 unchanged, 1 skipped in ");
    expect(n, &out, "\nrun-df did not run: no dependencies changed\n");
}

#[test]
fn error_recovery() {
    let n = "error-recovery";
    let out = run(n);
    expect(n, &out, "with agent(s): db-01, web-01, web-02 ");
    expect(n, &out, &done("failed", "deploy"));
    expect(n, &out, "              3 of 3 hosts failed: ");
    for h in ["db-01", "web-01", "web-02"] {
        expect(n, &out, &host(h, "failed: command exited with code 1"));
        expect(
            n,
            &out,
            &format!("\ndeploy failed on {h}: command exited with code 1\n"),
        );
    }
    expect_succeeded(n, &out, "cleanup");
    reject(n, &out, "[skip]");
    expect(n, &out, "Complete: 2 steps, 1 changed, 1 failed in ");
    expect(n, &out, "\nSummary: 2 steps, 1 changed, 1 failed\n");
    expect(n, &out, "\ncleanup stdout: running-cleanup\n");
}

#[test]
fn check_mode() {
    let n = "check-mode";
    let out = run(n);
    expect(
        n,
        &out,
        "Check mode: nothing is changed; \"changed\" says what would change\n",
    );
    expect(n, &out, &format!("{} would change\n", host("web-01", "ok")));
    expect(
        n,
        &out,
        "  [skip]      restart                   reason=\"check mode\"\n",
    );
    for h in ["db-01", "web-01", "web-02"] {
        expect(n, &out, &format!("  {h} would change: true\n"));
        expect(
            n,
            &out,
            &format!("  {h} DNS: DNS configuration would be updated (check mode)\n"),
        );
        expect(n, &out, "    +++ b");
        expect(n, &out, &format!("app-{h}.conf\n"));
    }
    expect(n, &out, "    -workers: 4\n    +workers: 8\n");
    expect(n, &out, "  restart: Skipped (check mode)\n");
}

#[test]
fn resume() {
    let n = "resume";
    let out = run(n);
    expect(
        n,
        &out,
        "run 1 failed: step \"install\" failed: 1 of 3 hosts failed: web-02: command exited with code 1\n",
    );
    expect(
        n,
        &out,
        "  [journal]   prepare                   changed=true  from the journal\n",
    );
    expect(
        n,
        &out,
        "  [batch]     install                   1/1 web-02\n",
    );
    expect(
        n,
        &out,
        "Complete: 2 steps, 2 changed, 1 from the journal in ",
    );
    for h in ["db-01", "web-01"] {
        expect(
            n,
            &out,
            &format!("  install on {h:<7} Changed in run 1 (kept from the journal)\n"),
        );
    }
    expect(n, &out, "  install on web-02  Changed in run 2\n");
}

#[test]
fn rolling_update() {
    let n = "rolling-update";
    let out = run(n);
    expect(
        n,
        &out,
        "  [skip]      canary-file               reason=\"runs as the gate of deploy-file\"\n",
    );
    expect(
        n,
        &out,
        "  [batch]     deploy-file               1/2 db-01\n",
    );
    expect(
        n,
        &out,
        "  [batch]     deploy-file               2/2 web-01, web-02\n",
    );
    expect(n, &out, "  [gate]      deploy-file               passed\n");
    let stop = "rollout stopped after batch 1 of 2: gate failed: canary-health: command exited with code 1";
    expect(
        n,
        &out,
        &format!("  [stop]      deploy-file               {stop}\n"),
    );
    for h in ["db-01", "web-01", "web-02"] {
        expect(n, &out, &format!("  run 1 {h:<7} Changed: changed=true\n"));
    }
    expect(n, &out, "  run 2 db-01   Changed: changed=true\n");
    for h in ["web-01", "web-02"] {
        expect(n, &out, &format!("  run 2 {h:<7} Skipped: {stop}\n"));
    }
}

#[test]
fn creates_unless() {
    let n = "creates-unless";
    let out = run(n);
    expect(n, &out, "Plan: 4 steps in 4 levels\n");
    for step in ["install", "upgrade"] {
        expect(n, &out, &done("changed", step));
    }
    expect(n, &out, &done("unchanged", "check"));
    // web-01's work was done: the commands did not run there.
    expect(n, &out, &format!("{} (creates: ", host("web-01", "ok")));
    expect(n, &out, "app-web-01/.installed exists)\n");
    expect(
        n,
        &out,
        &format!("{} (only_if: `test -f ", host("web-01", "ok")),
    );
    for h in ["db-01", "web-02"] {
        expect(
            n,
            &out,
            &format!("  install  {h:<7} Changed changed=true (ran)\n"),
        );
        expect(
            n,
            &out,
            &format!("  check    {h:<7} Ok changed=false (ran)\n"),
        );
    }
    expect(
        n,
        &out,
        "  install  web-01  Ok changed=false (skipped: creates: ",
    );
    // Exit code 1 is neither a failure nor a change.
    expect(
        n,
        &out,
        "  check    web-01  Ok changed=false (ran, exit code 1)\n",
    );
    expect(n, &out, "Complete: 4 steps, 3 changed, 1 unchanged in ");
}

#[test]
fn broadcast() {
    let n = "broadcast";
    let out = run(n);
    expect(n, &out, "Plan: 1 step in 1 level\n");
    expect(n, &out, "operation=node.hostname.get target=_all\n");
    expect(n, &out, &done("unchanged", "get-hostname"));
    for h in ["db-01", "web-01", "web-02"] {
        expect(n, &out, &format!("\n{}\n", host(h, "ok")));
    }
    expect(n, &out, "labels=env=prod, role=db\n");
    expect(n, &out, "labels=env=prod, role=web\n");
    expect(n, &out, "labels=env=staging, role=web\n");
    for h in ["db-01", "web-01", "web-02"] {
        assert!(!line_after(n, &out, &format!("  {h}: hostname=")).is_empty());
    }
}

#[test]
fn task_func() {
    let n = "task-func";
    let out = run(n);
    expect_in_order(
        n,
        &out,
        &[
            &started("summarize"),
            "\n  Hostname: ",
            &done("changed", "summarize"),
        ],
    );
    expect(n, &out, "Complete: 3 steps, 1 changed, 2 unchanged in ");
    let inside = line_after(n, &out, "  Hostname: ");
    let after = line_after(n, &out, "Report hostname: ");
    assert!(!after.is_empty());
    assert_eq!(inside, after, "the step's data is what it printed:\n{out}");
}

#[test]
fn dns_update() {
    let n = "dns-update";
    let out = run(n);
    expect(n, &out, "Plan: 3 steps in 3 levels\n");
    expect(n, &out, "operation=network.dns.get target=_any\n");
    expect(n, &out, &done("unchanged", "get-dns"));
    expect_succeeded(n, &out, "update-dns");
    assert!(
        line_after(n, &out, "DNS before: ").starts_with("servers=["),
        "{out}"
    );
    assert!(
        line_after(n, &out, "DNS update: ").starts_with("success=true "),
        "{out}"
    );
}

/// The path of `File <path> status: <status>`, checked to be in a temp dir
/// that is gone once the example exited.
#[track_caller]
fn deployed_file_is_temporary(name: &str, out: &str) {
    let line = line_after(name, out, "File ");
    let (path, status) = line
        .split_once(" status: ")
        .unwrap_or_else(|| panic!("example {name}: no status in {line:?}"));
    assert_eq!(status, "in-sync", "{out}");
    assert!(
        path.contains("/osapi-example-"),
        "deployed outside the example's temp dir: {path}"
    );
    assert!(!Path::new(path).exists(), "{path} outlived the example");
}

#[test]
fn file_deploy() {
    let n = "file-deploy";
    let out = run(n);
    expect(n, &out, "Plan: 4 steps in 4 levels\n");
    expect(n, &out, &done("changed", "upload-file"));
    expect(n, &out, &done("changed", "deploy-file"));
    expect(n, &out, &done("unchanged", "file-status"));
    deployed_file_is_temporary(n, &out);
}

#[test]
fn file_force_upload() {
    let n = "file-force-upload";
    let out = run(n);
    expect(n, &out, &done("changed", "upload-file"));
    expect(n, &out, &done("changed", "deploy-file"));
    let sha = &sha256_hex(APP_CONFIG)[..12];
    expect(
        n,
        &out,
        &format!(
            "\nUploaded app-config.yaml ({} bytes, sha256: {sha}, changed: true)\n",
            APP_CONFIG.len()
        ),
    );
    deployed_file_is_temporary(n, &out);
}

#[test]
fn file_changed() {
    let n = "file-changed";
    let out = run(n);
    expect_in_order(
        n,
        &out,
        &[
            &done("changed", "check-file"),
            &done("changed", "upload-file"),
            &done("changed", "deploy-file"),
        ],
    );
    let sha = &sha256_hex(APP_CONFIG)[..12];
    expect(
        n,
        &out,
        &format!("\nFile app-config.yaml changed: true (sha256: {sha})\n"),
    );
}

#[test]
fn agent_facts() {
    let n = "agent-facts";
    let out = run(n);
    expect_in_order(
        n,
        &out,
        &[
            &started("print-agent-facts"),
            "\n  Agents: 3 total\n\n  Agent: db-01\n",
            "\n  Agent: web-01\n",
            "\n  Agent: web-02\n",
            &done("unchanged", "print-agent-facts"),
        ],
    );
    for field in [
        "Status:       Ready",
        "Architecture: ",
        "Kernel:       ",
        "CPUs:         ",
        "FQDN:         ",
        "Package Mgr:  ",
        "Service Mgr:  ",
        "Uptime:       ",
        "OS:           ",
        "Memory:       total=",
    ] {
        assert_eq!(
            out.matches(&format!("\n    {field}")).count(),
            3,
            "{field:?} once per agent:\n{out}"
        );
    }
    expect(n, &out, "\n    Labels:       env=prod, role=db\n");
    expect(n, &out, "\n    Labels:       env=staging, role=web\n");
    expect(n, &out, "\n    Facts:        env=prod, role=web\n");
    for prefix in ["    Started:      ", "    Registered:   "] {
        let stamp = line_after(n, &out, prefix);
        let b = stamp.as_bytes();
        assert!(
            b.len() == 19 && b[4] == b'-' && b[10] == b' ' && b[13] == b':',
            "{prefix:?} is %Y-%m-%d %H:%M:%S: {stamp:?}"
        );
    }
    assert!(
        is_load_triplet(line_after(n, &out, "    Load:         ")),
        "{out}"
    );
    expect(n, &out, "Complete: 3 steps, 3 unchanged in ");
}

#[test]
fn discover() {
    let n = "discover";
    let out = run(n);
    expect_in_order(
        n,
        &out,
        &["Discovered 3 matching agents\n", "Execution Plan"],
    );
    expect(n, &out, "Plan: 4 steps in 2 levels\n");
    expect(
        n,
        &out,
        "  Level 2 (parallel): get-hostname, get-hostname-2, get-hostname-3\n",
    );
    for h in ["db-01", "web-01", "web-02"] {
        expect(
            n,
            &out,
            &format!("operation=node.hostname.get target={h}\n"),
        );
        expect(n, &out, &format!("\n{}\n", host(h, "ok")));
        assert!(!line_after(n, &out, &format!("  {h} -> ")).is_empty());
    }
    expect(n, &out, "Complete: 4 steps, 4 unchanged in ");
}

#[test]
fn group_by_fact() {
    let n = "group-by-fact";
    let out = run(n);
    expect_in_order(
        n,
        &out,
        &[
            "\nGroup prod (2 hosts): echo deploying release to prod\n",
            "Group staging (1 hosts): echo deploying release candidate to staging\n",
            "Execution Plan",
        ],
    );
    expect(
        n,
        &out,
        "  Level 2 (parallel): shell-echo, shell-echo-2, shell-echo-3\n",
    );
    for step in ["shell-echo", "shell-echo-2", "shell-echo-3"] {
        expect(n, &out, &done("changed", step));
    }
    expect(n, &out, "\n  db-01: deploying release to prod\n");
    expect(n, &out, "\n  web-01: deploying release to prod\n");
    expect(
        n,
        &out,
        "\n  web-02: deploying release candidate to staging\n",
    );
    expect(n, &out, "Complete: 4 steps, 3 changed, 1 unchanged in ");
}

#[test]
fn when_fact() {
    let n = "when-fact";
    let out = run(n);
    expect(n, &out, "operation=command.shell.execute target=_any\n");
    let debian_like = matches!(os_release_id().as_deref(), Some("debian" | "ubuntu"));
    if debian_like {
        expect(n, &out, &done("changed", "shell-apt-get"));
        reject(n, &out, "[skip]");
        expect(n, &out, "Complete: 3 steps, 1 changed, 2 unchanged in ");
    } else {
        expect(
            n,
            &out,
            &skipped("shell-apt-get", "when-fact: no matching agent"),
        );
        expect(n, &out, "Complete: 3 steps, 2 unchanged, 1 skipped in ");
    }
}

#[test]
fn fact_predicates() {
    let n = "fact-predicates";
    let out = run(n);
    expect_in_order(
        n,
        &out,
        &[
            "Found 3 agents matching all predicates\n",
            "  db-01 (",
            "  web-01 (",
            "  web-02 (",
            "Execution Plan",
        ],
    );
    assert!(
        line_after(n, &out, "  db-01 (").ends_with(" CPUs)"),
        "{out}"
    );
    expect(
        n,
        &out,
        "  Level 2 (parallel): get-load, get-load-2, get-load-3\n",
    );
    for h in ["db-01", "web-01", "web-02"] {
        expect(n, &out, &format!("operation=node.load.get target={h}\n"));
        assert!(
            is_load_triplet(line_after(n, &out, &format!("  {h}: load "))),
            "{out}"
        );
    }
}

#[test]
fn label_filter() {
    let n = "label-filter";
    let out = run(n);
    expect_in_order(
        n,
        &out,
        &[
            "Found 1 prod web agents\n  web-01 (labels=env=prod, role=web)\n",
            "Execution Plan",
        ],
    );
    expect(n, &out, "Plan: 2 steps in 2 levels\n");
    expect(n, &out, "operation=node.hostname.get target=web-01\n");
    reject(n, &out, "target=web-02");
    reject(n, &out, "target=db-01");
    expect(n, &out, &done("unchanged", "get-hostname"));
    assert!(!line_after(n, &out, "  web-01 -> ").is_empty());
}

#[test]
fn condition_filter() {
    let n = "condition-filter";
    let out = run(n);
    // Agents under pressure (e.g. a loaded build machine) are rightly left
    // out, so the count is read, not assumed.
    let found: usize = line_after(n, &out, "Discovered ")
        .strip_suffix(" healthy agents")
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no `Discovered <n> healthy agents` line:\n{out}"));
    assert!(found <= 3, "{out}");
    let steps = found + 1;
    let noun = if steps == 1 { "step" } else { "steps" };
    expect(n, &out, &format!("Plan: {steps} {noun} in "));
    assert_eq!(
        out.matches("operation=node.hostname.get target=").count(),
        found,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains(" -> ")).count(),
        found,
        "{out}"
    );
}

/// The file examples against one long-lived controller, as a user would run
/// them: repeated runs succeed (upstream's second `file-deploy` crashed),
/// and unchanged content is neither re-uploaded nor re-deployed.
#[test]
fn file_examples_rerun_against_one_controller() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let stack = runtime
        .block_on(
            Embedded::builder()
                .agent(AgentConfig::named("files-01"))
                .start(),
        )
        .expect("embedded control plane");
    let deploy_dir = tempfile::tempdir().expect("temp dir");
    let dir = deploy_dir
        .path()
        .to_str()
        .expect("UTF-8 temp dir")
        .to_string();
    let env = [
        ("OSAPI_URL", stack.url()),
        ("OSAPI_TOKEN", stack.token()),
        ("OSAPI_DEPLOY_DIR", dir.as_str()),
    ];
    let path = format!("{dir}/app-config.yaml");
    let status = format!("\nFile {path} status: in-sync\n");

    let n = "file-deploy";
    let first = run_with(n, &env);
    expect(
        n,
        &first,
        &format!("Using the controller at {}\n", stack.url()),
    );
    expect(n, &first, &done("changed", "upload-file"));
    expect(n, &first, &done("changed", "deploy-file"));
    expect(n, &first, &status);
    // The stack's agent is sandboxed: the file is under its root, and
    // nothing was written at the path itself.
    let sandboxed = stack
        .sandbox_dir()
        .expect("a sandboxed stack")
        .join("files-01/root")
        .join(path.trim_start_matches('/'));
    assert_eq!(
        std::fs::read_to_string(&sandboxed).expect("deployed file"),
        APP_CONFIG
    );
    assert!(!std::path::Path::new(&path).exists());

    let second = run_with(n, &env);
    expect(n, &second, &done("unchanged", "upload-file"));
    expect(n, &second, &done("unchanged", "deploy-file"));
    expect(n, &second, "Complete: 4 steps, 4 unchanged in ");
    expect(n, &second, &status);

    let n = "file-force-upload";
    let forced = run_with(n, &env);
    expect(n, &forced, &done("changed", "upload-file"));
    expect(n, &forced, &status);

    let n = "file-changed";
    let unchanged = run_with(n, &env);
    expect(n, &unchanged, &done("unchanged", "check-file"));
    expect(
        n,
        &unchanged,
        &skipped("upload-file", "no dependencies changed"),
    );
    expect(
        n,
        &unchanged,
        &skipped("deploy-file", "no dependencies changed"),
    );
    expect(
        n,
        &unchanged,
        "Complete: 4 steps, 2 unchanged, 2 skipped in ",
    );
    let sha = &sha256_hex(APP_CONFIG)[..12];
    expect(
        n,
        &unchanged,
        &format!("\nFile app-config.yaml changed: false (sha256: {sha})\n"),
    );

    runtime.block_on(stack.shutdown());
}

/// Examples that rely on custom facts say so against a controller whose
/// agents report none, instead of printing an empty result.
#[test]
fn fact_examples_say_when_no_agent_has_the_fact() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let stack = runtime
        .block_on(
            Embedded::builder()
                .agent(AgentConfig::named("plain-01"))
                .start(),
        )
        .expect("embedded control plane");
    let env = [("OSAPI_URL", stack.url()), ("OSAPI_TOKEN", stack.token())];
    for n in ["group-by-fact", "label-filter"] {
        let out = run_with(n, &env);
        expect(
            n,
            &out,
            &format!(
                "No agent of {} reports the custom fact `env` (1 listed)",
                stack.url()
            ),
        );
        assert!(!out.contains("Execution Plan"), "{n}: {out}");
    }
    runtime.block_on(stack.shutdown());
}

/// Every example, unchanged, against the stand-in for upstream's controller
/// (`standin/`, written from upstream's specification): `_any` answered by
/// every agent, a slow agent, no long-poll, Go-cased data, no custom facts.
#[test]
fn every_example_runs_against_an_upstream_controller() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let addr = runtime.block_on(standin::start(standin::three()));
    let url = format!("http://{addr}");
    let deploy_dir = tempfile::tempdir().expect("temp dir");
    let dir = deploy_dir.path().to_str().expect("UTF-8 temp dir");
    let env = [
        ("OSAPI_URL", url.as_str()),
        ("OSAPI_TOKEN", "upstream-token"),
        ("OSAPI_DEPLOY_DIR", dir),
    ];
    let examples = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"))
        .expect("examples dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".rs")?.replace('_', "-"))
        })
        .collect::<Vec<_>>();
    assert_eq!(examples.len(), 25, "{examples:?}");
    for n in &examples {
        let out = run_with(n, &env);
        expect(n, &out, &format!("Using the controller at {url}\n"));
        if ["group-by-fact", "label-filter"].contains(&n.as_str()) {
            // Upstream's agents report no custom facts: the examples say so.
            expect(n, &out, "reports the custom fact `env`");
        } else {
            expect(n, &out, "\nComplete: ");
        }
    }
}
