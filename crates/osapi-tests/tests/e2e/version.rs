//! Versions: the controller reports its own in `/health/status`; agents
//! report theirs in the agent list, and one older than the controller's
//! minimum (`api.server.min_agent_version`), or reporting none, is listed
//! with a `VersionSkew` condition, and still gets jobs.

use osapi_api::records::AgentRegistration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common;

/// The controller's default minimum: its own `major.minor.0`.
fn default_min() -> String {
    let own = osapi_server::version::parse_version(osapi_api::VERSION).unwrap();
    osapi_server::version::default_min_agent_version(&own).to_string()
}

fn agent<'a>(list: &'a Value, hostname: &str) -> &'a Value {
    list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["hostname"] == hostname)
        .unwrap_or_else(|| panic!("{hostname} listed: {list}"))
}

fn skews(agent: &Value) -> Vec<&Value> {
    agent["conditions"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["type"] == "VersionSkew").collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn old_agents_are_listed_with_version_skew_and_still_get_jobs() {
    let stack = common::builder()
        .agent(
            |mut a| {
                a.version = "0.0.9+0123456789ab".into();
                a
            },
            "old-01",
        )
        .agent(|a| a, "new-01")
        .start()
        .await;
    let min = default_min();

    let (s, list) = stack.admin(Method::GET, "/agent", None).await;
    assert_eq!(s, StatusCode::OK);
    let old = agent(&list, "old-01");
    assert_eq!(old["agent_version"], "0.0.9+0123456789ab");
    let skew = skews(old);
    assert_eq!(skew.len(), 1, "{old}");
    assert_eq!(skew[0]["status"], true);
    assert_eq!(
        skew[0]["reason"],
        format!("agent 0.0.9+0123456789ab is older than the controller's minimum {min}")
    );
    assert_eq!(skew[0]["last_transition_time"], old["started_at"]);
    // The agent's own conditions are still there, and it is still Ready.
    assert_eq!(old["conditions"].as_array().unwrap().len(), 4, "{old}");
    assert_eq!(old["state"], "Ready");

    let new = agent(&list, "new-01");
    assert_eq!(new["agent_version"], osapi_api::VERSION);
    assert!(skews(new).is_empty(), "{new}");
    assert_eq!(new["conditions"].as_array().unwrap().len(), 3, "{new}");

    // The single-agent view says the same (typed, through the client).
    let one = stack.client.agent("old-01").await.unwrap();
    assert_eq!(one.agent_version.as_deref(), Some("0.0.9+0123456789ab"));
    assert!(
        one.conditions
            .iter()
            .any(|c| c.condition_type == osapi_api::agent::condition::VERSION_SKEW && c.status)
    );

    // Scheduling ignores the skew: jobs for it, and for everyone, reach it.
    let done = stack
        .run_job("node.hostname.get", json!({}), "old-01")
        .await;
    assert_eq!(done.status, Some(osapi_api::job::JobStatus::Completed));
    assert_eq!(done.hostname.as_deref(), Some("old-01"));
    let all = stack.run_job("node.hostname.get", json!({}), "_all").await;
    assert_eq!(all.status, Some(osapi_api::job::JobStatus::Completed));
    let mut hosts: Vec<_> = all.agent_states.unwrap().into_keys().collect();
    hosts.sort();
    assert_eq!(hosts, ["new-01", "old-01"]);

    // A registration without a version (upstream's agents, records from
    // before agents reported one) still parses, and is flagged.
    let record: AgentRegistration = serde_json::from_value(json!({
        "hostname": "legacy-01",
        "instance_id": uuid::Uuid::new_v4(),
        "registered_at": "2026-03-06T10:00:10Z",
        "started_at": "2026-03-06T09:00:00Z",
        "conditions": [],
    }))
    .unwrap();
    stack.emb.bus().registry.put(record).await.unwrap();
    let (_, list) = stack.admin(Method::GET, "/agent", None).await;
    assert_eq!(list["total"], 3);
    let legacy = agent(&list, "legacy-01");
    assert!(legacy.get("agent_version").is_none(), "{legacy}");
    let skew = skews(legacy);
    assert_eq!(
        skew[0]["reason"],
        format!("agent reports no version; the controller's minimum is {min}")
    );
    assert_eq!(skew[0]["last_transition_time"], "2026-03-06T09:00:00Z");
}

#[tokio::test]
async fn the_minimum_is_configurable_and_can_be_turned_off() {
    let raised = common::builder()
        .agent(|a| a, "agent-1")
        .server(|c| c.min_agent_version = Some("99.0.0".parse().unwrap()))
        .start()
        .await;
    let (_, list) = raised.admin(Method::GET, "/agent", None).await;
    let skew = skews(agent(&list, "agent-1"))[0].clone();
    assert_eq!(
        skew["reason"],
        format!(
            "agent {} is older than the controller's minimum 99.0.0",
            osapi_api::VERSION
        )
    );

    let off = common::builder()
        .agent(
            |mut a| {
                a.version = "0.0.1".into();
                a
            },
            "agent-1",
        )
        .server(|c| c.min_agent_version = None)
        .start()
        .await;
    let (_, list) = off.admin(Method::GET, "/agent", None).await;
    let one = agent(&list, "agent-1");
    assert_eq!(one["agent_version"], "0.0.1");
    assert!(skews(one).is_empty(), "{one}");
}

#[tokio::test]
async fn health_status_reports_the_controller_version() {
    let stack = common::builder()
        .agent(|a| a, "agent-1")
        .server(|c| c.version = "0.1.0+8d085288c507".into())
        .start()
        .await;
    for prefix in ["", "/api"] {
        let (s, status) = stack
            .admin(Method::GET, &format!("{prefix}/health/status"), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(status["version"], "0.1.0+8d085288c507", "{status}");
    }
}
