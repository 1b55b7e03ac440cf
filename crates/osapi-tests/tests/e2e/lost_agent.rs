//! An agent that dies mid-job: the job ends with that host failed as lost
//! within the registry TTL; other hosts are unaffected.

use std::time::{Duration, Instant};

use osapi_api::job::JobStatus;
use serde_json::json;

use crate::common;

#[tokio::test]
async fn killed_agent_is_reported_lost_within_ttl() {
    let ttl = Duration::from_secs(1);
    let stack = common::builder()
        .agent(|a| a, "stays")
        .agent(|a| a, "dies")
        .ttl(ttl)
        .start()
        .await;
    let c = &stack.client;
    let job = c
        .submit(
            "command.shell.execute",
            json!({"command": "sleep 30"}),
            "dies",
        )
        .await
        .unwrap();
    let other = c
        .submit(
            "command.shell.execute",
            json!({"command": "sleep 1"}),
            "stays",
        )
        .await
        .unwrap();
    loop {
        let d = c
            .job_wait(job.job_id, Duration::from_millis(200))
            .await
            .unwrap();
        if d.agent_states
            .is_some_and(|s| s.get("dies").is_some_and(|a| a.status == "started"))
        {
            break;
        }
    }
    let killed_at = Instant::now();
    assert!(stack.emb.kill_agent("dies"));
    let d = c
        .wait_job(job.job_id, Duration::from_secs(10))
        .await
        .unwrap();
    let noticed = killed_at.elapsed();
    assert_eq!(d.status(), JobStatus::Failed);
    assert!(
        d.error.as_deref().unwrap().contains("agent dies lost"),
        "{:?}",
        d.error
    );
    assert_eq!(d.agent_states.unwrap()["dies"].status, "lost");
    assert!(
        noticed <= ttl + Duration::from_millis(900),
        "noticed after {noticed:?}"
    );
    let fine = c
        .wait_job(other.job_id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(fine.status(), JobStatus::Completed);
    // New jobs no longer accept the dead host.
    let err = c
        .submit("node.hostname.get", json!({}), "dies")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
}

#[tokio::test]
async fn broadcast_with_a_lost_host_is_partial_failure() {
    let ttl = Duration::from_secs(1);
    let stack = common::builder()
        .agent(|a| a, "a1")
        .agent(|a| a, "a2")
        .ttl(ttl)
        .start()
        .await;
    let c = &stack.client;
    let job = c
        .submit(
            "command.shell.execute",
            json!({"command": "sleep 1.5"}),
            "_all",
        )
        .await
        .unwrap();
    loop {
        let d = c
            .job_wait(job.job_id, Duration::from_millis(200))
            .await
            .unwrap();
        if d.agent_states
            .is_some_and(|s| s.values().filter(|a| a.status == "started").count() == 2)
        {
            break;
        }
    }
    stack.emb.kill_agent("a2");
    let d = c
        .wait_job(job.job_id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(d.status(), JobStatus::PartialFailure);
    let r = d.responses.unwrap();
    assert_eq!(r["a1"].status, "completed");
    assert_eq!(r["a2"].status, "failed");
    assert!(r["a2"].error.as_deref().unwrap().contains("lost"));
}
