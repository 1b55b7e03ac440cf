//! Three agents with labels: `_all`, `key:value` with dotted prefixes, a
//! hostname, a list of hostnames, and `_any` (each job runs on exactly one
//! agent).

use std::collections::BTreeMap;
use std::time::Duration;

use osapi_api::job::JobStatus;
use serde_json::json;

use crate::common;

fn hosts(detail: &osapi_api::job::JobDetail) -> Vec<String> {
    let mut h: Vec<String> = detail
        .responses
        .as_ref()
        .map(|r| r.values().map(|v| v.hostname.clone()).collect())
        .unwrap_or_default();
    h.sort();
    h
}

#[tokio::test]
async fn targets_reach_the_right_agents() {
    let stack = common::fleet().await;
    let d = stack.run_job("node.hostname.get", json!({}), "_all").await;
    assert_eq!(d.status(), JobStatus::Completed);
    assert_eq!(hosts(&d), ["db-01", "web-01", "web-02"]);
    assert_eq!(d.expected_hosts.as_ref().unwrap().len(), 3);

    let d = stack
        .run_job("node.hostname.get", json!({}), "group:web")
        .await;
    assert_eq!(
        hosts(&d),
        ["web-01", "web-02"],
        "dotted prefix web matches web.dev.us-east and web.prod"
    );
    let d = stack
        .run_job("node.hostname.get", json!({}), "group:web.dev")
        .await;
    assert_eq!(hosts(&d), ["web-01"]);
    let d = stack
        .run_job("node.hostname.get", json!({}), "group:web.dev.us-east")
        .await;
    assert_eq!(hosts(&d), ["web-01"]);
    let d = stack
        .run_job("node.hostname.get", json!({}), "role:db")
        .await;
    assert_eq!(hosts(&d), ["db-01"]);

    let d = stack
        .run_job("command.exec.execute", json!({"command": "true"}), "web-02")
        .await;
    assert_eq!(d.status(), JobStatus::Completed);
    assert_eq!(d.hostname.as_deref(), Some("web-02"));
    assert_eq!(d.result.as_ref().unwrap()["exit_code"], 0);
    assert!(
        d.responses.is_none(),
        "a hostname target answers with result"
    );
    assert_eq!(
        d.agent_states.unwrap().keys().collect::<Vec<_>>(),
        ["web-02"]
    );
}

/// A list of hostnames reaches exactly those agents, with one job; a name
/// no agent has is refused, naming it.
#[tokio::test]
async fn host_lists_reach_exactly_their_agents() {
    let stack = common::fleet().await;
    let d = stack
        .run_job("node.hostname.get", json!({}), "web-02,db-01")
        .await;
    assert_eq!(d.status(), JobStatus::Completed);
    assert_eq!(hosts(&d), ["db-01", "web-02"]);
    let mut expected = d.expected_hosts.clone().unwrap();
    expected.sort();
    assert_eq!(expected, ["db-01", "web-02"]);
    let (status, body) = stack
        .admin(
            reqwest::Method::POST,
            "/job",
            Some(json!({"operation": {"type": "node.hostname.get", "data": {}}, "target_hostname": "web-01,nope"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
    assert!(
        body.to_string().contains("target agents nope not found"),
        "{body}"
    );
    for bad in ["web-01,,db-01", "web-01,_all", "web-01,role:web"] {
        let (status, _) = stack
            .admin(
                reqwest::Method::POST,
                "/job",
                Some(json!({"operation": {"type": "node.hostname.get", "data": {}}, "target_hostname": bad})),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn any_runs_each_job_exactly_once() {
    let stack = common::fleet().await;
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(
            stack
                .client
                .submit("node.hostname.get", json!({}), "_any")
                .await
                .unwrap()
                .job_id,
        );
    }
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let d = stack
            .client
            .wait_job(*id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(d.status(), JobStatus::Completed);
        assert!(d.result.is_some());
        let states = d.agent_states.unwrap();
        assert_eq!(
            states.len(),
            1,
            "exactly one agent touched job {id}: {states:?}"
        );
        *per_agent
            .entry(states.keys().next().unwrap().clone())
            .or_default() += 1;
    }
    // Count executions from the bus too: one response per job, no more.
    let mut responses = 0;
    for id in &ids {
        responses += stack
            .emb
            .bus()
            .jobs
            .get(*id)
            .await
            .unwrap()
            .unwrap()
            .responses
            .len();
    }
    assert_eq!(responses, 50);
    assert_eq!(per_agent.values().sum::<usize>(), 50, "{per_agent:?}");
    assert!(
        per_agent
            .keys()
            .all(|h| ["db-01", "web-01", "web-02"].contains(&h.as_str()))
    );
}

#[tokio::test]
async fn broadcast_with_a_failing_host_is_partial_failure() {
    let stack = common::fleet().await;
    // Only a "prod" directory exists; web-02's env fact is "staging", so its
    // working directory is missing and it fails while the others succeed.
    std::fs::create_dir(stack.path("prod")).unwrap();
    let cwd = format!("{}/@fact.custom.env", stack.dir.path().display());
    let d = stack
        .run_job(
            "command.exec.execute",
            json!({"command": "pwd", "cwd": cwd}),
            "_all",
        )
        .await;
    assert_eq!(d.status(), JobStatus::PartialFailure);
    assert!(d.error.is_none());
    let r = d.responses.unwrap();
    assert_eq!(r["web-02"].status, "failed");
    assert!(
        r["web-02"].error.as_deref().unwrap().contains("staging"),
        "{:?}",
        r["web-02"]
    );
    assert_eq!(r["web-01"].status, "completed");
    assert!(
        r["db-01"].data.as_ref().unwrap()["stdout"]
            .as_str()
            .unwrap()
            .ends_with("/prod\n")
    );
    // Every host failing is "failed", with the error.
    let d = stack
        .run_job(
            "command.exec.execute",
            json!({"command": "true", "cwd": "/nonexistent-dir-for-test"}),
            "role:web",
        )
        .await;
    assert_eq!(d.status(), JobStatus::Failed);
    assert!(
        d.error
            .as_deref()
            .unwrap()
            .contains("nonexistent-dir-for-test"),
        "{:?}",
        d.error
    );
    // A non-zero exit is data at this layer (the orchestrator turns it into a host failure).
    let d = stack
        .run_job(
            "command.exec.execute",
            json!({"command": "test", "args": ["@fact.custom.env", "=", "prod"]}),
            "_all",
        )
        .await;
    assert_eq!(d.status(), JobStatus::Completed);
    let r = d.responses.unwrap();
    assert_eq!(r["web-02"].data.as_ref().unwrap()["exit_code"], 1);
    assert_eq!(r["web-01"].data.as_ref().unwrap()["exit_code"], 0);
}
