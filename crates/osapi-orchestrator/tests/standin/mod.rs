//! A stand-in for upstream OSAPI's controller and its agents. Upstream's Go
//! server cannot run here, so this is written from its specification
//! (`upstream-control-plane.md` §4.2, §4.4, §4.5, §5.7), not from our
//! server: it ignores `?wait=`, reports no `expected_hosts`, runs an `_any`
//! job on every agent (so it answers with `responses`, not `result`),
//! computes a job's status from the agents that have started (a host that
//! picks the job up late is missing from a "completed" job), sets no
//! deadline, sends Go-cased data, and its agents report no custom facts.
//! The agents are simulated: each answers after its own delay, or never;
//! commands are not run (`echo` and `exit N` are understood).
#![allow(dead_code)] // each test binary uses part of it

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A simulated upstream agent.
#[derive(Clone)]
pub struct Agent {
    pub hostname: &'static str,
    pub labels: BTreeMap<String, String>,
    /// When it picks a job up (`None`: never).
    pub starts_after: Option<Duration>,
    /// How long its work takes once started.
    pub runs_for: Duration,
    /// Fails every job with this error.
    pub fails: Option<&'static str>,
}

/// An agent with `role=web` that starts after `starts_after` ms.
pub fn agent(hostname: &'static str, starts_after: u64) -> Agent {
    Agent {
        hostname,
        labels: BTreeMap::from([("role".to_string(), "web".to_string())]),
        starts_after: Some(Duration::from_millis(starts_after)),
        runs_for: Duration::from_millis(20),
        fails: None,
    }
}

/// web-01 and web-02 (role=web), and db-01 (role=db), which picks jobs up
/// 100 ms after the others.
pub fn three() -> Vec<Agent> {
    let mut db = agent("db-01", 100);
    db.labels.insert("role".into(), "db".into());
    vec![agent("web-01", 0), agent("web-02", 0), db]
}

struct Job {
    created: Instant,
    op: String,
    data: Value,
    target: String,
}

/// A stored file.
struct Object {
    sha256: String,
    size: usize,
    content_type: String,
}

