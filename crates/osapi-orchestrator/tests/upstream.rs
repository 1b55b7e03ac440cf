//! The library against upstream OSAPI's controller. Upstream's Go server
//! cannot run here, so this is a stand-in written from its specification
//! (`upstream-control-plane.md` §4.4 and §5.7), not from our server: it
//! ignores `?wait=`, reports no `expected_hosts`, runs an `_any` job on
//! every agent (so it answers with `responses`, not `result`), computes the
//! job status from the agents that have started (a host that picks the job
//! up late is missing from a "completed" job), sets no deadline, and sends
//! Go-cased data. Its agents are simulated: each answers after its own
//! delay, or never.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use osapi_orchestrator::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// A simulated upstream agent.
#[derive(Clone)]
struct Agent {
    hostname: &'static str,
    labels: BTreeMap<String, String>,
    /// When it picks a job up (`None`: never).
    starts_after: Option<Duration>,
    /// How long its work takes once started.
    runs_for: Duration,
    /// Fails every job with this error.
    fails: Option<&'static str>,
}

fn agent(hostname: &'static str, starts_after: u64) -> Agent {
    Agent {
        hostname,
        labels: BTreeMap::from([("role".to_string(), "web".to_string())]),
        starts_after: Some(Duration::from_millis(starts_after)),
        runs_for: Duration::from_millis(20),
        fails: None,
    }
}

struct Job {
    created: Instant,
    op: String,
    target: String,
}

#[derive(Clone)]
struct Upstream {
    agents: Arc<Vec<Agent>>,
    jobs: Arc<Mutex<HashMap<Uuid, Job>>>,
}

/// What an upstream agent answers for `op` (Go-cased where upstream is).
fn data(op: &str, a: &Agent) -> Value {
    match op {
        "node.hostname.get" => {
            json!({"hostname": a.hostname, "labels": a.labels, "changed": false})
        }
        "node.memory.get" => {
            json!({"Total": 8_000_000_000u64, "Available": 6_000_000_000u64, "Free": 1_000_000_000u64, "Cached": 2_000_000_000u64})
        }
        _ => json!({"changed": false}),
    }
}

fn rfc3339(at: Instant, base: Instant) -> String {
    let t = time::OffsetDateTime::now_utc() - (base.elapsed() - at.duration_since(base));
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// `GET /job/{id}` as upstream computes it (§4.4.4, §5.7).
fn detail(id: Uuid, job: &Job, agents: &[Agent]) -> Value {
    let now = Instant::now();
    let reached: Vec<&Agent> = agents
        .iter()
        .filter(|a| match job.target.as_str() {
            "_any" | "_all" => true,
            t => match t.split_once(':') {
                Some((k, v)) => a.labels.get(k).is_some_and(|x| x == v),
                None => a.hostname == t,
            },
        })
        .collect();
    let mut states = serde_json::Map::new();
    let mut responses = serde_json::Map::new();
    let mut timeline = vec![(
        job.created,
        json!({"event": "submitted", "hostname": "_api", "message": "Job submitted to queue"}),
    )];
    let mut done: Vec<(&Agent, Instant)> = Vec::new();
    let mut running = false;
    for a in reached {
        let Some(start) = a.starts_after.map(|d| job.created + d) else {
            continue;
        };
        if now < start {
            continue;
        }
        timeline.push((start, json!({"event": "started", "hostname": a.hostname, "message": format!("Job processing started on {}", a.hostname)})));
        let end = start + a.runs_for;
        if now < end {
            running = true;
            states.insert(a.hostname.into(), json!({"status": "started"}));
            continue;
        }
        done.push((a, end));
        let (status, event) = match a.fails {
            Some(e) => (json!({"status": "failed", "error": e}), "failed"),
            None => (json!({"status": "completed"}), "completed"),
        };
        states.insert(a.hostname.into(), status);
        timeline.push((
            end,
            json!({"event": event, "hostname": a.hostname, "message": "done"}),
        ));
        let response = match a.fails {
            Some(e) => json!({"status": "failed", "hostname": a.hostname, "error": e}),
            None => {
                json!({"status": "completed", "hostname": a.hostname, "data": data(&job.op, a)})
            }
        };
        responses.insert(
            a.hostname.replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-',
                "_",
            ),
            response,
        );
    }
    timeline.sort_by_key(|(at, _)| *at);
    let status = if states.is_empty() {
        "submitted"
    } else if running {
        "processing"
    } else {
        let failed = done.iter().filter(|(a, _)| a.fails.is_some()).count();
        match (failed, done.len() - failed) {
            (0, _) => "completed",
            (_, 0) => "failed",
            _ => "partial_failure",
        }
    };
    let mut body = json!({
        "id": id,
        "status": status,
        "created": rfc3339(job.created, job.created),
        "operation": {"type": job.op, "data": {}},
        "agent_states": states,
        "timeline": timeline.iter().map(|(at, e)| {
            let mut e = e.clone();
            e["timestamp"] = json!(rfc3339(*at, job.created));
            e
        }).collect::<Vec<_>>(),
    });
    if let Some((last, _)) = done.iter().max_by_key(|(_, end)| *end) {
        body["hostname"] = json!(last.hostname);
    }
    if status == "failed" {
        body["error"] = json!(done.last().and_then(|(a, _)| a.fails).unwrap_or(""));
    }
    match responses.len() {
        0 => {}
        1 => {
            if let Some(Value::Object(r)) = responses.values().next()
                && let Some(d) = r.get("data")
            {
                body["result"] = d.clone();
            }
        }
        _ => body["responses"] = Value::Object(responses),
    }
    body
}

async fn create(State(s): State<Upstream>, Json(req): Json<Value>) -> Response {
    let id = Uuid::new_v4();
    let job = Job {
        created: Instant::now(),
        op: req["operation"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        target: req["target_hostname"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    s.jobs.lock().unwrap().insert(id, job);
    (
        StatusCode::CREATED,
        Json(json!({"job_id": id, "status": "created", "revision": 1, "timestamp": "2026-03-06T10:00:00-08:00"})),
    )
        .into_response()
}

async fn job(State(s): State<Upstream>, Path(id): Path<Uuid>) -> Response {
    // `?wait=` is ignored: upstream answers at once.
    let jobs = s.jobs.lock().unwrap();
    match jobs.get(&id) {
        Some(j) => Json(detail(id, j, &s.agents)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("job not found: {id}")})),
        )
            .into_response(),
    }
}

async fn agent_list(State(s): State<Upstream>) -> Json<Value> {
    let list: Vec<Value> = s
        .agents
        .iter()
        .map(|a| json!({"hostname": a.hostname, "status": "Ready", "labels": a.labels}))
        .collect();
    Json(json!({"total": list.len(), "agents": list}))
}

/// Starts the stand-in; an orchestrator for it.
async fn upstream(agents: Vec<Agent>, deadline: Duration) -> Orchestrator {
    let state = Upstream {
        agents: Arc::new(agents),
        jobs: Arc::default(),
    };
    let app = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/job", post(create))
        .route(
            "/job/{id}",
            get(job).delete(|| async { StatusCode::NO_CONTENT }),
        )
        .route("/agent", get(agent_list))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
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
