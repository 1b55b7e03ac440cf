//! Process-level limits of the controller (`osapi start`, a real process
//! with its own file-descriptor limit): silent and slowloris sockets are
//! closed, keep-alive connections idle out but long-polls do not, the
//! connection cap holds, a cap above the fd limit is a startup error, and
//! job memory is bounded by bytes.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use osapi_api::job::{CreateJobRequest, JobStatus};
use serde_json::json;

#[path = "support/ports.rs"]
mod ports;
use ports::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_osapi");
const KEY: &str = "limits-test-signing-key";

/// An `osapi start` process, killed on drop.
struct Controller {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Controller {
    /// Starts `osapi start` under `ulimit -n <nofile>` with `extra` YAML
    /// under `api.server`, and waits until `/health` answers.
    fn start(nofile: u32, extra: &str) -> Controller {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("osapi.yaml");
        std::fs::write(&config, config_text(port, extra, dir.path())).unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" -f \"$1\" start"))
            .arg(BIN)
            .arg(&config)
            .env("OSAPI_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let c = Controller {
            child,
            port,
            _dir: dir,
        };
        let end = Instant::now() + Duration::from_secs(30);
        while health(port, Duration::from_secs(1)).is_err() {
            assert!(Instant::now() < end, "controller did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    fn client(&self) -> osapi_client::Client {
        osapi_client::Client::new(&format!("http://127.0.0.1:{}", self.port), &token()).unwrap()
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).unwrap()
    }

    /// Open sockets of the process.
    fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count()
    }

    fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024
    }
}

fn config_text(port: u16, extra: &str, dir: &Path) -> String {
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.0.0.53\n").unwrap();
    format!(
        "api:\n  server:\n    port: {port}\n    bind: 127.0.0.1\n    security: {{signing_key: {KEY}}}\n{extra}agent:\n  hostname: limits-agent\n  dns: {{resolv_conf: {}, resolvectl: never}}\n",
        resolv.display()
    )
}

fn token() -> String {
    token_with_role("admin")
}

fn token_with_role(role: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "generate", "-r", role, "-u", "tester"])
        .env("OSAPI_API_SERVER_SECURITY_SIGNING_KEY", KEY)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// One `GET /health` on a new connection, with a deadline for the answer.
fn health(port: u16, limit: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(limit))?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    if out.starts_with("HTTP/1.1 200") {
        Ok(out)
    } else {
        Err(std::io::Error::other(format!("unexpected answer: {out:?}")))
    }
}

/// True once the peer has closed `s` (read gives EOF or a reset), waiting
/// at most `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Raises this test process's own descriptor limit (to open many sockets).
fn raise_nofile(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        hard >= want,
        "this test needs `ulimit -Hn` >= {want} (it is {hard})"
    );
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard).unwrap();
    }
}

#[test]
fn silent_sockets_cannot_make_the_controller_unreachable() {
    raise_nofile(4096);
    // Defaults: header_read_timeout 10s, max_connections 80 % of 1024.
    let c = Controller::start(1024, "");
    let started = Instant::now();
    let mut silent: Vec<TcpStream> = (0..1100).map(|_| c.connect()).collect();
    let answered = health(c.port, Duration::from_secs(15));
    let took = started.elapsed();
    assert!(
        answered.is_ok() && took < Duration::from_secs(15),
        "/health behind 1 100 silent sockets: {answered:?} after {took:?}"
    );
    // The silent ones the controller took are closed by the header deadline.
    assert!(
        closed_within(&mut silent[0], Duration::from_secs(12)),
        "a silent socket stays open"
    );
    assert!(
        c.sockets() <= 819 + 16,
        "{} sockets open, over the cap",
        c.sockets()
    );
}

#[test]
fn slowloris_idle_and_long_polls() {
    let c = Controller::start(
        4096,
        "    header_read_timeout: 1s\n    idle_timeout: 3s\n    max_connections: 64\n",
    );

    // Slowloris: one header byte every 300 ms never completes a request.
    let mut slow = c.connect();
    let opened = Instant::now();
    slow.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut was_closed = false;
    for b in request.iter() {
        if slow.write_all(&[*b]).is_err() {
            was_closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        match slow.read(&mut buf) {
            Ok(0) => {
                was_closed = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                was_closed = true;
                break;
            }
            _ => {}
        }
    }
    let took = opened.elapsed();
    assert!(was_closed, "the slowloris client was never disconnected");
    assert!(
        took <= Duration::from_secs(3),
        "disconnected after {took:?}, past header_read_timeout + 2s"
    );

    // Keep-alive: a connection that finished a request may idle past the
    // header deadline, and is closed by the idle deadline.
    let mut kept = c.connect();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = kept.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle_since = Instant::now();
    assert!(
        !closed_within(&mut kept, Duration::from_millis(1800)),
        "closed by the header deadline while idle"
    );
    assert!(
        closed_within(&mut kept, Duration::from_secs(4)),
        "an idle keep-alive connection stays open"
    );
    assert!(idle_since.elapsed() >= Duration::from_secs(3));

    // A long-poll is not idle: it lasts as long as asked.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = c.client();
        let job = client
            .create_job(&CreateJobRequest::new(
                "command.exec.execute",
                json!({"command": "sleep", "args": ["8"]}),
                "_any",
            ))
            .await
            .unwrap();
        let asked = Instant::now();
        let d = client
            .job_wait(job.job_id, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(d.status(), JobStatus::Processing);
        assert!(asked.elapsed() >= Duration::from_millis(4900), "cut short");
    });
}

