//! The orchestrator against a real embedded control plane (controller and
//! agents in this process, HTTP on loopback): every operation, broadcast and
//! label targets with per-host accounting, host guards, tolerance, when_fact on
//! each target kind, discovery, files, lost hosts, and a rendered run.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

mod support;

use std::sync::Arc;
use std::time::Duration;

use osapi_agent::AgentConfig;
use osapi_agent::providers::{ProviderConfig, ResolvectlMode};
use osapi_orchestrator::Embedded;
use osapi_orchestrator::prelude::*;
use osapi_orchestrator::render::{ColorChoice, Renderer};
use support::SharedBuf;
use tempfile::TempDir;

struct Fleet {
    stack: Embedded,
    dir: TempDir,
}

fn agent(name: &str, dir: &TempDir) -> AgentConfig {
    let resolv = dir.path().join(format!("resolv-{name}.conf"));
    std::fs::write(&resolv, "nameserver 10.0.0.53\nsearch corp.example\n").unwrap();
    let mut c = AgentConfig::named(name);
    c.providers = ProviderConfig {
        resolv_conf: resolv,
        resolvectl: ResolvectlMode::Never,
        ..Default::default()
    };
    c
}

async fn fleet_with(ttl: Option<Duration>) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Embedded::builder()
        .agent(
            agent("web-01", &dir)
                .label("role", "web")
                .label("group", "web.dev")
                .fact("env", "prod"),
        )
        .agent(
            agent("web-02", &dir)
                .label("role", "web")
                .label("group", "web.prod")
                .fact("env", "staging"),
        )
        .agent(
            agent("db-01", &dir)
                .label("role", "db")
                .label("group", "db.prod")
                .fact("env", "prod"),
        );
    if let Some(ttl) = ttl {
        b = b.registry_ttl(ttl).heartbeat_interval(ttl / 5);
    }
    Fleet {
        stack: b.start().await.unwrap(),
        dir,
    }
}

async fn fleet() -> Fleet {
    fleet_with(None).await
}

