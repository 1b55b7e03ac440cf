//! The library against upstream OSAPI's controller, as the stand-in in
//! `standin/` (written from upstream's specification) behaves: `_any`
//! answered by every agent, broadcasts that end before a slow agent
//! answered, no deadline, Go-cased data.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

mod standin;
mod support;

use std::time::Duration;

use osapi_orchestrator::prelude::*;
use standin::agent;
use support::SharedBuf;

/// Starts the stand-in; an orchestrator for it.
async fn upstream(agents: Vec<standin::Agent>, deadline: Duration) -> Orchestrator {
    let addr = standin::start(agents).await;
    Orchestrator::builder(&format!("http://{addr}"), "token")
        .quiet()
        .job_deadline(deadline)
        .build()
        .unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn any_answered_by_every_agent_takes_the_first_success() {
    let mut slow = agent("a-01", 0);
    slow.runs_for = Duration::from_millis(150);
    let mut failing = agent("c-03", 0);
    failing.fails = Some("disk on fire");
    let o = upstream(vec![slow, agent("b-02", 0), failing], MINUTE).await;
    let host = o.node_hostname_get("_any");
    let report = o.run().await.unwrap();
    // The first host to complete answers for the step…
    assert_eq!(report.result(&host).unwrap().hostname, "b-02");
    // …every host's answer is kept, and one failing agent fails nothing.
    let hosts = report.host_results(&host);
    assert_eq!(hosts.len(), 3);
    assert_eq!(report.get(&host).unwrap().status, StepStatus::Unchanged);
    assert!(hosts.iter().any(|h| h.hostname == "c-03" && h.failed()));

    // When no host succeeds, the step fails and says why for each.
    let mut a = agent("a-01", 0);
    a.fails = Some("no");
    let mut b = agent("b-02", 0);
    b.fails = Some("nope");
    let o = upstream(vec![a, b], MINUTE).await;
    let host = o.node_hostname_get("_any");
    let report = o.run().await.unwrap_or_else(|e| e.into_report());
    let step = report.get(&host).unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    let error = step.error.clone().unwrap();
    assert!(
        error.contains("a-01: no") && error.contains("b-02: nope"),
        "{error}"
    );
}

#[tokio::test]
async fn broadcasts_wait_for_every_expected_host() {
    // c-03 picks the job up after the others are done: upstream already
    // calls the job completed; the library waits for c-03 too.
    let o = upstream(
        vec![agent("a-01", 0), agent("b-02", 0), agent("c-03", 400)],
        MINUTE,
    )
    .await;
    let all = o.node_hostname_get("_all");
    let web = o.node_hostname_get("role:web");
    let report = o.run().await.unwrap();
    for step in [&all, &web] {
        let hosts: Vec<&str> = report
            .host_results(step)
            .iter()
            .map(|h| h.hostname.as_str())
            .collect();
        assert_eq!(hosts, ["a-01", "b-02", "c-03"], "{}", step.name());
    }

    // A host that never picks the job up is lost once the deadline passes.
    let mut never = agent("c-03", 0);
    never.starts_after = None;
    let o = upstream(
        vec![agent("a-01", 0), agent("b-02", 0), never],
        Duration::from_millis(600),
    )
    .await;
    let all = o.node_hostname_get("_all");
    let report = o.run().await.unwrap_or_else(|e| e.into_report());
    let hosts = report.host_results(&all);
    let lost: Vec<&str> = hosts
        .iter()
        .filter(|h| h.status == HostStatus::Lost)
        .map(|h| h.hostname.as_str())
        .collect();
    assert_eq!(lost, ["c-03"]);
    let step = report.get(&all).unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert!(
        step.error
            .as_deref()
            .unwrap()
            .contains("c-03: no answer within")
    );
}

#[tokio::test]
async fn a_job_nobody_picks_up_ends_at_the_library_deadline() {
    let mut never = agent("a-01", 0);
    never.starts_after = None;
    let o = upstream(vec![never], Duration::from_millis(500)).await;
    let host = o.node_hostname_get("a-01");
    let report = o.run().await.unwrap_or_else(|e| e.into_report());
    let step = report.get(&host).unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert!(
        step.error.as_deref().unwrap().contains("still submitted"),
        "{:?}",
        step.error
    );
}

#[tokio::test]
async fn go_cased_memory_derives_what_upstream_leaves_out() {
    let o = upstream(vec![agent("a-01", 0)], MINUTE).await;
    let mem = o.node_memory_get("a-01");
    let report = o.run().await.unwrap();
    let m = report.result(&mem).unwrap();
    assert_eq!(m.total, 8_000_000_000);
    assert_eq!(m.used, 2_000_000_000, "total − available");
}

/// `host_done` events report hosts as they answer: the fast hosts of a
/// job are reported while a slow one still works, every host before the
/// step's `step_finished`.
#[tokio::test]
async fn hosts_are_reported_as_they_answer() {
    let addr = standin::start(vec![
        agent("web-01", 0),
        agent("web-02", 0),
        agent("db-01", 1_500),
    ])
    .await;
    let lines = SharedBuf::default();
    let o = Orchestrator::builder(&format!("http://{addr}"), "token")
        .quiet()
        .json_events(lines.clone())
        .build()
        .unwrap();
    o.node_hostname_get("_all");
    o.run().await.unwrap();
    let text = lines.text();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let order: Vec<String> = events
        .iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("host_done") => Some(e["host"]["hostname"].as_str().unwrap().to_string()),
            Some("step_finished") => Some("finished".to_string()),
            _ => None,
        })
        .collect();
    // Reported at the end, hosts would come sorted (db-01 first).
    assert_eq!(order, ["web-01", "web-02", "db-01", "finished"], "{text}");
}
