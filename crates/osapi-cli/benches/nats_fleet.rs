//! A fleet on NATS on this machine: a real nats-server secured as
//! docs/nats-server.conf says (TLS, one user per agent), a controller process
//! and agent processes.
//!
//! 1. 200 agent processes started at once: time until the controller lists
//!    them all — target ≤ 1.5 s;
//! 2. agent memory: median RSS of the 200 once idle — target ≤ 10 MB;
//!    then `GET /agent` (the controller's directory read afresh: every
//!    registration, facts entry and drain flag) with the 200 registered —
//!    no target, a baseline for reading the fleet from a watch instead;
//!    `GET /agent/{hostname}` (that agent's entries only);
//!    and 32 jobs submitted at once when that view is a second old (one
//!    read of the fleet serves them all);
//! 3. the orchestrator benchmark's 3-step plan (whoami, a `when`-guarded
//!    `true`, a file deploy) on 50 agent processes: CPU time (user + system)
//!    of nats-server, the controller and the agents per host-step — target
//!    ≤ 1.5 ms. The files go to a directory on `/dev/shm` unless
//!    `OSAPI_BENCH_DEPLOY_IN` names another parent (see [`deploy_targets`]).
//!
//! Run: `cargo bench -p osapi-cli --bench nats_fleet`.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

#[path = "../tests/distributed/fleet.rs"]
#[allow(dead_code)]
mod fleet;
#[path = "../tests/distributed/pki.rs"]
#[allow(dead_code)]
mod pki;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fleet::{AgentCredentials, AgentSpec, Cluster};
use osapi_orchestrator::prelude::*;

/// Clock ticks of CPU a process has used in user space and in the kernel.
fn user_and_system_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or_default();
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    (
        fields.get(11).copied().unwrap_or(0),
        fields.get(12).copied().unwrap_or(0),
    )
}

/// Nanoseconds on a CPU of each live thread of the agents in `pids` (all
/// but the last two: the controller and nats-server), by (pid, thread id).
fn agent_threads_cpu_ns(pids: &[u32]) -> HashMap<(u32, u64), u64> {
    pids[..pids.len() - 2]
        .iter()
        .flat_map(|&p| {
            threads_cpu_ns(p)
                .into_iter()
                .map(move |(t, ns)| ((p, t), ns))
        })
        .collect()
}

/// Clock ticks of CPU (user + system) a process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let (user, system) = user_and_system_ticks(pid);
    user + system
}

