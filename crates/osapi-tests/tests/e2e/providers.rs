//! Operations read the real machine: values checked against /proc and statfs,
//! DNS on a temp resolv.conf, ping 127.0.0.1, commands.

use std::time::{Duration, Instant};

use osapi_api::job::JobStatus;
use osapi_api::results::*;
use serde_json::json;

use crate::common::{self, decode};

fn meminfo_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn node_values_match_the_machine() {
    let stack = common::single().await;
    let mem: MemoryResult = decode(&stack.run_job("node.memory.get", json!({}), "_any").await);
    assert_eq!(mem.total, meminfo_kib("MemTotal") * 1024);
    assert!(mem.available <= mem.total && mem.free <= mem.total);
    assert_eq!(mem.used, mem.total - mem.available);

    let up: UptimeResult = decode(&stack.run_job("node.uptime.get", json!({}), "_any").await);
    let proc_up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (up.uptime_seconds as f64 - proc_up).abs() < 5.0,
        "{} vs {proc_up}",
        up.uptime_seconds
    );
    assert_eq!(
        up.uptime,
        osapi_api::format::go_duration(Duration::from_secs(up.uptime_seconds))
    );

    let load: LoadResult = decode(&stack.run_job("node.load.get", json!({}), "_any").await);
    let proc_load: f64 = std::fs::read_to_string("/proc/loadavg")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(load.load1 >= 0.0 && (load.load1 - proc_load).abs() < 5.0);

    let disk: DiskResult = decode(&stack.run_job("node.disk.get", json!({}), "_any").await);
    let root = disk
        .disks
        .iter()
        .find(|d| d.name == "/")
        .expect("root filesystem listed");
    let st = nix::sys::statvfs::statvfs("/").unwrap();
    assert_eq!(root.total, st.blocks() as u64 * st.fragment_size() as u64);
    assert!(root.used <= root.total && root.free <= root.total);

    let os: OsInfo = decode(&stack.run_job("node.os.get", json!({}), "_any").await);
    let release = std::fs::read_to_string("/etc/os-release").unwrap();
    assert!(
        release.contains(&format!("ID={}", os.distribution))
            || release.contains(&format!("ID=\"{}\"", os.distribution))
    );

    let status: NodeStatusResult =
        decode(&stack.run_job("node.status.get", json!({}), "_any").await);
    assert_eq!(
        status.hostname,
        nix::unistd::gethostname().unwrap().into_string().unwrap()
    );
    assert_eq!(status.memory.unwrap().total, mem.total);
    assert!(status.os_info.is_some() && !status.disks.is_empty());
}

#[tokio::test]
async fn dns_get_and_update_on_a_temp_file() {
    let stack = common::single().await;
    let resolv = stack.path("resolv-agent-1.conf");
    let got: DnsConfigResult = decode(
        &stack
            .run_job("network.dns.get", json!({"interface": "eth0"}), "_any")
            .await,
    );
    assert_eq!(got.dns_servers, ["10.0.0.53", "10.0.0.54"]);
    assert_eq!(got.search_domains, ["corp.example"]);
    let d = stack
        .run_job("network.dns.update", json!({"interface": "eth0", "servers": ["192.0.2.1"], "search_domains": ["a.example", "b.example"]}), "_any")
        .await;
    let upd: DnsUpdateResult = decode(&d);
    assert!(upd.success && upd.changed);
    assert_eq!(d.changed, Some(true));
    let text = std::fs::read_to_string(&resolv).unwrap();
    assert!(
        text.contains("nameserver 192.0.2.1") && !text.contains("10.0.0.53"),
        "{text}"
    );
    assert!(text.contains("search a.example b.example"), "{text}");
    assert!(text.contains("options ndots:2"), "other lines kept: {text}");
    let again: DnsUpdateResult = decode(
        &stack
            .run_job(
                "network.dns.update",
                json!({"interface": "eth0", "servers": ["192.0.2.1"]}),
                "_any",
            )
            .await,
    );
    assert!(again.success && !again.changed);
}

#[tokio::test]
async fn ping_loopback() {
    let stack = common::single().await;
    let ping: PingResult = decode(
        &stack
            .run_job("network.ping.do", json!({"address": "127.0.0.1"}), "_any")
            .await,
    );
    assert_eq!(ping.packets_sent, 3);
    assert_eq!(ping.packets_received, 3);
    assert_eq!(ping.packet_loss, 0.0);
    assert!(ping.avg_rtt_ns > 0 && ping.min_rtt_ns <= ping.max_rtt_ns);
    let d = stack
        .run_job("network.ping.do", json!({"address": "not-an-ip"}), "_any")
        .await;
    assert_eq!(d.status(), JobStatus::Failed);
    assert!(d.error.unwrap().contains("not an IP address"));
}

#[tokio::test]
async fn commands() {
    let stack = common::single().await;
    let r: CommandResult = decode(
        &stack
            .run_job(
                "command.exec.execute",
                json!({"command": "sh", "args": ["-c", "echo out; echo err >&2; exit 3"]}),
                "_any",
            )
            .await,
    );
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str(), r.exit_code, r.changed),
        ("out\n", "err\n", 3, true)
    );

    let dir = stack.dir.path().canonicalize().unwrap();
    let r: CommandResult = decode(
        &stack
            .run_job(
                "command.exec.execute",
                json!({"command": "pwd", "cwd": dir}),
                "_any",
            )
            .await,
    );
    assert_eq!(r.stdout.trim(), dir.to_str().unwrap());

    let started = Instant::now();
    let d = stack
        .run_job(
            "command.exec.execute",
            json!({"command": "sleep", "args": ["30"], "timeout": 1}),
            "_any",
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "timeout enforced: {:?}",
        started.elapsed()
    );
    assert_eq!(d.status(), JobStatus::Failed);
    assert!(d.error.unwrap().contains("timed out after 1s"));

    let r: CommandResult = decode(
        &stack
            .run_job(
                "command.shell.execute",
                json!({"command": "printf '%s' \"$((6*7))\" | tr 4 X"}),
                "_any",
            )
            .await,
    );
    assert_eq!(r.stdout, "X2");
    let d = stack
        .run_job(
            "command.exec.execute",
            json!({"command": "definitely-not-a-command"}),
            "_any",
        )
        .await;
    assert_eq!(d.status(), JobStatus::Failed);
    assert!(d.error.unwrap().contains("not found"));
    // Fact references resolve before the command runs.
    let r: CommandResult = decode(
        &stack
            .run_job(
                "command.exec.execute",
                json!({"command": "echo", "args": ["@fact.hostname"]}),
                "_any",
            )
            .await,
    );
    assert_eq!(r.stdout, "agent-1\n");
    let d = stack
        .run_job(
            "command.exec.execute",
            json!({"command": "echo", "args": ["@fact.nope"]}),
            "_any",
        )
        .await;
    assert!(d.error.unwrap().contains("unresolvable fact reference"));
}
