//! Work on agent processes over NATS that stops when told and output that is
//! never lost: a cancelled job's command is killed; a command orphaned by a
//! `kill -9` of its agent is killed when the agent starts again; outputs
//! larger than NATS's largest message arrive whole, and past the capture
//! limit they are cut and say so.

use std::time::Duration;

use osapi_api::job::{CreateJobRequest, JobStatus};
use osapi_api::results::CommandResult;
use serde_json::json;

use crate::fleet::{AgentSpec, Cluster, wait_for};

const WAIT: Duration = Duration::from_secs(60);

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Waits until `path` holds a pid, and returns it.
async fn pid_in(path: &std::path::Path) -> i32 {
    let mut pid = None;
    wait_for(WAIT, "the command to start", || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let found = pid.is_some();
        async move { found }
    })
    .await;
    pid.unwrap()
}

async fn gone(pid: i32, what: &str) {
    wait_for(Duration::from_secs(15), what, || {
        let dead = !alive(pid);
        async move { dead }
    })
    .await;
}

/// A shell command that starts `sleep 300` in the background, writes its pid
/// to `pidfile` and waits for it.
fn sleeper(pidfile: &std::path::Path) -> serde_json::Value {
    json!({"command": format!("sleep 300 & echo $! > {}; wait", pidfile.display()), "timeout": 300})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_orphaned_commands_are_killed() {
    let spec = AgentSpec::new("w1");
    let mut c = Cluster::with_agent(Duration::from_secs(3), &spec).await;
    let client = c.client(0);

    // DELETE /job/{id} of a running command kills it on the agent.
    let pidfile = c.dir.path().join("cancelled.pid");
    let job = client
        .submit("command.shell.execute", sleeper(&pidfile), "w1")
        .await
        .unwrap();
    let pid = pid_in(&pidfile).await;
    client.delete_job(job.job_id).await.unwrap();
    gone(pid, "the cancelled command to be killed").await;
    let d = client.wait_job(job.job_id, WAIT).await.unwrap();
    assert_eq!(d.status(), JobStatus::Failed);
    assert_eq!(d.error.as_deref(), Some("job cancelled"));

    // kill -9 of the agent orphans its command; the next start kills it.
    let pidfile = c.dir.path().join("orphan.pid");
    let job = client
        .submit("command.shell.execute", sleeper(&pidfile), "w1")
        .await
        .unwrap();
    let pid = pid_in(&pidfile).await;
    c.agents.get_mut("w1").unwrap().kill();
    assert!(alive(pid), "a kill -9 leaves the command running");
    // Lists and counts settle the lost job themselves (nothing reads it).
    wait_for(WAIT, "the job list to show the lost job failed", || {
        let client = client.clone();
        async move {
            client
                .jobs(Some(JobStatus::Failed), 10, 0)
                .await
                .is_ok_and(|p| p.items.iter().any(|d| d.id == Some(job.job_id)))
        }
    })
    .await;
    let stats = client.job_stats().await.unwrap();
    assert_eq!(stats.status_counts["failed"], 2, "{stats:?}");
    assert_eq!(
        stats.status_counts.get("processing").copied().unwrap_or(0),
        0,
        "{stats:?}"
    );
    let lost = client.wait_job(job.job_id, WAIT).await.unwrap();
    assert!(
        lost.error.as_deref().unwrap_or_default().contains("lost"),
        "{lost:?}"
    );
    c.restart_agent(&spec).await;
    gone(pid, "the orphaned command to be killed at restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_outputs_arrive_whole_or_say_they_were_cut() {
    let c = Cluster::with_agent(Duration::from_secs(10), &AgentSpec::new("w1")).await;
    let client = c.client(0);
    let run = |command: &str| {
        let req = CreateJobRequest::new("command.shell.execute", json!({"command": command}), "w1");
        let client = client.clone();
        async move { client.run_job(&req, WAIT).await.unwrap() }
    };
    // 3 MB: three times NATS's largest message.
    let d = run("head -c 3000000 /dev/zero | tr '\\0' x").await;
    assert_eq!(d.status(), JobStatus::Completed, "{:?}", d.error);
    let r: CommandResult = serde_json::from_value(d.result.unwrap()).unwrap();
    assert_eq!(r.stdout.len(), 3_000_000);
    assert!(r.stdout.bytes().all(|b| b == b'x'));
    assert!(!r.stdout_truncated);
    // Past the 4 MiB capture limit: cut, and flagged.
    let d = run("head -c 5000000 /dev/zero | tr '\\0' y; echo done >&2").await;
    let r: CommandResult = serde_json::from_value(d.result.unwrap()).unwrap();
    assert_eq!(r.stdout.len(), 4 * 1024 * 1024);
    assert!(r.stdout_truncated);
    assert_eq!(r.stderr, "done\n");
    assert!(!r.stderr_truncated);
    // Lists read them too.
    let listed = client.jobs(None, 2, 0).await.unwrap();
    assert_eq!(listed.items.len(), 2);
}

/// Submits `touch <marker>` to `host` and returns the job's id.
async fn toucher(
    client: &osapi_client::Client,
    host: &str,
    marker: &std::path::Path,
) -> uuid::Uuid {
    client
        .submit(
            "command.exec.execute",
            json!({"command": "touch", "args": [marker]}),
            host,
        )
        .await
        .unwrap()
        .job_id
}

/// Runs a job on `host` to the end: every job queued for it before has
/// been taken (its queue is first in, first out).
async fn run_after(client: &osapi_client::Client, host: &str) {
    let req = CreateJobRequest::new("command.exec.execute", json!({"command": "true"}), host);
    let d = client.run_job(&req, WAIT).await.unwrap();
    assert_eq!(d.status(), JobStatus::Completed, "{:?}", d.error);
}

/// A job the controller settled while it waited in a host's queue never
/// runs there, whichever way the agent learns of it: a cancellation heard
/// while the job waited (the agent then skips reading the job's state), or
/// reading the state because the agent may have missed something (it was
/// down when the job was cancelled, or stopped long enough to be recorded
/// lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_settled_while_queued_never_run() {
    let spec = AgentSpec::new("q1");
    let mut c = Cluster::with_agent(Duration::from_secs(3), &spec).await;
    let client = c.client(0);
    let dir = c.dir.path().to_path_buf();
    let marker = |name: &str| dir.join(name);
    // The queue is caught up: the agent trusts what it hears.
    run_after(&client, "q1").await;

    // Cancelled while it waits (the agent drained): the request is heard.
    client.drain("q1").await.unwrap();
    let heard = toucher(&client, "q1", &marker("heard")).await;
    client.delete_job(heard).await.unwrap();
    client.undrain("q1").await.unwrap();
    run_after(&client, "q1").await;
    assert!(
        !marker("heard").exists(),
        "a job cancelled while queued ran"
    );

    // Cancelled while the agent is down (the request is lost): read at
    // its start, the job is found settled.
    c.agents.get_mut("q1").unwrap().kill();
    let unheard = toucher(&client, "q1", &marker("unheard")).await;
    client.delete_job(unheard).await.unwrap();
    c.restart_agent(&spec).await;
    run_after(&client, "q1").await;
    assert!(
        !marker("unheard").exists(),
        "a job cancelled while its agent was down ran"
    );

    // Recorded lost while the agent was stopped (no heartbeat within the
    // registration's 3 s): after it resumes, the job is read and skipped.
    let pid = nix::unistd::Pid::from_raw(c.agents["q1"].child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let stopped = toucher(&client, "q1", &marker("stopped")).await;
    let lost = client.wait_job(stopped, WAIT).await;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let lost = lost.unwrap();
    assert!(
        lost.error.as_deref().unwrap_or_default().contains("lost"),
        "{lost:?}"
    );
    wait_for(WAIT, "the agent to register again", || {
        let client = client.clone();
        async move { client.agent("q1").await.is_ok() }
    })
    .await;
    run_after(&client, "q1").await;
    assert!(!marker("stopped").exists(), "a job recorded lost ran later");
}
