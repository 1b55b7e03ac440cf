//! The `osapi` binary: tokens, config errors, and `start` + `client job run`
//! against the real embedded control plane.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

#[path = "support/ports.rs"]
mod ports;
use ports::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_osapi");

fn osapi(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("OSAPI_URL")
        .env_remove("OSAPI_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn token_generate_and_validate() {
    let f = config(
        "api:\n  server:\n    security:\n      signing_key: test-key\n      roles:\n        ops:\n          permissions: [node:read, health:read]\n",
    );
    let path = f.path().to_str().unwrap();
    let (ok, token, err) = osapi(&[
        "-f",
        path,
        "token",
        "generate",
        "-r",
        "read,ops",
        "-u",
        "alice@example.com",
    ]);
    assert!(ok, "{err}");
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3);
    let (ok, out, err) = osapi(&["-f", path, "token", "validate", "-t", token]);
    assert!(ok, "{err}");
    assert!(out.contains("subject:     alice@example.com"), "{out}");
    assert!(out.contains("roles:       read, ops"), "{out}");
    assert!(
        out.contains("job:read") && out.contains("node:read"),
        "{out}"
    );
    assert!(!out.contains("command:execute"), "{out}");

    let (ok, token, _) = osapi(&[
        "-f",
        path,
        "token",
        "generate",
        "-r",
        "admin",
        "-u",
        "bob",
        "-p",
        "node:read",
    ]);
    assert!(ok);
    let (_, out, _) = osapi(&["-f", path, "token", "validate", "-t", token.trim()]);
    assert!(
        out.contains("permissions: node:read\n"),
        "permissions claim replaces roles: {out}"
    );

    let (ok, _, err) = osapi(&["-f", path, "token", "generate", "-r", "root", "-u", "x"]);
    assert!(!ok);
    assert!(err.contains("unknown role \"root\""), "{err}");
    let (ok, _, err) = osapi(&[
        "-f",
        path,
        "token",
        "generate",
        "-r",
        "admin",
        "-u",
        "x",
        "-p",
        "node:write",
    ]);
    assert!(!ok);
    assert!(err.contains("unknown permission"), "{err}");
    let other = config("api:\n  server:\n    security:\n      signing_key: other-key\n");
    let (ok, _, err) = osapi(&[
        "-f",
        other.path().to_str().unwrap(),
        "token",
        "validate",
        "-t",
        token.trim(),
    ]);
    assert!(!ok);
    assert!(err.contains("Invalid token"), "{err}");

    // A token must expire: a zero or negative lifetime is refused.
    for ttl in ["--ttl=0s", "--ttl=0", "--ttl=-5s"] {
        let (ok, out, err) = osapi(&[
            "-f", path, "token", "generate", "-r", "admin", "-u", "x", ttl,
        ]);
        assert!(!ok, "{ttl} gave a token: {out}");
        assert!(err.contains("ttl"), "{ttl}: {err}");
    }
}

#[test]
fn config_errors_are_clear() {
    let (ok, _, err) = osapi(&["token", "generate", "-r", "admin", "-u", "x"]);
    assert!(!ok);
    assert!(err.contains("signing_key"), "{err}");
    let bad = config("api:\n  server:\n    port: [1, 2]\n");
    let (ok, _, err) = osapi(&[
        "-f",
        bad.path().to_str().unwrap(),
        "token",
        "validate",
        "-t",
        "x",
    ]);
    assert!(!ok);
    assert!(
        err.contains("invalid configuration") && err.contains("port"),
        "{err}"
    );
    let (ok, _, err) = osapi(&["-f", "/nonexistent/osapi.yaml", "start"]);
    assert!(!ok);
    assert!(
        err.contains("cannot read config file /nonexistent/osapi.yaml"),
        "{err}"
    );
    let (ok, _, err) = osapi(&["client", "health"]);
    assert!(!ok);
    assert!(err.contains("no controller URL"), "{err}");
    // A minimum agent version that is not a version stops a controller at
    // start, naming the key (before it looks for NATS).
    let bad = config(
        "api:\n  server:\n    min_agent_version: latest\n    nats: {host: 127.0.0.1, port: 1}\n    security: {signing_key: k}\n",
    );
    for cmd in [&["api", "server", "start"][..], &["start"]] {
        let mut args = vec!["-f", bad.path().to_str().unwrap()];
        args.extend_from_slice(cmd);
        let (ok, _, err) = osapi(&args);
        assert!(!ok, "{cmd:?}");
        assert!(
            err.contains(
                "error: api.server.min_agent_version: \"latest\" is not a semantic version"
            ),
            "{cmd:?}: {err}"
        );
    }
}

