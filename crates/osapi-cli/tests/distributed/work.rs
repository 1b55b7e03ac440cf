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
    let mut c = Cluster::start(Duration::from_secs(3)).await;
    c.add_controller().await;
    let spec = AgentSpec::new("w1");
    c.add_agents(std::slice::from_ref(&spec)).await;
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
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    c.add_agents(&[AgentSpec::new("w1")]).await;
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