impl Fleet {
    fn orch(&self) -> Orchestrator {
        Orchestrator::builder(self.stack.url(), self.stack.token())
            .quiet()
            .build()
            .unwrap()
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn hostnames(hosts: &[HostResult]) -> Vec<&str> {
    hosts.iter().map(|h| h.hostname.as_str()).collect()
}

#[tokio::test]
async fn every_operation_returns_its_typed_result() {
    let f = fleet().await;
    let o = f.orch();
    let health = o.health_check();
    let host = o.node_hostname_get("web-01").after(&health);
    let status = o.node_status_get("web-01").after(&health);
    let uptime = o.node_uptime_get("web-01").after(&health);
    let os_info = o.node_os_get("web-01").after(&health);
    let disk = o.node_disk_get("web-01").after(&health);
    let mem = o.node_memory_get("web-01").after(&health);
    let load = o.node_load_get("web-01").after(&health);
    let packages = o.node_packages_get("web-01", Some("*")).after(&health);
    let dns = o.network_dns_get("web-01", "").after(&health);
    let dns_update = o
        .network_dns_update("web-01", "", &["192.0.2.53"], &["example.com"])
        .after(&dns);
    let ping = o.network_ping_do("web-01", "127.0.0.1").after(&health);
    let exec = o.command_exec("web-01", "echo", &["hello"]).after(&health);
    let shell = o.command_shell("web-01", "echo $((40 + 2))").after(&health);
    let upload = o
        .file_upload("motd", ContentType::Raw, &b"welcome\n"[..])
        .after(&health);
    let changed = o.file_changed("motd", &b"welcome\n"[..]).after(&upload);
    let deploy = o
        .file_deploy(
            "web-01",
            FileDeployOpts::new("motd", f.path("motd")).mode("0640"),
        )
        .after(&upload);
    let fstatus = o.file_status_get("web-01", &f.path("motd")).after(&deploy);
    let list = o.agent_list().after(&health);
    let one = o.agent_get("db-01").after(&health);
    // A pattern the catalogue's rules refuse is a plan error, before anything runs.
    let bad = f.orch();
    let bad_pattern = bad.node_packages_get("web-01", Some("two words"));
    let err = bad.run().await.unwrap_err().to_string();
    assert!(
        err.contains(&bad_pattern.name()) && err.contains("must be a package name or pattern"),
        "{err}"
    );
    let report = o.run().await.unwrap();

    assert_eq!(report.result(&health).unwrap().status, "ok");
    let p = report.result(&packages).unwrap();
    assert!(!p.packages.is_empty() && ["dpkg", "rpm"].contains(&p.manager.as_str()));
    let h = report.result(&host).unwrap();
    assert!(!h.hostname.is_empty());
    assert_eq!(
        h.agent, "web-01",
        "the agent's identity, beside the OS hostname"
    );
    assert_eq!(report.host_results(&host)[0].hostname, "web-01");
    assert!(report.result(&status).unwrap().memory.is_some());
    assert!(report.result(&uptime).unwrap().uptime_seconds > 0);
    assert!(!report.result(&os_info).unwrap().distribution.is_empty());
    assert!(
        report
            .result(&disk)
            .unwrap()
            .disks
            .iter()
            .any(|d| d.total > 0)
    );
    assert!(report.result(&mem).unwrap().total > 0);
    assert!(report.result(&load).unwrap().load1 >= 0.0);
    assert_eq!(report.result(&dns).unwrap().dns_servers, ["10.0.0.53"]);
    let u = report.result(&dns_update).unwrap();
    assert!(u.success && u.changed);
    assert_eq!(report.get(&dns_update).unwrap().status, StepStatus::Changed);
    assert_eq!(report.result(&ping).unwrap().packets_received, 3);
    let e = report.result(&exec).unwrap();
    assert_eq!((e.stdout.as_str(), e.exit_code), ("hello\n", 0));
    assert_eq!(
        report.get(&exec).unwrap().status,
        StepStatus::Changed,
        "commands change"
    );
    assert_eq!(report.result(&shell).unwrap().stdout, "42\n");
    assert!(report.result(&upload).unwrap().changed);
    assert!(!report.result(&changed).unwrap().changed);
    let d = report.result(&deploy).unwrap();
    assert!(
        d.changed && d.sha256.len() == 64,
        "changed survives in the typed result (upstream dropped it)"
    );
    assert_eq!(
        report.result(&fstatus).unwrap().status,
        FileSyncStatus::InSync
    );
    assert_eq!(report.result(&list).unwrap().total, 3);
    assert_eq!(report.result(&one).unwrap().hostname, "db-01");
    assert_eq!(report.count(StepStatus::Failed), 0);
    f.stack.shutdown().await;
}

#[tokio::test]
async fn broadcast_and_labels_account_for_every_host() {
    let f = fleet().await;
    let o = f.orch();
    let all = o.node_hostname_get("_all");
    let web = o.node_hostname_get("role:web");
    let dotted = o.node_hostname_get("group:web.dev");
    let fails = o
        .command_shell("_all", "test \"$(hostname)\" = nothing-matches")
        .continue_on_error();
    let tolerant = o
        .command_exec("_all", "test", &["@fact.custom.env", "=", "prod"])
        .tolerate_host_failures(1);
    let report = o.run().await.unwrap();
    assert_eq!(
        hostnames(report.host_results(&all)),
        ["db-01", "web-01", "web-02"]
    );
    assert_eq!(hostnames(report.host_results(&web)), ["web-01", "web-02"]);
    assert_eq!(hostnames(report.host_results(&dotted)), ["web-01"]);
    assert!(matches!(
        report.result(&all),
        Err(DecodeError::MultipleHosts { hosts: 3, .. })
    ));
    for (host, r) in report.results_by_host(&all) {
        assert!(!r.unwrap().hostname.is_empty(), "{host}");
    }
    // A non-zero exit code is a host failure; with three of three it fails the step.
    let fr = report.get(&fails).unwrap();
    assert_eq!(fr.status, StepStatus::Failed);
    assert!(fr.hosts.iter().all(|h| h.status == HostStatus::Failed
        && h.error.as_deref() == Some("command exited with code 1")));
    assert_eq!(
        fr.error.as_deref().unwrap().split(':').next(),
        Some("3 of 3 hosts failed")
    );
    let out: CommandResult = fr.hosts[0].decode().unwrap();
    assert_eq!(out.exit_code, 1, "failed hosts keep their data");
    // One failed host (web-02 is staging) is tolerated.
    let tr = report.get(&tolerant).unwrap();
    assert_eq!(tr.status, StepStatus::Changed);
    assert_eq!(
        tr.failed_hosts()
            .map(|h| h.hostname.as_str())
            .collect::<Vec<_>>(),
        ["web-02"]
    );
    f.stack.shutdown().await;
}

#[tokio::test]
async fn host_guards() {
    let f = fleet().await;
    let o = f.orch();
    let mixed = o
        .command_exec("_all", "test", &["@fact.custom.env", "=", "prod"])
        .continue_on_error();
    let all_ok = o.node_hostname_get("_all");
    o.health_check()
        .named("any-failed")
        .after(&mixed)
        .only_if_any_host_failed();
    o.health_check()
        .named("all-failed")
        .after(&mixed)
        .only_if_all_hosts_failed();
    o.health_check()
        .named("any-changed")
        .after(&mixed)
        .only_if_any_host_changed();
    o.health_check()
        .named("all-changed")
        .after(&mixed)
        .only_if_all_hosts_changed();
    o.health_check()
        .named("none-changed")
        .after(&all_ok)
        .only_if_any_host_changed();
    o.health_check()
        .named("any-skipped")
        .after(&all_ok)
        .only_if_any_host_skipped();
    let report = o.run().await.unwrap();
    let st = |n: &str| report.step(n).unwrap();
    assert_eq!(st("any-failed").status, StepStatus::Unchanged, "ran");
    assert_eq!(
        st("all-failed").skip_reason.as_deref(),
        Some("only-if-all-hosts-failed: not all hosts failed")
    );
    assert_eq!(
        st("any-changed").status,
        StepStatus::Unchanged,
        "commands change on the hosts that ran them"
    );
    assert_eq!(
        st("all-changed").status,
        StepStatus::Unchanged,
        "web-02's failed run still changed"
    );
    assert_eq!(
        st("none-changed").skip_reason.as_deref(),
        Some("only-if-any-host-changed: no host changed")
    );
    assert_eq!(
        st("any-skipped").skip_reason.as_deref(),
        Some("only-if-any-host-skipped: no host skipped")
    );
    f.stack.shutdown().await;
}

#[tokio::test]
async fn when_fact_understands_each_target_kind() {
    let f = fleet().await;
    let o = f.orch();
    let list = o.agent_list();
    let prod = || fact_equals("env", "prod");
    o.node_hostname_get("web-01")
        .named("host-match")
        .when_fact(&list, prod());
    o.node_hostname_get("web-02")
        .named("host-no-match")
        .when_fact(&list, prod());
    o.node_hostname_get("_all")
        .named("all")
        .when_fact(&list, prod());
    o.node_hostname_get("_any")
        .named("any")
        .when_fact(&list, has_label("role", "db"));
    o.node_hostname_get("role:web")
        .named("label-match")
        .when_fact(&list, fact_equals("env", "staging"));
    o.node_hostname_get("role:db")
        .named("label-no-match")
        .when_fact(&list, fact_equals("env", "staging"));
    o.health_check()
        .named("fn-step")
        .when_fact(&list, os("no-such-os"));
    // A closure is a predicate too.
    o.node_hostname_get("db-01")
        .named("closure-match")
        .when_fact(&list, |a: &AgentInfo| a.hostname.starts_with("db"));
    o.node_hostname_get("web-01")
        .named("closure-no-match")
        .when_fact(&list, |a: &AgentInfo| a.hostname.starts_with("db"));
    let report = o.run().await.unwrap();
    let ran = |n: &str| report.step(n).unwrap().status != StepStatus::Skipped;
    assert!(ran("closure-match") && !ran("closure-no-match"));
    assert!(ran("host-match") && !ran("host-no-match"));
    assert!(ran("all") && ran("any") && ran("label-match"));
    assert!(!ran("label-no-match"));
    assert_eq!(
        report.step("fn-step").unwrap().skip_reason.as_deref(),
        Some("when-fact: no matching agent")
    );
    f.stack.shutdown().await;
}

#[tokio::test]
async fn discovery_and_grouping_on_a_fleet() {
    let f = fleet().await;
    let o = f.orch();
    let all = o.discover(&[]).await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.hostname.as_str()).collect::<Vec<_>>(),
        ["db-01", "web-01", "web-02"]
    );
    let prod_web = o
        .discover(&[has_label("role", "web"), fact_equals("env", "prod")])
        .await
        .unwrap();
    assert_eq!(prod_web.len(), 1);
    assert_eq!(prod_web[0].hostname, "web-01");
    let local_arch = o
        .discover(&[
            arch(std::env::consts::ARCH),
            min_cpu(1),
            // Whatever the machine's load: a busy test machine has conditions.
            healthy()
                .or(has_condition("DiskPressure"))
                .or(has_condition("HighLoad"))
                .or(has_condition("MemoryPressure")),
        ])
        .await
        .unwrap();
    assert_eq!(local_arch.len(), 3);
    assert!(o.discover(&[os("no-such-os")]).await.unwrap().is_empty());
    let by_env = o.group_by_fact("env", &[]).await.unwrap();
    assert_eq!(by_env.keys().collect::<Vec<_>>(), ["prod", "staging"]);
    assert_eq!(by_env["prod"].len(), 2);
    let by_role = o
        .group_by_fact("os.distribution", &[has_label("role", "db")])
        .await
        .unwrap();
    assert_eq!(by_role.values().map(Vec::len).sum::<usize>(), 1);
    let bad = Orchestrator::builder(f.stack.url(), "wrong-token")
        .quiet()
        .build()
        .unwrap();
    assert_eq!(bad.discover(&[]).await.unwrap_err().status(), Some(401));
    f.stack.shutdown().await;
}

