//! Drain and undrain: a drained agent takes no new jobs, finishes running
//! ones (Draining → Cordoned), and picks up again after undrain.

use std::time::Duration;

use osapi_api::agent::AgentState;
use osapi_api::job::JobStatus;
use serde_json::json;

use crate::common;

#[tokio::test]
async fn drain_finishes_running_work_and_stops_taking_new() {
    let stack = common::builder()
        .agent(|a| a, "busy")
        .agent(|a| a, "idle")
        .start()
        .await;
    let c = &stack.client;
    // A job that runs for a moment on "busy".
    let long = c
        .submit(
            "command.exec.execute",
            json!({"command": "sleep", "args": ["1"]}),
            "busy",
        )
        .await
        .unwrap();
    loop {
        let d = c
            .job_wait(long.job_id, Duration::from_millis(200))
            .await
            .unwrap();
        if d.agent_states
            .is_some_and(|s| s.get("busy").is_some_and(|a| a.status == "started"))
        {
            break;
        }
    }
    c.drain("busy").await.unwrap();
    let during = c.agent("busy").await.unwrap();
    assert_eq!(
        during.state,
        Some(AgentState::Draining),
        "running work keeps it Draining"
    );
    // _all now skips it.
    let all = c
        .submit("node.hostname.get", json!({}), "_all")
        .await
        .unwrap();
    assert_eq!(all.expected_hosts, ["idle"]);
    // A job aimed at it waits.
    let queued = c
        .submit("node.hostname.get", json!({}), "busy")
        .await
        .unwrap();
    let finished = c
        .wait_job(long.job_id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        finished.status(),
        JobStatus::Completed,
        "in-flight work finishes"
    );
    // Cordoned once idle; the queued job still waits.
    let cordoned = async {
        loop {
            if c.agent("busy").await.unwrap().state == Some(AgentState::Cordoned) {
                break;
            }
            c.job_wait(queued.job_id, Duration::from_millis(50))
                .await
                .unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(5), cordoned)
        .await
        .expect("agent reports Cordoned");
    let waiting = c
        .job_wait(queued.job_id, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(waiting.status(), JobStatus::Submitted);
    let timeline: Vec<String> = c
        .agent("busy")
        .await
        .unwrap()
        .timeline
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert!(timeline.contains(&"cordoned".to_string()), "{timeline:?}");

    c.undrain("busy").await.unwrap();
    let done = c
        .wait_job(queued.job_id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        done.status(),
        JobStatus::Completed,
        "queued work runs after undrain"
    );
    assert_eq!(
        c.agent("busy").await.unwrap().state,
        Some(AgentState::Ready)
    );
}