#[test]
fn crowds_of_idle_connections_and_slow_bodies_cannot_lock_clients_out() {
    let c = Controller::start(
        4096,
        "    header_read_timeout: 1s\n    idle_timeout: 30s\n    max_connections: 8\n",
    );
    // Eight keep-alive connections that each send a tiny request now and
    // then fill the cap; a new client still gets in (the one idle longest
    // makes room).
    let mut regulars: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = c.connect();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            s
        })
        .collect();
    let started = Instant::now();
    health(c.port, Duration::from_secs(5)).expect("answered at the cap");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a new client waited {:?} behind idle connections",
        started.elapsed()
    );
    regulars.clear();

    // A token holder who sends request headers and never the body holds no
    // connection past the stall deadline.
    let read = token_with_role("read");
    let slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = c.connect();
            s.write_all(
                format!(
                    "POST /node/_any/network/ping HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {read}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            s
        })
        .collect();
    let sent = Instant::now();
    for mut s in slow {
        assert!(
            closed_within(&mut s, Duration::from_secs(4)),
            "a stalled body kept its connection"
        );
    }
    assert!(sent.elapsed() < Duration::from_secs(4));
    health(c.port, Duration::from_secs(5)).expect("answered after the stalls");
}

#[test]
fn the_connection_cap_holds() {
    // Silent connections are closed by the header deadline, set far off
    // here, or to make room for newer ones: only eviction lets a new client
    // in within the test's time.
    let c = Controller::start(
        4096,
        "    header_read_timeout: 300s\n    max_connections: 64\n",
    );
    // However many connect, at most 64 are held.
    let _crowd: Vec<TcpStream> = (0..200).map(|_| c.connect()).collect();
    // Until the controller has taken in as many as it may (a busy machine
    // accepts slowly), then a while longer: never more than the cap.
    let reached = Instant::now() + Duration::from_secs(30);
    let mut most = 0;
    while most < 64 && Instant::now() < reached {
        most = most.max(c.sockets());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(most >= 64, "the cap was never reached ({most})");
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        most = most.max(c.sockets());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(most <= 64 + 16, "{most} sockets open with a cap of 64");
    // Behind the 136 of the crowd still queued: each is let in by closing
    // an older silent one. Quick on a calm machine; the limit allows for a
    // busy one, and is far below the header deadline.
    health(c.port, Duration::from_secs(60)).expect("a new client gets in at the cap");
}

#[test]
fn a_cap_above_the_descriptor_limit_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("osapi.yaml");
    std::fs::write(
        &config,
        config_text(free_port(), "    max_connections: 5000\n", dir.path()),
    )
    .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" -f \"$1\" start")
        .arg(BIN)
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_connections") && err.contains("open-file limit of 256"),
        "{err}"
    );
}

#[test]
fn job_memory_is_bounded_by_bytes() {
    let c = Controller::start(4096, "    jobs: {max_bytes: 64MiB}\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let last = rt.block_on(async {
        let client = c.client();
        let mut last = None;
        for _ in 0..60 {
            let d = client
                .run_job(
                    &CreateJobRequest::new(
                        "command.shell.execute",
                        json!({"command": "head -c 4000000 /dev/zero | tr '\\0' x"}),
                        "_any",
                    ),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
            assert_eq!(d.status(), JobStatus::Completed, "{:?}", d.error);
            last = d.id;
        }
        last.unwrap()
    });
    let rss = c.rss_mib();
    assert!(rss < 250, "RSS {rss} MiB after 60 jobs of 4 MB output");
    let newest = rt.block_on(c.client().job(last)).unwrap();
    let stdout = newest.result.unwrap()["stdout"].as_str().unwrap().len();
    assert_eq!(stdout, 4_000_000, "the newest job keeps its full output");
    let stats = rt.block_on(c.client().job_stats()).unwrap();
    assert!(
        stats.total_jobs < 60 && stats.total_jobs >= 10,
        "{} jobs kept",
        stats.total_jobs
    );
}