/// The commit the binaries must report: `OSAPI_GIT_COMMIT` when the build
/// had it, else git's answer for this checkout, else `unknown`.
fn expected_commit() -> String {
    if let Ok(c) = std::env::var("OSAPI_GIT_COMMIT")
        && !c.trim().is_empty()
    {
        return c.trim().to_string();
    }
    Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[test]
fn version_prints_the_version_and_the_commit() {
    let version = env!("CARGO_PKG_VERSION");
    let commit = expected_commit();
    let line = format!("osapi {version} (commit {commit})");
    // Needs no configuration: a missing file does not hide the version.
    for args in [
        &["version"][..],
        &["--version"],
        &["-f", "/nonexistent/osapi.yaml", "version"],
    ] {
        let (ok, out, err) = osapi(args);
        assert!(ok, "{args:?}: {err}");
        assert_eq!(out.trim_end(), line, "{args:?}");
    }
    let (ok, out, err) = osapi(&["version", "--json"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"version": version, "commit": commit})
    );
    let out = Command::new(env!("CARGO_BIN_EXE_osapi-agent"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        format!("osapi-agent {version} (commit {commit})")
    );
    // In this repository's checkout the commit is known.
    if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.git")).exists() {
        assert_eq!(commit.len(), 12, "{commit}");
        assert!(commit.chars().all(|c| c.is_ascii_hexdigit()), "{commit}");
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn start_then_run_a_job_with_the_client() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.9.9.9\n").unwrap();
    let f = config(&format!(
        "api:\n  server:\n    port: {port}\n    security:\n      signing_key: start-key\nagent:\n  hostname: cli-agent\n  labels: {{role: test}}\n  dns:\n    resolv_conf: {}\n    resolvectl: never\n",
        resolv.display()
    ));
    let path = f.path().to_str().unwrap().to_string();
    let log = dir.path().join("start.log");
    let child = Command::new(BIN)
        .args(["-f", &path, "start"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut token = None;
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("  export OSAPI_URL=") {
            url = Some(u.to_string());
        }
        if let Some(t) = line.strip_prefix("  export OSAPI_TOKEN=") {
            token = Some(t.to_string());
            break;
        }
    }
    let (url, token) = (url.expect("url printed"), token.expect("token printed"));
    let client = |args: &[&str]| {
        let mut full = vec!["client", "--url", url.as_str(), "--token", token.as_str()];
        full.extend_from_slice(args);
        osapi(&full)
    };
    assert_eq!(
        url,
        format!("http://127.0.0.1:{port}"),
        "listens on api.server.port"
    );
    // The printed token is signed with the configured key.
    let (ok, out, err) = osapi(&["-f", &path, "token", "validate", &token]);
    assert!(ok, "{err}");
    assert!(out.contains("roles:       admin"));

    let (ok, out, err) = client(&["job", "run", "--target", "_any", "node.hostname.get"]);
    assert!(ok, "{err}");
    let host = nix_hostname();
    assert!(out.contains(&format!("\"hostname\": \"{host}\"")), "{out}");
    assert!(out.contains("\"status\": \"completed\""), "{out}");

    let (ok, out, err) = client(&[
        "job",
        "run",
        "--target",
        "role:test",
        "network.dns.get",
        "--data",
        "{\"interface\":\"eth0\"}",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("10.9.9.9"), "{out}");
    // The controller's metrics, counted requests included.
    let (ok, out, err) = client(&["metrics"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("osapi_build_info") && out.contains("route=\"/job\""),
        "{out}"
    );
    let (ok, out, _) = client(&["agent", "list"]);
    assert!(ok);
    assert!(out.contains("\"hostname\": \"cli-agent\""), "{out}");
    // Controller and agent report this build's version and commit, and an
    // agent of the controller's own version has no version skew.
    let wire = match expected_commit().as_str() {
        "unknown" => env!("CARGO_PKG_VERSION").to_string(),
        commit => format!("{}+{commit}", env!("CARGO_PKG_VERSION")),
    };
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["agents"][0]["agent_version"], wire.as_str(), "{out}");
    assert!(!out.contains("VersionSkew"), "{out}");
    let (ok, out, err) = client(&["health", "status"]);
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["version"], wire.as_str(), "{out}");
    let upload = dir.path().join("f.txt");
    std::fs::write(&upload, "hello").unwrap();
    let (ok, out, err) = client(&["file", "upload", "greeting", upload.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("\"changed\": true"), "{out}");
    let (ok, out, _) = client(&["file", "list"]);
    assert!(ok && out.contains("greeting"), "{out}");
    let (ok, _, err) = client(&["job", "run", "--target", "nobody", "node.hostname.get"]);
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");

    // A command that exits non-zero is a failed job to whoever ran it.
    let (ok, out, err) = client(&[
        "job",
        "run",
        "--target",
        "_any",
        "command.shell.execute",
        "--data",
        "{\"command\":\"exit 3\"}",
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("\"exit_code\": 3"),
        "the result is still printed: {out}"
    );
    assert!(
        err.contains("failed: the command cli-agent exited with code 3"),
        "{err}"
    );

    // A reader that stops early (`| head`) ends the command quietly.
    let mut child = Command::new(BIN)
        .args(["client", "--url", &url, "--token", &token, "job", "run"])
        .args(["--target", "_any", "command.shell.execute", "--data"])
        .arg("{\"command\":\"head -c 400000 /dev/zero | tr '\\\\0' x\"}")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );

    // On a terminal (a pty from util-linux's `script`), results are a
    // table; `--json` asks for JSON there too.
    let on_tty = |json: bool| {
        let cmd = format!(
            "{BIN} client --url {url} --token {token} agent list{}",
            if json { " --json" } else { "" }
        );
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("util-linux `script` gives the command a terminal");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).replace('\r', "")
    };
    let table = on_tty(false);
    assert!(
        table.contains("HOSTNAME") && table.contains("cli-agent"),
        "{table}"
    );
    assert!(!table.contains('{'), "{table}");
    let json = on_tty(true);
    assert!(json.contains("\"hostname\": \"cli-agent\""), "{json}");

    // Logs to a file carry no colour codes.
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("agent started"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "{logs}");
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn job_signing_keys_and_unsigned_agents() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("fleet");
    let prefix = prefix.to_str().unwrap();
    let (ok, public, err) = osapi(&["key", "generate", "-o", prefix]);
    assert!(ok, "{err}");
    let public = public.trim();
    assert_eq!(public.len(), 44, "32 bytes of base64: {public}");
    let key = dir.path().join("fleet.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("fleet.pub"))
            .unwrap()
            .trim(),
        public
    );
    let (ok, _, err) = osapi(&["key", "generate", "-o", prefix]);
    assert!(
        !ok && err.contains("must not exist"),
        "never overwrites: {err}"
    );

    // An agent that trusts no key refuses a NATS server elsewhere…
    let remote = config("agent:\n  hostname: a1\n  nats: {host: 10.255.255.1, port: 4222}\n");
    let (ok, _, err) = osapi(&["-f", remote.path().to_str().unwrap(), "agent", "start"]);
    assert!(!ok);
    assert!(
        err.contains("agent.security.job_verify_keys is empty")
            && err.contains("allow_unsigned_jobs"),
        "{err}"
    );
    // …and a bad key is named by its place in the file.
    let bad = config("agent:\n  hostname: a1\n  security: {job_verify_keys: [nope]}\n");
    let (ok, _, err) = osapi(&["-f", bad.path().to_str().unwrap(), "agent", "start"]);
    assert!(
        !ok && err.contains("agent.security.job_verify_keys[0]"),
        "{err}"
    );
    let missing = config(
        "api:\n  server:\n    nats: {host: 127.0.0.1, port: 1}\n    security: {signing_key: k, job_signing_key_file: /nonexistent/key}\n",
    );
    let (ok, _, err) = osapi(&[
        "-f",
        missing.path().to_str().unwrap(),
        "api",
        "server",
        "start",
    ]);
    assert!(!ok && err.contains("job_signing_key_file"), "{err}");
    let (ok, _, err) = osapi(&[
        "-f",
        missing.path().to_str().unwrap(),
        "token",
        "generate",
        "-r",
        "admin",
        "-u",
        "x",
    ]);
    assert!(ok, "tokens need only the token settings: {err}");
}

/// Whether process `pid` catches `signal` (its handler is installed), from
/// the `SigCgt` mask of `/proc/<pid>/status`.
fn catches(pid: u32, signal: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

#[test]
fn a_reload_while_the_agent_still_connects_does_not_end_it() {
    // Nothing listens on this port: the agent keeps trying to connect.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let f = config(&format!(
        "agent:\n  hostname: early\n  state_dir: {}\n  nats: {{host: 127.0.0.1, port: {port}}}\n",
        dir.path().display()
    ));
    let child = Command::new(env!("CARGO_BIN_EXE_osapi-agent"))
        .arg("-f")
        .arg(f.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let pid = running.0.id();
    let hup = nix::sys::signal::Signal::SIGHUP as i32;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !catches(pid, hup) {
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "the agent exited before it could be reloaded"
        );
        assert!(
            std::time::Instant::now() < end,
            "the agent never installed its SIGHUP handler"
        );
        std::thread::yield_now();
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    // Still connecting, still alive (the default action would end it at
    // once with status 129).
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        running.0.try_wait().unwrap().is_none(),
        "a SIGHUP while connecting ended the agent"
    );
}