/// A memory figure of a process from `/proc/<pid>/status`, in KiB
/// (`VmRSS`, `RssAnon`, `RssFile`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds on a CPU of each live thread of a process, by thread id
/// (`/proc/<pid>/task/*/schedstat`): exact, where `/proc/<pid>/stat` counts
/// whole clock ticks and reads 0 for a process that used less than one.
fn threads_cpu_ns(pid: u32) -> Vec<(u64, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let tid = t.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            Some((tid, stat.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// Nanoseconds on a CPU of the live threads of a process.
fn cpu_ns_of_threads(pid: u32) -> u64 {
    threads_cpu_ns(pid).iter().map(|(_, ns)| ns).sum()
}

fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|t| t as u64)
        .unwrap_or(100)
}

/// Where the plan deploys its files: a fresh directory under
/// `OSAPI_BENCH_DEPLOY_IN` when set, else under `/dev/shm` when it is
/// there, else under the system's temporary directory.
///
/// Not the temporary directory by default: on a machine whose root is ext4
/// without a journal (this project's CI machine), creating a file scans
/// past every inode of its group freed in the last one to six minutes
/// (`recently_deleted`, in perf), so the cost of the deploy step would
/// depend on what the machine deleted just before (another run's clean-up,
/// nats-server's emptied blocks), not on the agents. With a journal, or on
/// a real fleet's own disks, that scan does not happen.
fn deploy_targets() -> tempfile::TempDir {
    let parent = std::env::var_os("OSAPI_BENCH_DEPLOY_IN")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let shm = std::path::Path::new("/dev/shm");
            shm.is_dir().then(|| shm.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(parent).expect("a directory for the deployed files")
}

/// Runs `call` 20 times, one after another: its median time, and the
/// messages through nats-server per call.
async fn per_call<F, Fut>(nats: &fleet::Nats, mut call: F) -> (Duration, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    const CALLS: usize = 20;
    let messages_before = nats.messages().await;
    let mut took = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        call().await;
        took.push(t.elapsed());
    }
    let messages = nats.messages().await - messages_before;
    took.sort();
    (took[CALLS / 2], messages as f64 / CALLS as f64)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut c = Cluster::start(Duration::from_secs(30)).await;
        c.add_controller().await;
        let specs: Vec<AgentSpec> = (0..200)
            .map(|i| AgentSpec::new(&format!("node-{i:03}")).default_heartbeat())
            .collect();
        let users: Vec<(String, AgentCredentials)> = specs
            .iter()
            .map(|s| (s.name.clone(), AgentCredentials::Password))
            .collect();
        c.nats.add_agent_users(&users).await;

        // 1. Registration of 200 agent processes.
        let server_pids: Vec<u32> = c
            .nats
            .pid()
            .into_iter()
            .chain([c.controllers[0].1.child.id()])
            .collect();
        let server_before: Vec<u64> = server_pids.iter().map(|&p| cpu_ticks(p)).collect();
        let messages_before = c.nats.messages().await;
        let t = Instant::now();
        c.add_agents(&specs).await;
        let registered_in = t.elapsed();
        let start_messages = c.nats.messages().await - messages_before;
        println!(
            "NATS fleet: 200 agent processes registered in {:.2} s (target <= 1.5 s)",
            registered_in.as_secs_f64()
        );
        println!(
            "NATS fleet: messages through nats-server per agent registered: {:.1}",
            start_messages as f64 / 200.0
        );
        let ms = |ticks: u64| ticks as f64 * 1e3 / ticks_per_second() as f64;
        // Exact: an agent's start costs less than a clock tick.
        let agents_cpu_ns: u64 = c
            .agents
            .values()
            .map(|p| cpu_ns_of_threads(p.child.id()))
            .sum();
        let server_used: Vec<u64> = server_pids
            .iter()
            .zip(&server_before)
            .map(|(&p, &b)| cpu_ticks(p) - b)
            .collect();
        println!(
            "NATS fleet: CPU per agent registered: agent {:.1} ms, nats-server {:.1} ms, controller {:.1} ms",
            agents_cpu_ns as f64 / 1e6 / 200.0,
            ms(server_used[0]) / 200.0,
            ms(server_used.get(1).copied().unwrap_or(0)) / 200.0,
        );

        // 2. Agent memory, once idle.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let sorted = |field: &str| {
            let mut kib: Vec<u64> = c
                .agents
                .values()
                .map(|p| status_kib(p.child.id(), field))
                .collect();
            kib.sort();
            kib
        };
        let (rss, anon, file) = (sorted("VmRSS"), sorted("RssAnon"), sorted("RssFile"));
        let mb = |kib: u64| kib as f64 / 1024.0;
        println!(
            "NATS fleet: agent RSS median {:.1} MB, max {:.1} MB (target <= 10 MB); median anonymous {:.1} MB, file-backed {:.1} MB",
            mb(rss[rss.len() / 2]),
            mb(rss[rss.len() - 1]),
            mb(anon[anon.len() / 2]),
            mb(file[file.len() / 2]),
        );

        // 2b. The controller's view of the fleet read afresh (`GET /agent`
        // reads every registration, facts entry and drain flag): what a
        // refresh of its directory costs with 200 agents.
        let client = c.client(0);
        let (median, messages) = per_call(&c.nats, || async {
            let listed = client.agents().await.unwrap();
            assert_eq!(listed.agents.len(), 200);
        })
        .await;
        println!(
            "NATS fleet: GET /agent with 200 agents (a directory refresh): median {:.1} ms, {messages:.0} messages through nats-server each",
            median.as_secs_f64() * 1e3,
        );
        let (median, messages) = per_call(&c.nats, || async {
            let one = client.agent("node-100").await.unwrap();
            assert_eq!(one.hostname, "node-100");
        })
        .await;
        println!(
            "NATS fleet: GET /agent/node-100 with 200 agents: median {:.2} ms, {messages:.0} messages through nats-server each",
            median.as_secs_f64() * 1e3,
        );

        // 2c. 32 jobs submitted at once a second after the directory was
        // last read: each submission resolves its target against it.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let messages_before = c.nats.messages().await;
        let t = Instant::now();
        let submitted = futures::future::join_all((0..32).map(|_| {
            let client = client.clone();
            async move {
                let request = osapi_api::job::CreateJobRequest::new(
                    "node.hostname.get",
                    serde_json::json!({}),
                    "_any",
                );
                client.create_job(&request).await.unwrap()
            }
        }))
        .await;
        let took = t.elapsed();
        let messages = c.nats.messages().await - messages_before;
        for job in &submitted {
            client.wait_job(job.job_id, Duration::from_secs(30)).await.unwrap();
        }
        println!(
            "NATS fleet: 32 `_any` jobs submitted at once on a directory a second old, 200 agents: all accepted in {:.1} ms, {} messages through nats-server meanwhile",
            took.as_secs_f64() * 1e3,
            messages,
        );

        // 3. CPU per host-step of the 3-step plan on 50 agent processes.
        let names: Vec<String> = c.agents.keys().skip(50).cloned().collect();
        for name in names {
            if let Some(mut p) = c.agents.remove(&name) {
                p.terminate();
            }
        }
        let client = c.client(0);
        fleet::wait_for(Duration::from_secs(60), "50 agents to remain", || {
            let client = client.clone();
            async move { client.agents().await.is_ok_and(|l| l.agents.len() == 50) }
        })
        .await;
        client
            .upload_file("motd", ContentType::Raw, &b"hello from the benchmark\n"[..], true)
            .await
            .expect("upload");
        let targets = deploy_targets();
        println!(
            "NATS fleet: files deployed to {} (OSAPI_BENCH_DEPLOY_IN to choose)",
            targets.path().display()
        );
        let plan = |i: usize| {
            let o = Orchestrator::builder(&c.url(0), &c.token())
                .quiet()
                .build()
                .expect("orchestrator");
            let who = o.command_exec("_all", "whoami", &[]);
            let guarded = o
                .command_exec("_all", "true", &[])
                .after(&who)
                .when(|r| r.status("run-whoami") == StepStatus::Changed);
            let path = format!("{}/motd-{i}-@fact.hostname", targets.path().display());
            o.file_deploy("_all", FileDeployOpts::new("motd", path).mode("0644"))
                .after(&guarded);
            o
        };
        plan(0).run().await.expect("warm-up plan");
        let mut pids: Vec<u32> = c.agents.values().map(|p| p.child.id()).collect();
        pids.push(c.controllers[0].1.child.id());
        pids.extend(c.nats.pid());
        let cpu = |pids: &[u32]| pids.iter().map(|&p| cpu_ticks(p)).sum::<u64>();
        // More runs (for profiling): OSAPI_BENCH_RUNS.
        let runs: usize = std::env::var("OSAPI_BENCH_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(5);
        println!("NATS fleet: measuring {runs} runs");
        let parts = |pids: &[u32]| {
            let n = pids.len();
            (
                cpu(&pids[..n - 2]),
                cpu(&pids[n - 2..n - 1]),
                cpu(&pids[n - 1..]),
            )
        };
        // What idle agents cost (heartbeats, facts, waiting pulls).
        let idle_before = agent_threads_cpu_ns(&pids);
        let idle = Duration::from_secs(3);
        tokio::time::sleep(idle).await;
        // What each thread used meanwhile (a thread started meanwhile: all
        // of it; one that ended meanwhile is not counted).
        let idle_used: u64 = agent_threads_cpu_ns(&pids)
            .iter()
            .map(|(t, ns)| ns.saturating_sub(idle_before.get(t).copied().unwrap_or(0)))
            .sum();
        println!(
            "NATS fleet: idle agents: {:.2} ms of CPU per agent per second",
            idle_used as f64 / 1e6 / (pids.len() - 2) as f64 / idle.as_secs_f64()
        );
        let split_before = parts(&pids);
        let agents_split = |pids: &[u32]| {
            pids[..pids.len() - 2]
                .iter()
                .map(|&p| user_and_system_ticks(p))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        let agents_split_before = agents_split(&pids);
        let messages_before = c.nats.messages().await;
        let before = cpu(&pids);
        let t = Instant::now();
        for i in 1..=runs {
            let report = plan(i).run().await.expect("plan");
            assert_eq!(report.count(StepStatus::Failed), 0);
        }
        let wall = t.elapsed();
        let messages = c.nats.messages().await - messages_before;
        let used = (cpu(&pids) - before) as f64 / ticks_per_second() as f64;
        let split_after = parts(&pids);
        let per = |a: u64, b: u64| (a - b) as f64 / ticks_per_second() as f64 * 1e3 / (runs * 150) as f64;
        println!(
            "NATS fleet: CPU per host-step by process: agents {:.2} ms, controller {:.2} ms, nats-server {:.2} ms",
            per(split_after.0, split_before.0),
            per(split_after.1, split_before.1),
            per(split_after.2, split_before.2)
        );
        let host_steps = (runs * 3 * 50) as f64;
        let agents_split_after = agents_split(&pids);
        println!(
            "NATS fleet: agents' CPU per host-step: user {:.2} ms, kernel {:.2} ms",
            per(agents_split_after.0, agents_split_before.0),
            per(agents_split_after.1, agents_split_before.1)
        );
        println!(
            "NATS fleet: messages through nats-server per host-step: {:.1}",
            messages as f64 / host_steps
        );
        println!(
            "NATS fleet: 3-step plan on 50 agent processes: {:.1} ms a run, CPU {:.2} ms per host-step (target <= 1.5 ms)",
            wall.as_secs_f64() * 1e3 / runs as f64,
            used * 1e3 / host_steps
        );
    });
}
