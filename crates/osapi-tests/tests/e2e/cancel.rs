//! Work that stops when told: `DELETE /job/{id}` on a running command kills
//! its process group and the job ends `failed` with `job cancelled`; a
//! queued job that is cancelled never runs; a finished job is deleted.

use std::time::Duration;

use osapi_api::job::JobStatus;
use serde_json::json;

use crate::common;

/// True while process `pid` exists.
fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Waits until `path` holds a pid, and returns it.
async fn pid_in(path: &std::path::Path) -> i32 {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(pid) = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the command started")
}

#[tokio::test]
async fn deleting_a_running_job_kills_its_command() {
    let stack = common::builder()
        .agent(|a| a, "busy")
        .agent(|a| a, "parked")
        .start()
        .await;
    let c = &stack.client;
    let pidfile = stack.path("pid");
    let job = c
        .submit(
            "command.shell.execute",
            json!({"command": format!("sleep 60 & echo $! > {}; wait", pidfile.display()), "timeout": 120}),
            "busy",
        )
        .await
        .unwrap();
    let pid = pid_in(&pidfile).await;
    assert!(alive(pid));
    c.delete_job(job.job_id).await.unwrap();
    let d = c
        .wait_job(job.job_id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(d.status(), JobStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("job cancelled"), "{d:?}");
    tokio::time::timeout(Duration::from_secs(10), async {
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the command's whole process group is killed");

    // A queued job, cancelled, never runs.
    c.drain("parked").await.unwrap();
    let marker = stack.path("queued-ran");
    let queued = c
        .submit(
            "command.exec.execute",
            json!({"command": "touch", "args": [marker]}),
            "parked",
        )
        .await
        .unwrap();
    c.delete_job(queued.job_id).await.unwrap();
    assert_eq!(
        c.job(queued.job_id).await.unwrap().error.as_deref(),
        Some("job cancelled")
    );
    c.undrain("parked").await.unwrap();
    // The agent takes it and finds it settled: a later job on the same
    // queue runs, so the cancelled one was seen and skipped.
    let later = stack
        .run_job("node.hostname.get", json!({}), "parked")
        .await;
    assert_eq!(later.status(), JobStatus::Completed);
    assert!(!marker.exists(), "a cancelled queued job never runs");

    // A finished job is deleted.
    c.delete_job(later.id.unwrap()).await.unwrap();
    assert!(c.job(later.id.unwrap()).await.is_err());
}