#[derive(Clone)]
struct Upstream {
    agents: Arc<Vec<Agent>>,
    jobs: Arc<Mutex<HashMap<Uuid, Job>>>,
    files: Arc<Mutex<BTreeMap<String, Object>>>,
    /// (host, path) → the deployed file's sha256.
    deployed: Arc<Mutex<HashMap<(String, String), String>>>,
    /// Results already computed, so that a job's answers stay the same.
    answers: Arc<Mutex<HashMap<(Uuid, String), Value>>>,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// A command's simulated result: `echo …` prints, `exit N` ends with N.
fn command(data: &Value, shell: bool) -> Value {
    let line = if shell {
        data["command"].as_str().unwrap_or_default().to_string()
    } else {
        let args: Vec<&str> = data["args"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        format!(
            "{} {}",
            data["command"].as_str().unwrap_or_default(),
            args.join(" ")
        )
    };
    let mut stdout = String::new();
    let mut code = 0;
    for part in line.split(';').map(str::trim) {
        if let Some(text) = part.strip_prefix("echo") {
            stdout.push_str(text.trim());
            stdout.push('\n');
        } else if let Some(n) = part.strip_prefix("exit") {
            code = n.trim().parse().unwrap_or(1);
            break;
        } else if !part.is_empty() {
            stdout.push_str(&format!("(simulated) {part}\n"));
        }
    }
    json!({"stdout": stdout, "stderr": "", "exit_code": code, "duration_ms": 1, "changed": true})
}

impl Upstream {
    /// What agent `a` answers for `job` (Go-cased where upstream is).
    fn data(&self, job: &Job, a: &Agent) -> Value {
        match job.op.as_str() {
            "node.hostname.get" => json!({"hostname": a.hostname, "labels": a.labels}),
            "node.memory.get" => {
                json!({"Total": 8_000_000_000u64, "Available": 6_000_000_000u64, "Free": 1_000_000_000u64, "Cached": 2_000_000_000u64})
            }
            "node.load.get" => json!({"Load1": 0.25, "Load5": 0.2, "Load15": 0.1}),
            "node.uptime.get" => json!({"uptime_seconds": 3600, "uptime": "1h0m0s"}),
            "node.os.get" => json!({"Distribution": "debian", "Version": "12"}),
            "node.disk.get" => {
                json!({"disks": [{"Name": "/", "Total": 100_000_000_000u64, "Used": 40_000_000_000u64, "Free": 60_000_000_000u64}]})
            }
            "node.status.get" => json!({"hostname": a.hostname, "uptime_seconds": 3600}),
            "network.dns.get" => {
                json!({"DNSServers": ["10.0.0.53"], "SearchDomains": ["corp.example"]})
            }
            "network.dns.update" => json!({"Success": true, "changed": true}),
            "network.ping.do" => json!({"PacketsSent": 3, "PacketsReceived": 3, "PacketLoss": 0.0}),
            "command.exec.execute" => command(&job.data, false),
            "command.shell.execute" => command(&job.data, true),
            "file.deploy.execute" => {
                let name = job.data["object_name"].as_str().unwrap_or_default();
                let path = job.data["path"].as_str().unwrap_or_default().to_string();
                let sha = self
                    .files
                    .lock()
                    .unwrap()
                    .get(name)
                    .map(|o| o.sha256.clone())
                    .unwrap_or_default();
                let previous = self
                    .deployed
                    .lock()
                    .unwrap()
                    .insert((a.hostname.to_string(), path.clone()), sha.clone());
                json!({"changed": previous.as_deref() != Some(sha.as_str()), "sha256": sha, "path": path})
            }
            "file.status.get" => {
                let path = job.data["path"].as_str().unwrap_or_default().to_string();
                match self
                    .deployed
                    .lock()
                    .unwrap()
                    .get(&(a.hostname.to_string(), path.clone()))
                {
                    Some(sha) => json!({"path": path, "status": "in-sync", "sha256": sha}),
                    None => json!({"path": path, "status": "missing"}),
                }
            }
            _ => json!({}),
        }
    }

    /// `GET /job/{id}` as upstream computes it (§4.4.4, §5.7).
    fn detail(&self, id: Uuid, job: &Job) -> Value {
        let now = Instant::now();
        let reached: Vec<&Agent> = self
            .agents
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
            let (state, event) = match a.fails {
                Some(e) => (json!({"status": "failed", "error": e}), "failed"),
                None => (json!({"status": "completed"}), "completed"),
            };
            states.insert(a.hostname.into(), state);
            timeline.push((
                end,
                json!({"event": event, "hostname": a.hostname, "message": "done"}),
            ));
            let response = match a.fails {
                Some(e) => json!({"status": "failed", "hostname": a.hostname, "error": e}),
                None => {
                    let data = self
                        .answers
                        .lock()
                        .unwrap()
                        .entry((id, a.hostname.to_string()))
                        .or_insert_with(|| self.data(job, a))
                        .clone();
                    json!({"status": "completed", "hostname": a.hostname, "data": data})
                }
            };
            let key = a.hostname.replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-',
                "_",
            );
            responses.insert(key, response);
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
        let stamp = |at: Instant| {
            let t = time::OffsetDateTime::now_utc() - (now - at);
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let mut body = json!({
            "id": id,
            "status": status,
            "created": stamp(job.created),
            "operation": {"type": job.op, "data": job.data},
            "agent_states": states,
            "timeline": timeline.iter().map(|(at, e)| {
                let mut e = e.clone();
                e["timestamp"] = json!(stamp(*at));
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

    fn agent_json(a: &Agent) -> Value {
        json!({
            "hostname": a.hostname,
            "status": "Ready",
            "labels": a.labels,
            "os_info": {"distribution": "debian", "version": "12"},
            "architecture": std::env::consts::ARCH,
            "cpu_count": 2,
            "state": "Ready",
        })
    }
}

/// Upstream's `valid_target` (spec §5.4): `_any`, `_all`, a label some
/// agent has (by value or dotted prefix), or exactly a registered hostname.
fn valid_target(agents: &[Agent], target: &str) -> bool {
    match target {
        "_any" | "_all" => true,
        t => match t
            .split_once(':')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        {
            Some((k, v)) => agents.iter().any(|a| {
                a.labels
                    .get(k)
                    .is_some_and(|x| x == v || x.starts_with(&format!("{v}.")))
            }),
            None => agents.iter().any(|a| a.hostname == t),
        },
    }
}

async fn create(State(s): State<Upstream>, Json(req): Json<Value>) -> Response {
    let target = req["target_hostname"].as_str().unwrap_or_default();
    if !valid_target(&s.agents, target) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "Key: '' Error:Field validation for '' failed on the 'valid_target' tag: target agent {target:?} not found"
            ),
        );
    }
    let id = Uuid::new_v4();
    let job = Job {
        created: Instant::now(),
        op: req["operation"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        data: req["operation"]["data"].clone(),
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
        Some(j) => Json(s.detail(id, j)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("job not found: {id}")),
    }
}

async fn delete_job(State(s): State<Upstream>, Path(id): Path<Uuid>) -> Response {
    match s.jobs.lock().unwrap().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, format!("job not found: {id}")),
    }
}

async fn agent_list(State(s): State<Upstream>) -> Json<Value> {
    let list: Vec<Value> = s.agents.iter().map(Upstream::agent_json).collect();
    Json(json!({"total": list.len(), "agents": list}))
}

async fn agent_get(State(s): State<Upstream>, Path(name): Path<String>) -> Response {
    match s.agents.iter().find(|a| a.hostname == name) {
        Some(a) => Json(Upstream::agent_json(a)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("agent not found: {name}")),
    }
}

/// `POST /file` (§4.5.1).
async fn upload(
    State(s): State<Upstream>,
    Query(query): Query<HashMap<String, String>>,
    mut form: Multipart,
) -> Response {
    let (mut name, mut content_type, mut bytes) = (String::new(), "raw".to_string(), Vec::new());
    while let Ok(Some(field)) = form.next_field().await {
        match field.name().unwrap_or_default() {
            "name" => name = field.text().await.unwrap_or_default(),
            "content_type" => content_type = field.text().await.unwrap_or_default(),
            "file" => bytes = field.bytes().await.unwrap_or_default().to_vec(),
            _ => {}
        }
    }
    if name.is_empty() || name.len() > 255 {
        return error(
            StatusCode::BAD_REQUEST,
            "name is required and must be 1-255 characters".into(),
        );
    }
    if bytes.is_empty() {
        return error(StatusCode::BAD_REQUEST, "file is required".into());
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let force = query.get("force").is_some_and(|f| f == "true");
    let mut files = s.files.lock().unwrap();
    let changed = match files.get(&name) {
        Some(o) if !force && o.sha256 == sha256 => false,
        Some(_) if !force => {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "file {name} already exists with different content; use force to overwrite"
                ),
            );
        }
        _ => true,
    };
    if changed {
        files.insert(
            name.clone(),
            Object {
                sha256: sha256.clone(),
                size: bytes.len(),
                content_type: content_type.clone(),
            },
        );
    }
    (
        StatusCode::CREATED,
        Json(json!({"name": name, "sha256": sha256, "size": bytes.len(), "changed": changed, "content_type": content_type})),
    )
        .into_response()
}

async fn file_get(State(s): State<Upstream>, Path(name): Path<String>) -> Response {
    match s.files.lock().unwrap().get(&name) {
        Some(o) => Json(json!({"name": name, "sha256": o.sha256, "size": o.size, "content_type": o.content_type})).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("file not found: {name}")),
    }
}

/// Starts the stand-in on a loopback port; its address.
pub async fn start(agents: Vec<Agent>) -> SocketAddr {
    let state = Upstream {
        agents: Arc::new(agents),
        jobs: Arc::default(),
        files: Arc::default(),
        deployed: Arc::default(),
        answers: Arc::default(),
    };
    let app = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/job", post(create))
        .route("/job/{id}", get(job).delete(delete_job))
        .route("/agent", get(agent_list))
        .route("/agent/{hostname}", get(agent_get))
        .route("/file", post(upload))
        .route("/file/{name}", get(file_get))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}