#[tokio::test]
async fn uploads_are_idempotent_and_conflicts_need_force() {
    let f = fleet().await;
    let run = |body: &'static str, force: bool| {
        let o = f.orch();
        let up = o
            .file_upload("cfg", ContentType::Raw, body.as_bytes())
            .continue_on_error();
        let up = if force { up.force() } else { up };
        async move { (o.run().await.unwrap(), up) }
    };
    let (r, up) = run("v1", false).await;
    assert_eq!(r.get(&up).unwrap().status, StepStatus::Changed);
    let (r, up) = run("v1", false).await;
    assert_eq!(
        r.get(&up).unwrap().status,
        StepStatus::Unchanged,
        "second upload of the same content"
    );
    let (r, up) = run("v2", false).await;
    let s = r.get(&up).unwrap();
    assert_eq!(s.status, StepStatus::Failed);
    assert!(
        s.error.as_deref().unwrap().contains("call .force()"),
        "{:?}",
        s.error
    );
    let (r, up) = run("v2", true).await;
    assert_eq!(r.get(&up).unwrap().status, StepStatus::Changed);
    f.stack.shutdown().await;
}

#[tokio::test]
async fn job_retries_submit_new_jobs_and_timeouts_reach_the_controller() {
    let f = fleet().await;
    let o = f.orch();
    let flaky = o
        .command_shell(
            "web-01",
            &format!("test -e {0} || {{ touch {0}; exit 1; }}", f.path("marker")),
        )
        .retry(1);
    let slow = o
        .command_exec("web-02", "sleep", &["5"])
        .timeout(Duration::from_millis(300))
        .continue_on_error();
    let report = o.run().await.unwrap();
    let fl = report.get(&flaky).unwrap();
    assert_eq!((fl.status, fl.attempts), (StepStatus::Changed, 2));
    let sl = report.get(&slow).unwrap();
    assert_eq!(sl.status, StepStatus::Failed);
    assert!(sl.duration < Duration::from_secs(3), "{:?}", sl.duration);
    f.stack.shutdown().await;
}

#[tokio::test]
async fn lost_hosts_are_reported_lost() {
    let f = fleet_with(Some(Duration::from_secs(1))).await;
    let o = f.orch();
    let step = o.command_shell("role:web", "sleep 2").continue_on_error();
    let stack = &f.stack;
    let run = o.run();
    let kill = async {
        // Kill web-02 once the job has started on it.
        loop {
            let jobs = stack.bus().jobs.list().await.unwrap();
            let started = jobs.iter().any(|j| {
                j.events.iter().any(|e| {
                    e.hostname == "web-02" && e.event == osapi_api::records::EventKind::Started
                })
            });
            if started {
                stack.kill_agent("web-02");
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    let (report, ()) = tokio::join!(run, kill);
    let report = report.unwrap();
    let s = report.get(&step).unwrap();
    assert_eq!(s.status, StepStatus::Failed);
    let lost = s.hosts.iter().find(|h| h.hostname == "web-02").unwrap();
    assert_eq!(lost.status, HostStatus::Lost);
    assert!(lost.error.as_deref().unwrap().contains("lost"));
    assert_eq!(
        s.hosts
            .iter()
            .find(|h| h.hostname == "web-01")
            .unwrap()
            .status,
        HostStatus::Changed
    );
    f.stack.shutdown().await;
}

/// A plain (no colour, not verbose) renderer writing to `buf`, drawing
/// as for a terminal when `tty`.
fn drawn_to(buf: &SharedBuf, tty: bool) -> Arc<Renderer> {
    Arc::new(Renderer::new(
        Box::new(buf.clone()),
        ColorChoice::Never,
        tty,
        false,
    ))
}

/// Replaces durations (`12ms`, `1.5s`, `3.04ms`, `950µs`) with `<d>`.
fn mask_durations(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split(' ')
                .map(|w| {
                    let unit = ["ms", "µs", "ns", "s"].iter().find(|u| w.ends_with(*u));
                    match unit {
                        Some(u) if w[..w.len() - u.len()].parse::<f64>().is_ok() => {
                            "<d>".to_string()
                        }
                        _ => w.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn rendered_run_matches_the_snapshot() {
    let f = fleet().await;
    let buf = SharedBuf::default();
    let renderer = drawn_to(&buf, false);
    let o = Orchestrator::builder(f.stack.url(), f.stack.token())
        .quiet()
        .observer(renderer)
        .build()
        .unwrap();
    let health = o.health_check();
    let all = o.node_hostname_get("_all").after(&health);
    o.command_shell("role:web", "exit 3")
        .named("fail-web")
        .after(&all)
        .continue_on_error();
    o.health_check()
        .named("skipped")
        .after(&all)
        .only_if_changed();
    o.run().await.unwrap();
    let out = mask_durations(&buf.text());
    let expected = "
Execution Plan
Plan: 4 steps in 3 levels
  Level 1 (sequential): health-check
  Level 2 (sequential): get-hostname
  Level 3 (parallel): fail-web, skipped

>>> Level 1 (sequential): health-check
  [start]     health-check              GET /health
  [unchanged] health-check              changed=false  <d>
<<< Level 1 done: 0/1 changed

>>> Level 2 (sequential): get-hostname
  [start]     get-hostname              operation=node.hostname.get target=_all
  [unchanged] get-hostname              changed=false  <d>
             [db-01] ok
             [web-01] ok
             [web-02] ok
<<< Level 2 done: 0/1 changed

>>> Level 3 (parallel): fail-web, skipped
  [start]     fail-web                  operation=command.shell.execute target=role:web
  [skip]      skipped                   reason=\"no dependencies changed\"
  [failed]    fail-web                  <d>
              2 of 2 hosts failed: web-01: command exited with code 3; web-02: command exited with code 3
             [web-01] failed: command exited with code 3
             [web-02] failed: command exited with code 3
<<< Level 3 done: 0/2 changed

Complete: 4 steps, 2 unchanged, 1 skipped, 1 failed in <d>
";
    assert_eq!(out, expected, "\n--- got ---\n{out}");
    f.stack.shutdown().await;
}

/// On a terminal, a running step has a live line (elapsed time, hosts
/// answered / expected) redrawn in place, and hosts' lines are printed as
/// they answer; when the run ends, the screen holds only the lasting
/// lines. One host of three answers at once, the others after 3 s.
#[tokio::test]
async fn terminal_shows_live_lines_and_hosts_as_they_answer() {
    let f = fleet().await;
    let buf = SharedBuf::default();
    let renderer = drawn_to(&buf, true);
    // The same run drawn for a pipe, which gets nothing extra.
    let piped = SharedBuf::default();
    let plain = drawn_to(&piped, false);
    let o = Orchestrator::builder(f.stack.url(), f.stack.token())
        .quiet()
        .observer(renderer)
        .observer(plain)
        .build()
        .unwrap();
    // `mkdir` is atomic: the first host to run takes the lock and answers,
    // the two others sleep.
    let lock = f.path("first");
    o.command_shell("_all", &format!("mkdir {lock} 2>/dev/null || sleep 3"))
        .named("slow");
    o.run().await.unwrap();
    let raw = buf.text();

    // While the step ran: a live line with 1 of 3 hosts answered.
    assert!(
        raw.contains("  [running]   slow                      0s  0/3 hosts"),
        "{raw:?}"
    );
    assert!(raw.contains("1/3 hosts"), "{raw:?}");

    // The screen at the end: host lines (with their step) before the
    // step's result, the first to answer first; no live line left.
    let mut screen = vt100::Parser::new(40, 120, 0);
    screen.process(raw.replace('\n', "\r\n").as_bytes());
    let shown = screen.screen().contents();
    assert!(!shown.contains("[running]"), "{shown}");
    let rows: Vec<&str> = shown.lines().map(str::trim_end).collect();
    let at = |needle: &str| rows.iter().position(|r| r.contains(needle));
    let start = at("[start]     slow").unwrap();
    let result = at("[changed]   slow").unwrap_or_else(|| panic!("{shown}"));
    let host_rows: Vec<&str> = rows[start + 1..result].to_vec();
    assert_eq!(host_rows.len(), 3, "{shown}");
    for row in &host_rows {
        assert!(row.ends_with("ok changed  slow"), "{shown}");
    }
    // The hosts are not listed again under the result.
    assert!(rows[result + 1].starts_with("<<< Level 1 done"), "{shown}");

    let piped = mask_durations(&piped.text());
    let want = "  [changed]   slow                      changed=true  <d>
             [db-01] ok changed
             [web-01] ok changed
             [web-02] ok changed
<<< Level 1 done: 1/1 changed
";
    assert!(piped.contains(want), "{piped}");
    assert!(
        !piped.contains("[running]") && !piped.contains('\u{1b}'),
        "{piped}"
    );
}

#[tokio::test]
async fn a_cancelled_run_stops_the_work_on_the_hosts() {
    let f = fleet().await;
    let o = f.orch();
    let pidfile = f.path("pid");
    let long = o.command_shell("web-01", &format!("sleep 60 & echo $! > {pidfile}; wait"));
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let watch = pidfile.clone();
    // Cancel once the command runs (its pid is written).
    let pid = tokio::spawn(async move {
        loop {
            if let Some(pid) = std::fs::read_to_string(&watch)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            {
                stop.cancel();
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let err = tokio::time::timeout(Duration::from_secs(30), o.run_with(cancel))
        .await
        .expect("the run ends soon after cancellation")
        .unwrap_err();
    let pid = pid.await.unwrap();
    let step = err.report().get(&long).unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    let job = step.job_id.expect("the job was created");
    assert!(
        step.error
            .as_deref()
            .unwrap()
            .contains("cancelled on the controller"),
        "{:?}",
        step.error
    );
    // The job shows cancelled, and its process is gone.
    let client = osapi_client::Client::new(f.stack.url(), f.stack.token()).unwrap();
    let d = client.wait_job(job, Duration::from_secs(10)).await.unwrap();
    assert_eq!(d.error.as_deref(), Some("job cancelled"));
    tokio::time::timeout(Duration::from_secs(10), async {
        while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the command was killed on the host");
    f.stack.shutdown().await;
}

/// `Orchestrator::embedded` reaches the controller in process: the plan
/// runs through the controller's own routes, with its token checks and its
/// audit, and a client with a bad token is refused the same way.
#[tokio::test]
async fn in_process_plans_go_through_the_controllers_checks() {
    let f = fleet().await;
    let o = Orchestrator::embedded(&f.stack).quiet().build().unwrap();
    let host = o.node_hostname_get("web-01");
    let echo = o.command_exec("db-01", "echo", &["in process"]);
    let report = o.run().await.unwrap();
    assert_eq!(report.result(&host).unwrap().labels["role"], "web");
    assert_eq!(report.result(&echo).unwrap().stdout, "in process\n");

    // The job creations were audited like any request.
    let audit = f.stack.client().unwrap().audit(100, 0).await.unwrap();
    let jobs: Vec<_> = audit
        .items
        .iter()
        .filter(|e| e.method == "POST" && e.path == "/job")
        .collect();
    assert_eq!(jobs.len(), 2, "{:?}", audit.items);
    assert!(
        jobs.iter()
            .all(|e| e.user == "embedded-admin" && e.response_code == 201)
    );

    // No socket involved: a bad token is still a 401.
    let bad = osapi_client::Client::builder(f.stack.url(), "not-a-token")
        .local(f.stack.local_transport())
        .build()
        .unwrap();
    assert!(bad.health().await.is_ok(), "liveness needs no token");
    let err = bad.agents().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    f.stack.shutdown().await;
}

/// Conditions are checked on each host: where the work is done the
/// command does not run and the host is unchanged, with the reason; rules
/// decide changed and failed from each host's result.
#[tokio::test]
async fn command_conditions_and_rules_per_host() {
    let f = fleet().await;
    let done = |host: &str| f.dir.path().join(format!("done-{host}"));
    std::fs::write(done("web-01"), "").unwrap();
    let buf = SharedBuf::default();
    let events = SharedBuf::default();
    let o = Orchestrator::builder(f.stack.url(), f.stack.token())
        .quiet()
        .render_to(buf.clone())
        .json_events(events.clone())
        .build()
        .unwrap();
    let marker = f.path("ran-@fact.hostname");
    let created = o
        .command_shell("_all", &format!("touch {marker}"))
        .named("creates")
        .creates(&f.path("done-@fact.hostname"));
    let unless = o
        .command_shell("_all", "true")
        .named("unless")
        .unless(&format!("test -f {}", f.path("done-@fact.hostname")))
        .after(&created);
    let only_if = o
        .command_exec("_all", "true", &[])
        .named("only-if")
        .only_if(&format!("test -f {}", f.path("done-@fact.hostname")))
        .after(&unless);
    let quiet = o
        .command_shell("_all", "echo nothing to do; exit 1")
        .named("rules")
        .changed_when(|r| !r.stdout.contains("nothing to do"))
        .failed_when(|r| r.exit_code > 1)
        .after(&only_if);
    let strict = o
        .command_shell("role:web", "echo warning: disk almost full")
        .named("strict")
        .failed_when(|r| r.stdout.contains("warning"))
        .continue_on_error()
        .after(&quiet);
    let report = o.run().await.unwrap();

    // creates: web-01's work was done; the others ran.
    let hosts = report.host_results(&created);
    let by = |hosts: &[HostResult], name: &str| {
        hosts.iter().find(|h| h.hostname == name).cloned().unwrap()
    };
    let web01 = by(hosts, "web-01");
    assert_eq!(web01.status, HostStatus::Ok, "{web01:?}");
    assert!(!web01.changed);
    let r: CommandResult = web01.decode().unwrap();
    let why = format!("creates: {} exists", done("web-01").display());
    assert_eq!(r.skipped.as_deref(), Some(why.as_str()));
    assert!(!f.dir.path().join("ran-web-01").exists());
    for other in ["web-02", "db-01"] {
        assert_eq!(by(hosts, other).status, HostStatus::Changed);
        assert!(f.dir.path().join(format!("ran-{other}")).exists());
    }
    assert_eq!(report.step(&created).unwrap().status, StepStatus::Changed);
    // unless and only_if: opposite hosts.
    let hosts = report.host_results(&unless);
    assert_eq!(by(hosts, "web-01").status, HostStatus::Ok);
    assert_eq!(by(hosts, "db-01").status, HostStatus::Changed);
    let hosts = report.host_results(&only_if);
    assert_eq!(by(hosts, "web-01").status, HostStatus::Changed);
    assert_eq!(by(hosts, "db-01").status, HostStatus::Ok);
    // Rules: exit 1 is not a failure here, and nothing changed.
    let rules = report.step(&quiet).unwrap();
    assert_eq!(rules.status, StepStatus::Unchanged, "{rules:?}");
    for h in report.host_results(&quiet) {
        assert_eq!(h.status, HostStatus::Ok, "{h:?}");
        let r: CommandResult = h.decode().unwrap();
        assert!(!r.changed && r.exit_code == 1);
    }
    assert_eq!(report.step(&strict).unwrap().status, StepStatus::Failed);
    for h in report.host_results(&strict) {
        assert_eq!(h.status, HostStatus::Failed);
        assert_eq!(
            h.error.as_deref(),
            Some("failed_when matched (exit code 0)")
        );
    }

    // The reason is drawn on the host's line and carried by the events.
    let text = buf.text();
    assert!(text.contains(&format!("[web-01] ok ({why})")), "{text}");
    let events = events.text();
    assert!(
        events.contains(&format!(
            "\"note\":{}",
            serde_json::to_string(&why).unwrap()
        )),
        "{events}"
    );
    // explain() shows the conditions and rules.
    let plan = o.explain();
    assert!(
        plan.contains("creates \"") && plan.contains("changed-when, failed-when"),
        "{plan}"
    );
}

/// The hosts a rolling step's batches took, from its events.
fn batches_of(events: &str, step: &str) -> Vec<Vec<String>> {
    events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "batch_started" && e["step"] == step)
        .map(|e| serde_json::from_value(e["hosts"].clone()).unwrap())
        .collect()
}

/// Rolling steps: batches by count and percentage (the last size
/// repeats), the failure budget, gates (a closure, or a step that runs
/// only as the gate), hosts never reached reported skipped with the
/// reason, and at most N hosts at once.
#[tokio::test]
async fn rolling_steps_go_batch_by_batch_and_stop_when_told() {
    let f = fleet().await;
    let events = SharedBuf::default();
    let drawn = SharedBuf::default();
    let o = Orchestrator::builder(f.stack.url(), f.stack.token())
        .quiet()
        .render_to(drawn.clone())
        .json_events(events.clone())
        .build()
        .unwrap();
    let log = f.path("ran.log");
    let append = |tag: &str| format!("echo {tag}-@fact.hostname >> {log}");
    // Canary, then the rest; the other steps follow it, in parallel.
    let canary = o
        .command_shell("_all", &append("canary"))
        .named("canary")
        .rolling(Rollout::batches(["1", "100%"]))
        .pause_between(Duration::from_millis(300));
    // A gate that rejects the first batch: the rest is never reached.
    let gated = o
        .command_shell("_all", &append("gated"))
        .named("gated")
        .rolling(Rollout::batches([1]))
        .gate_with(|batch| Err(format!("{} looks bad", batch[0].hostname)))
        .continue_on_error()
        .after(&canary);
    // web-01 fails: without a budget the rollout stops after its batch;
    // with one failure allowed it goes on.
    let fail_web01 = "test @fact.hostname != web-01";
    let strict = o
        .command_shell("_all", fail_web01)
        .named("strict")
        .rolling(Rollout::batches(["34%"]))
        .continue_on_error()
        .after(&canary);
    let lenient = o
        .command_shell("_all", fail_web01)
        .named("lenient")
        .rolling(Rollout::batches(["1"]))
        .max_failed_hosts(1)
        .after(&canary);
    // A step as the gate: it runs after each batch, not on its own.
    let health = o.command_shell("_all", "true").named("health");
    let checked = o
        .command_shell("role:web", &append("checked"))
        .named("checked")
        .rolling(Rollout::batches(["50%"]))
        .gate(&health)
        .after(&canary);
    // One host at a time: starts and ends never interleave.
    let serial_log = f.path("serial.log");
    let serial = o
        .command_shell(
            "_all",
            &format!("echo start >> {serial_log}; sleep 0.2; echo end >> {serial_log}"),
        )
        .named("serial")
        .max_parallel_hosts(1)
        .after(&canary);
    let plan = o.explain();
    let report = o.run().await.unwrap();
    let events = events.text();

    assert_eq!(
        batches_of(&events, "canary"),
        vec![vec!["db-01"], vec!["web-01", "web-02"]]
    );
    assert_eq!(report.step(&canary).unwrap().status, StepStatus::Changed);
    // A batch is one job for exactly its hosts.
    let canary_hosts = report.host_results(&canary);
    let job_of = |name: &str| {
        canary_hosts
            .iter()
            .find(|h| h.hostname == name)
            .unwrap()
            .job_id
    };
    assert_eq!(job_of("web-01"), job_of("web-02"));
    assert_ne!(job_of("web-01"), job_of("db-01"));
    let client = osapi_client::Client::new(f.stack.url(), f.stack.token()).unwrap();
    let second = client.job(job_of("web-01").unwrap()).await.unwrap();
    assert_eq!(
        second.target.as_deref(),
        Some("web-01,web-02"),
        "{second:?}"
    );
    // The pause between its two batches.
    assert!(report.step(&canary).unwrap().duration >= Duration::from_millis(300));

    let gated_result = report.step(&gated).unwrap();
    assert_eq!(gated_result.status, StepStatus::Failed);
    let reason = "rollout stopped after batch 1 of 3: gate failed: db-01 looks bad";
    assert_eq!(gated_result.error.as_deref(), Some(reason));
    for h in report.host_results(&gated) {
        if h.hostname == "db-01" {
            assert_eq!(h.status, HostStatus::Changed);
        } else {
            assert_eq!(h.status, HostStatus::Skipped, "{h:?}");
            assert_eq!(h.error.as_deref(), Some(reason));
        }
    }
    let ran = std::fs::read_to_string(f.dir.path().join("ran.log")).unwrap();
    assert!(
        ran.contains("gated-db-01") && !ran.contains("gated-web"),
        "{ran}"
    );

    // 34 % of 3 hosts: batches of 2 and 1; web-01 is in the first.
    assert_eq!(batches_of(&events, "strict"), vec![vec!["db-01", "web-01"]]);
    let strict_result = report.step(&strict).unwrap();
    assert_eq!(
        strict_result.error.as_deref(),
        Some("rollout stopped after batch 1 of 2: 1 of 3 hosts failed")
    );
    let lenient_result = report.step(&lenient).unwrap();
    assert_ne!(
        lenient_result.status,
        StepStatus::Failed,
        "{lenient_result:?}"
    );
    assert_eq!(batches_of(&events, "lenient").len(), 3);
    assert_eq!(
        report
            .host_results(&lenient)
            .iter()
            .filter(|h| h.failed())
            .count(),
        1
    );

    let health_result = report.step(&health).unwrap();
    assert_eq!(health_result.status, StepStatus::Skipped);
    assert_eq!(
        health_result.skip_reason.as_deref(),
        Some("runs as the gate of checked")
    );
    assert_eq!(report.step(&checked).unwrap().status, StepStatus::Changed);
    let gates = events
        .lines()
        .filter(|l| l.contains("\"batch_finished\"") && l.contains("\"step\":\"checked\""))
        .filter(|l| l.contains("\"gate\":\"passed\""))
        .count();
    assert_eq!(gates, 2, "{events}");

    assert_eq!(report.step(&serial).unwrap().status, StepStatus::Changed);
    let order = std::fs::read_to_string(&serial_log).unwrap();
    assert_eq!(order, "start\nend\n".repeat(3), "hosts ran at once");

    // explain(), the renderer.
    assert!(
        plan.contains("gated [job command.shell.execute -> _all]"),
        "{plan}"
    );
    assert!(plan.contains("rolling 1, 100%, pause 300ms"), "{plan}");
    assert!(
        plan.contains("max 1 failed hosts") && plan.contains("gate health"),
        "{plan}"
    );
    assert!(
        plan.contains("gate of checked") && plan.contains("max 1 hosts at once"),
        "{plan}"
    );
    let text = drawn.text();
    assert!(
        text.contains("  [batch]     canary                    1/2 db-01\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  [stop]      gated                     {reason}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("  [gate]      checked                   passed\n"),
        "{text}"
    );
}

#[test]
fn rolling_needs_hosts_to_go_through() {
    let o = Orchestrator::builder("http://127.0.0.1:1", "t")
        .build()
        .unwrap();
    o.command_shell("web-01", "true")
        .rolling(Rollout::batches(["1"]));
    let err = o.levels().unwrap_err().to_string();
    assert!(err.contains("target _all or a label"), "{err}");
    let o = Orchestrator::builder("http://127.0.0.1:1", "t")
        .build()
        .unwrap();
    o.command_shell("_all", "true")
        .rolling(Rollout::batches(["0"]));
    let err = o.levels().unwrap_err().to_string();
    assert!(err.contains("batch sizes"), "{err}");
}

/// The deploy plan of the check-mode test: upload `content`, deploy it to
/// every host, then read the file's status only if the deploy changed.
fn deploy_plan(
    o: &Orchestrator,
    content: &'static str,
    path: &str,
) -> (Step<FileDeployResult>, Step<FileStatusResult>) {
    let upload = o
        .file_upload("check.conf", ContentType::Raw, content)
        .force();
    let deploy = o
        .file_deploy("_all", FileDeployOpts::new("check.conf", path))
        .after(&upload);
    let status = o
        .file_status_get("_all", path)
        .after(&deploy)
        .only_if_changed();
    (deploy, status)
}

/// Check mode changes nothing and says what would change: deploys with a
/// diff per host, DNS updates compared, commands skipped unless safe,
/// reads run, guards see the predictions; the controller's objects stay.
#[tokio::test]
async fn check_mode_predicts_and_changes_nothing() {
    let f = fleet().await;
    let path = f.path("check-@fact.hostname.conf");
    let real = f.orch();
    deploy_plan(&real, "version: 1\n", &path);
    real.run().await.unwrap();

    let drawn = SharedBuf::default();
    let o = Orchestrator::builder(f.stack.url(), f.stack.token())
        .quiet()
        .render_to(drawn.clone())
        .build()
        .unwrap();
    let (deploy, status) = deploy_plan(&o, "version: 2\n", &path);
    let dns = o.network_dns_update("_all", "eth0", &["192.0.2.1"], &[]);
    let marker = f.path("touched");
    let unsafe_cmd = o
        .command_shell("_all", &format!("touch {marker}"))
        .named("touch");
    let safe_cmd = o.command_exec("_all", "echo", &["hello"]).safe_in_check();
    let custom = o.task_fn("custom", |_, _| async { Ok(TaskOutput::done_changed()) });
    let report = o.check().await.unwrap();

    for h in report.host_results(&deploy) {
        assert_eq!(h.status, HostStatus::Changed, "{h:?}");
        let r: FileDeployResult = h.decode().unwrap();
        assert!(r.dry_run && r.changed);
        let diff = r.diff.unwrap();
        assert!(diff.contains("-version: 1\n+version: 2\n"), "{diff}");
    }
    // The read ran (the deploy's predicted change let it) and still finds
    // version 1 in place.
    assert_eq!(report.step(&status).unwrap().status, StepStatus::Unchanged);
    for h in report.host_results(&status) {
        let r: FileStatusResult = h.decode().unwrap();
        assert_eq!(r.status, FileSyncStatus::InSync, "{h:?}");
    }
    for h in report.host_results(&dns) {
        let r: DnsUpdateResult = h.decode().unwrap();
        assert!(r.dry_run && r.changed, "{r:?}");
    }
    for name in ["web-01", "web-02", "db-01"] {
        let resolv =
            std::fs::read_to_string(f.dir.path().join(format!("resolv-{name}.conf"))).unwrap();
        assert!(!resolv.contains("192.0.2.1"), "{resolv}");
    }
    for skipped in [
        report.step(&unsafe_cmd).unwrap(),
        report.step(&custom).unwrap(),
    ] {
        assert_eq!(skipped.status, StepStatus::Skipped);
        assert_eq!(skipped.skip_reason.as_deref(), Some("check mode"));
    }
    assert!(!f.dir.path().join("touched").exists());
    assert_eq!(report.step(&safe_cmd).unwrap().status, StepStatus::Changed);
    // The store still holds version 1, and no check copy is left.
    let client = osapi_client::Client::new(f.stack.url(), f.stack.token()).unwrap();
    let info = client.file("check.conf").await.unwrap();
    assert_eq!(info.size, "version: 1\n".len() as u64);
    let names: Vec<String> = client
        .files()
        .await
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert!(!names.iter().any(|n| n.contains(".check-")), "{names:?}");

    let text = drawn.text();
    assert!(text.contains("Check mode: nothing is changed"), "{text}");
    assert!(text.contains("[web-01] ok would change"), "{text}");
    assert!(text.contains("reason=\"check mode\""), "{text}");
    assert!(o.explain().contains("safe-in-check"));

    // A real deploy with .diff() says what it changed.
    let real = f.orch();
    let upload = real
        .file_upload("check.conf", ContentType::Raw, "version: 3\n")
        .force();
    let changed = real
        .file_deploy("_all", FileDeployOpts::new("check.conf", &path))
        .diff()
        .after(&upload);
    let report = real.run().await.unwrap();
    for h in report.host_results(&changed) {
        let r: FileDeployResult = h.decode().unwrap();
        assert!(!r.dry_run);
        assert!(r.diff.unwrap().contains("-version: 1\n+version: 3\n"));
    }
}
