//! Operating a fleet: Prometheus metrics of controllers and agents, JSON
//! logs that name the job on every process, spans on standard output,
//! SIGHUP reloading an agent's labels while it works, and processes that
//! stop gracefully on SIGTERM.

use std::time::{Duration, Instant};

use osapi_api::job::JobStatus;
use serde_json::json;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fleet::{AgentSpec, Cluster, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// The value of the sample `name` (with its labels, as printed) in a
/// Prometheus text page; 0 when absent.
pub(crate) fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the sample `name` of the page at `url` reaches `at_least`.
pub(crate) async fn wait_for_sample(url: &str, name: &str, at_least: f64, what: &str) {
    wait_for(WAIT, what, || async move {
        sample(&scrape(url, None).await.1, name) >= at_least
    })
    .await;
}

pub(crate) async fn scrape(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// Waits for the job to end, and checks it failed with an error saying `why`.
async fn ends_failed(client: &osapi_client::Client, id: uuid::Uuid, why: &str) {
    let d = client.wait_job(id, WAIT).await.unwrap();
    assert_eq!(d.status(), JobStatus::Failed, "{d:?}");
    assert!(
        d.error.as_deref().unwrap_or_default().contains(why),
        "{d:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_controller_and_agent_move_with_the_work() {
    let (c, _, agent_metrics) = Cluster::with_metered_agent("m1").await;
    let metrics = format!("{}/metrics", c.url(0));

    // No token needed (as upstream); the fleet is visible.
    let (status, before) = scrape(&metrics, None).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(
        sample(&before, "osapi_agents{state=\"ready\"}"),
        1.0,
        "{before}"
    );
    let (_, agent_before) = scrape(&agent_metrics, None).await;

    // One command job, one refused token, one missing token.
    let client = c.client(0);
    let job = client
        .submit("command.exec.execute", json!({"command": "true"}), "m1")
        .await
        .unwrap();
    let done = client.wait_job(job.job_id, WAIT).await.unwrap();
    assert_eq!(done.status(), JobStatus::Completed);
    let jobs = format!("{}/job", c.url(0));
    assert_eq!(scrape(&jobs, Some("not-a-token")).await.0, 401);
    assert_eq!(scrape(&jobs, None).await.0, 401);
    // A token without the permission: forbidden.
    let reader = c.token_for("reader", "read", "");
    let refused = reqwest::Client::new()
        .post(&jobs)
        .bearer_auth(&reader)
        .json(&osapi_api::job::CreateJobRequest::new(
            "command.exec.execute",
            json!({"command": "true"}),
            "m1",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // Made-up methods do not each become a series.
    for i in 0..3 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let resp = reqwest::Client::new()
            .request(method, &jobs)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405);
    }

    let created =
        "osapi_jobs_created_total{operation=\"command.exec.execute\",target_kind=\"host\"}";
    let finished = "osapi_jobs_finished_total{operation=\"command.exec.execute\",target_kind=\"host\",status=\"completed\"}";
    // The job's end reaches the index through the change feed.
    wait_for_sample(
        &metrics,
        finished,
        1.0,
        "the finished job in the controller's metrics",
    )
    .await;
    let page = scrape(&metrics, None).await.1;
    assert_eq!(
        sample(&page, created) - sample(&before, created),
        1.0,
        "{page}"
    );
    assert!(
        sample(
            &page,
            "osapi_job_first_answer_seconds_count{operation=\"command.exec.execute\"}"
        ) >= 1.0
    );
    assert!(
        sample(
            &page,
            "osapi_job_duration_seconds_count{operation=\"command.exec.execute\"}"
        ) >= 1.0
    );
    assert_eq!(
        sample(&page, "osapi_auth_failures_total{reason=\"invalid_token\"}"),
        1.0,
        "{page}"
    );
    assert_eq!(
        sample(&page, "osapi_auth_failures_total{reason=\"missing_token\"}"),
        1.0,
        "{page}"
    );
    assert_eq!(
        sample(&page, "osapi_auth_failures_total{reason=\"forbidden\"}"),
        1.0,
        "{page}"
    );
    assert!(
        sample(
            &page,
            "osapi_http_requests_total{method=\"POST\",route=\"/job\",status=\"201\"}"
        ) >= 1.0,
        "requests are counted by route template: {page}"
    );
    assert!(!page.contains("BREW"), "{page}");
    assert!(
        sample(
            &page,
            "osapi_http_requests_total{method=\"other\",route=\"/job\",status=\"405\"}"
        ) >= 3.0,
        "{page}"
    );
    assert!(
        !page.contains(&job.job_id.to_string()),
        "no label holds a job id (unbounded): {page}"
    );
    assert!(page.contains("# TYPE osapi_http_request_duration_seconds histogram"));

    let (_, agent_page) = scrape(&agent_metrics, None).await;
    let ran = "osapi_agent_jobs_total{operation=\"command.exec.execute\",outcome=\"completed\"}";
    assert_eq!(
        sample(&agent_page, ran) - sample(&agent_before, ran),
        1.0,
        "{agent_page}"
    );
    assert_eq!(sample(&agent_page, "osapi_agent_jobs_running"), 0.0);
    let age = sample(&agent_page, "osapi_agent_heartbeat_age_seconds");
    assert!(
        (0.0..10.0).contains(&age),
        "heartbeat age {age}: {agent_page}"
    );
    // Anything but /metrics is not served there.
    assert_eq!(
        scrape(&agent_metrics.replace("/metrics", "/"), None)
            .await
            .0,
        404
    );

    // A job nobody reads still ends at its deadline, and is counted so.
    client.drain("m1").await.unwrap();
    wait_for_sample(
        &metrics,
        "osapi_agents{state=\"cordoned\"}",
        1.0,
        "the drained agent (idle: cordoned at once) counted so",
    )
    .await;
    let mut request = osapi_api::job::CreateJobRequest::new("node.hostname.get", json!({}), "m1");
    request.timeout = Some("2s".into());
    client.create_job(&request).await.unwrap();
    let failed = "osapi_jobs_finished_total{operation=\"node.hostname.get\",target_kind=\"host\",status=\"failed\"}";
    wait_for_sample(
        &metrics,
        failed,
        1.0,
        "the unread job to end at its deadline",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token_and_a_bad_listen_address_stops_the_agent() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.file_extra = "telemetry:\n  metrics: {path: /prometheus, auth: true}\n".into();
    c.add_controller().await;
    let metrics = format!("{}/prometheus", c.url(0));
    assert_eq!(scrape(&metrics, None).await.0, 401);
    let reader = c.token_for("reader", "read", "");
    let (status, page) = scrape(&metrics, Some(&reader)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("osapi_build_info"));
    let no_health = c.token_for("jobs", "read", "job:read");
    assert_eq!(scrape(&metrics, Some(&no_health)).await.0, 403);
    // The default path is not served when another is configured.
    assert_eq!(scrape(&format!("{}/metrics", c.url(0)), None).await.0, 404);

    // An agent whose metrics address cannot be used does not start.
    let mut spec = AgentSpec::new("m2");
    spec.extra = "  metrics: {listen: not-an-address}\n".into();
    let config = c.config("m2", 0, Some(&spec));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_osapi-agent"))
        .arg("-f")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.metrics.listen"), "{err}");
}

/// Every line of `log` that mentions `needle`, parsed; panics on a line
/// that is not JSON.
fn json_lines_with(log: &str, needle: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
        })
        .filter(|v| v.to_string().contains(needle))
        .collect()
}

/// The span lines of a process's standard output (it also prints a line
/// saying it started).
fn spans(out: &str) -> String {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_and_spans_name_the_job_on_every_process() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    // At the default level (info): a job's lines are not debug output.
    // The controller is asked for JSON by its flag, the agent by the
    // environment.
    c.env = vec![("OSAPI_LOG".into(), "info".into())];
    c.osapi_args = vec!["--log-format".into(), "json".into()];
    c.file_extra = "telemetry:\n  tracing: {exporter: stdout}\n".into();
    c.add_controller().await;
    c.env.push(("OSAPI_LOG_FORMAT".into(), "json".into()));
    c.add_agents(&[AgentSpec::new("j1")]).await;
    let client = c.client(0);
    let job = client
        .submit("command.exec.execute", json!({"command": "true"}), "j1")
        .await
        .unwrap();
    client.wait_job(job.job_id, WAIT).await.unwrap();
    let id = job.job_id.to_string();

    // Logs: JSON lines; the job's id is on the controller's and the agent's.
    let controller = json_lines_with(&c.log(&c.controller_name(0)), &id);
    assert!(
        controller
            .iter()
            .any(|l| l["fields"]["message"] == "job created"),
        "{controller:?}"
    );
    let mut agent = Vec::new();
    wait_for(WAIT, "the agent's log line of the job", || {
        agent = json_lines_with(&c.log("j1"), &id);
        let found = agent
            .iter()
            .any(|l| l["fields"]["message"] == "job finished");
        async move { found }
    })
    .await;
    let finished = agent
        .iter()
        .find(|l| l["fields"]["message"] == "job finished")
        .unwrap();
    assert_eq!(finished["span"]["job_id"], id.as_str(), "{finished}");
    assert_eq!(finished["span"]["operation"], "command.exec.execute");
    assert_eq!(finished["span"]["host"], "j1");

    // Spans on standard output: the agent's job span and the controller's
    // request span that created the job.
    let mut span = None;
    wait_for(WAIT, "the agent's job span on stdout", || {
        span = json_lines_with(&spans(&c.out("j1")), &id)
            .into_iter()
            .find(|l| l["span"]["name"] == "job");
        let found = span.is_some();
        async move { found }
    })
    .await;
    let span = span.unwrap();
    assert_eq!(span["fields"]["message"], "close", "{span}");
    assert_eq!(span["span"]["target"], "j1");
    let requests = json_lines_with(&spans(&c.out(&c.controller_name(0))), &id);
    assert!(
        requests.iter().any(|l| l["span"]["name"] == "request"
            && l["span"]["route"] == "/job"
            && l["span"]["operation"] == "command.exec.execute"
            && l["span"]["target"] == "j1"),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_labels_and_facts_while_a_job_runs() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    let spec = AgentSpec::new("h1").label("role", "web").fact("rack", "r1");
    c.add_agents(std::slice::from_ref(&spec)).await;
    let client = c.client(0);
    let running = client
        .submit(
            "command.exec.execute",
            json!({"command": "sleep", "args": ["3"]}),
            "h1",
        )
        .await
        .unwrap();

    // A bad file: reported, nothing changes.
    let config = c.dir.path().join("h1.yaml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("role: \"web\"", "role: \"no good\"")).unwrap();
    let pid = nix::unistd::Pid::from_raw(c.agents["h1"].child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for(WAIT, "the refused reload in the agent's log", || {
        let logged = c.log("h1").contains("not reloaded");
        async move { logged }
    })
    .await;
    let agent = client.agent("h1").await.unwrap();
    assert_eq!(agent.labels.get("role").map(String::as_str), Some("web"));

    // A good one: labels and facts change while the job runs on.
    let changed = spec.clone().label("role", "db").fact("rack", "r2");
    c.config("h1", 0, Some(&changed));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for(WAIT, "the new label in the agent list", || {
        let client = client.clone();
        async move {
            client.agent("h1").await.is_ok_and(|a| {
                a.labels.get("role").map(String::as_str) == Some("db")
                    && a.facts.get("rack") == Some(&json!("r2"))
            })
        }
    })
    .await;
    let done = client.wait_job(running.job_id, WAIT).await.unwrap();
    assert_eq!(done.status(), JobStatus::Completed, "{done:?}");
    // Jobs by the new label reach it.
    let by_label = client
        .submit("node.hostname.get", json!({}), "role:db")
        .await
        .unwrap();
    let d = client.wait_job(by_label.job_id, WAIT).await.unwrap();
    assert_eq!(d.status(), JobStatus::Completed, "{d:?}");
    assert!(
        c.agents
            .get_mut("h1")
            .unwrap()
            .child
            .try_wait()
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_long_polls_and_lets_running_jobs_finish() {
    // A registry TTL (2 s) shorter than the agent's grace (4 s): it must go
    // on heartbeating while its jobs finish, or they would read as lost.
    let mut c = Cluster::start(Duration::from_secs(2)).await;
    c.add_controller().await;
    let (mut spec, agent_metrics) = AgentSpec::new("g1").serving_metrics();
    // Two slots: the third job of the agent's own waits for one.
    spec.extra.push_str("  shutdown_grace: 4s\n  max_jobs: 2\n");
    c.add_agents(&[spec]).await;
    let client = c.client(0);
    let long = client
        .submit(
            "command.exec.execute",
            json!({"command": "sleep", "args": ["30"]}),
            "g1",
        )
        .await
        .unwrap();
    let url = c.url(0);
    let token = c.token();
    let poll = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .get(format!("{url}/job/{}?wait=60s", long.job_id))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<serde_json::Value>().await.unwrap())
    });
    let node_url = format!("{}/node/g1/command/exec", c.url(0));
    let token = c.token();
    let sync = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(node_url)
            .bearer_auth(token)
            .json(&json!({"command": "sleep", "args": ["30"]}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    });
    // Both requests are waiting.
    let url = format!("{}/metrics", c.url(0));
    wait_for_sample(
        &url,
        "osapi_long_poll_waiters",
        2.0,
        "two long-polls on the controller",
    )
    .await;

    // An ordinary request in flight: its headers and half its body are
    // sent before the signal, the rest after the controller began to stop.
    let body = serde_json::to_vec(&osapi_api::job::CreateJobRequest::new(
        "node.hostname.get",
        json!({}),
        "g1",
    ))
    .unwrap();
    let mut upload = tokio::net::TcpStream::connect(("127.0.0.1", c.controllers[0].0))
        .await
        .unwrap();
    let head = format!(
        "POST /job HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\
         expect: 100-continue\r\n\r\n",
        c.token(),
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    upload.write_all(head.as_bytes()).await.unwrap();
    // The controller accepted the connection and its handler reads the
    // body (it asks for it): the request is in flight.
    let mut interim = [0u8; 25];
    upload.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim[..], b"HTTP/1.1 100 Continue\r\n\r\n");
    upload.write_all(first).await.unwrap();

    let (_, controller) = &mut c.controllers[0];
    let pid = nix::unistd::Pid::from_raw(controller.child.id() as i32);
    let asked = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let (status, job) = poll.await.unwrap();
    assert_eq!(status, 200);
    // Stopping now (the long-poll was answered): the half-sent request
    // still finishes.
    upload.write_all(rest).await.unwrap();
    let mut answer = Vec::new();
    upload.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "the request in flight finished: {answer}"
    );
    assert!(
        ["submitted", "processing"].contains(&job["status"].as_str().unwrap_or_default()),
        "the job as it stands: {job}"
    );
    let (status, body) = sync.await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("shutting down") && body.contains("GET /job/"),
        "{body}"
    );
    let sync_job: uuid::Uuid = body
        .split("job ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no job id in {body}"));
    let exit = tokio::task::spawn_blocking(move || {
        let (_, mut controller) = c.controllers.remove(0);
        let status = controller.child.wait().unwrap();
        (status, c)
    })
    .await
    .unwrap();
    let (status, mut c) = exit;
    assert!(status.success(), "controller exit {status}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        asked.elapsed()
    );

    // An agent stopped while jobs run lets them finish within its grace
    // period (4 s here, past the TTL), and stops and reports the others.
    c.add_controller().await;
    let client = c.client(0);
    // The jobs of the requests answered early go on; not waited for here.
    for id in [long.job_id, sync_job] {
        client.delete_job(id).await.unwrap();
    }
    let short = client
        .submit(
            "command.exec.execute",
            json!({"command": "sleep", "args": ["3"]}),
            "g1",
        )
        .await
        .unwrap();
    let pidfile = c.dir.path().join("stopped.pid");
    let stopped = client
        .submit(
            "command.shell.execute",
            json!({"command": format!("echo $$ > {}; exec sleep 60", pidfile.display())}),
            "g1",
        )
        .await
        .unwrap();
    wait_for_sample(
        &agent_metrics,
        "osapi_agent_jobs_running",
        2.0,
        "both jobs to start on the agent",
    )
    .await;
    // A third job is taken from the agent's queue and waits for a slot.
    let queued = client
        .submit(
            "command.exec.execute",
            json!({"command": "touch", "args": [c.dir.path().join("queued-ran").display().to_string()]}),
            "g1",
        )
        .await
        .unwrap();
    wait_for_sample(
        &agent_metrics,
        "osapi_agent_jobs_waiting",
        1.0,
        "the third job to wait for a slot",
    )
    .await;
    // Someone waits on the short job all along (a waiter settles a job
    // whose host's registration has expired as lost).
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.wait_job(short.job_id, WAIT).await })
    };
    let asked = Instant::now();
    let agent = c.agents.get_mut("g1").unwrap();
    tokio::task::block_in_place(|| agent.terminate());
    let took = asked.elapsed();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(9)).contains(&took),
        "the agent waited its grace period, then stopped: {took:?}"
    );
    let d = waiting.await.unwrap().unwrap();
    assert_eq!(d.status(), JobStatus::Completed, "{d:?}");
    ends_failed(
        &client,
        stopped.job_id,
        "the agent stopped before the job finished",
    )
    .await;
    // The waiting job is handed back at once, not left to its deadline,
    // and never runs.
    ends_failed(
        &client,
        queued.job_id,
        "the agent stopped before it could start the job",
    )
    .await;
    assert!(!c.dir.path().join("queued-ran").exists());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(),
        "the stopped command's process is gone"
    );
}

/// An agent upgraded over a host consumer an older version made (on disk,
/// where agents now make theirs in memory: a change nats-server refuses)
/// starts, keeps that consumer as it is and runs the host's jobs; a fresh
/// host's consumer is made in memory; a refusal with nothing to fall back on
/// is a startup error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_keeps_a_host_consumer_an_older_version_made() {
    use async_nats::jetstream::{self, consumer};
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    let admin = jetstream::new(c.nats.controller_client().await);
    let jobs = admin.get_stream("test-JOBS").await.unwrap();
    // A durable consumer on disk, as older versions made them.
    let made_on_disk = |name: &'static str, host: &'static str| {
        let jobs = jobs.clone();
        async move {
            let _: consumer::PullConsumer = jobs
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(name.into()),
                    filter_subject: format!("test.jobs.*.host.{host}"),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
    };
    made_on_disk("host_old", "old").await;
    c.add_agents(&[AgentSpec::new("old"), AgentSpec::new("new")])
        .await;
    let client = c.client(0);
    for host in ["old", "new"] {
        let job = client
            .run_job(
                &osapi_api::job::CreateJobRequest::new("node.hostname.get", json!({}), host),
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(job.status(), JobStatus::Completed, "{host}: {job:?}");
    }
    let storage = |name: &'static str| {
        let jobs = jobs.clone();
        async move {
            let mut c: consumer::PullConsumer = jobs.get_consumer(name).await.unwrap();
            c.info().await.unwrap().config.memory_storage
        }
    };
    assert!(
        !storage("host_old").await,
        "the older consumer is kept as it was"
    );
    assert!(storage("host_new").await, "a fresh one is made in memory");

    // A refusal with no consumer to fall back on stops the agent at start,
    // saying why: here another consumer already takes the host's jobs (a
    // work-queue stream lets only one consumer take a subject).
    made_on_disk("squatter", "taken").await;
    let (status, log) = c.failed_agent(&AgentSpec::new("taken")).await;
    assert!(!status.success(), "{log}");
    assert!(log.contains("open consumer host_taken"), "{log}");
    assert!(log.contains("then reading it"), "both reasons: {log}");
}

/// Two hosts named alike (a cloned image, an old agent still running): each
/// agent process warns once the other has written over its registration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_sharing_a_hostname_say_so() {
    let spec = AgentSpec::new("twin");
    let mut c = Cluster::with_agent(Duration::from_secs(3), &spec).await;
    c.add_namesake(&spec, "twin-clone");
    let warning = "another agent process registered under this hostname";
    wait_for(WAIT, "both processes to warn", || async {
        c.log("twin").contains(warning) && c.log("twin-clone").contains(warning)
    })
    .await;
    // Each names the other: (its instance, the other's) from its warning.
    let ids = |process: &str| {
        let log = c.log(process);
        let line = log
            .lines()
            .find(|l| l.contains(warning))
            .unwrap()
            .to_string();
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no {name} in {line}"))
        };
        (field("instance="), field("other_instance="))
    };
    let (twin, clone) = (ids("twin"), ids("twin-clone"));
    assert_eq!(twin.1, clone.0, "{twin:?} {clone:?}");
    assert_eq!(clone.1, twin.0, "{twin:?} {clone:?}");
    assert_ne!(twin.0, clone.0);
}

/// A process that stops removes its own registration, never the one a
/// namesake wrote after it; each write tells whose registration it replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_agent_leaves_a_namesakes_registration() {
    let template = AgentSpec::new("template");
    let mut c = Cluster::with_agent(Duration::from_secs(30), &template).await;
    let spec = AgentSpec::new("shared");
    c.nats
        .add_agent_users(&[(spec.name.clone(), crate::fleet::AgentCredentials::Password)])
        .await;
    // Two processes' buses, as two hosts named "shared" would open them.
    let (one, two) = (c.agent_bus(&spec).await, c.agent_bus(&spec).await);
    let written = c.agent_bus(&template).await.registry.get("template").await;
    let mut first = written.unwrap().unwrap();
    first.hostname = spec.name.clone();
    first.instance_id = uuid::Uuid::new_v4();
    let mut second = first.clone();
    second.instance_id = uuid::Uuid::new_v4();
    let (a, b) = (first.instance_id, second.instance_id);

    assert_eq!(one.registry.put(first.clone()).await.unwrap(), None);
    assert_eq!(one.registry.put(first.clone()).await.unwrap(), None);
    // A process's first write cannot tell (it may replace its own last run).
    assert_eq!(two.registry.put(second.clone()).await.unwrap(), None);
    assert_eq!(one.registry.put(first.clone()).await.unwrap(), Some(b));
    assert_eq!(two.registry.put(second.clone()).await.unwrap(), Some(a));
    let current = |bus: &osapi_bus::Bus| {
        let registry = bus.registry.clone();
        async move { registry.get("shared").await.unwrap().map(|r| r.instance_id) }
    };
    one.registry.remove("shared", a).await.unwrap();
    assert_eq!(current(&one).await, Some(b), "the namesake's stays");
    let listed = c.client(0).agent("shared").await.unwrap();
    assert_eq!(listed.hostname, "shared");
    two.registry.remove("shared", b).await.unwrap();
    assert_eq!(current(&one).await, None, "its own is removed");
    // Written again after its removal: nobody else's was replaced.
    assert_eq!(one.registry.put(first).await.unwrap(), None);
}

/// Under a server configuration written before agents could read their own
/// registration back, agents sharing a hostname cannot tell, say why once,
/// and keep heartbeating in time (the read back waits a tenth of the TTL,
/// not a whole request timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_right_to_read_back_heartbeats_keep_time() {
    let ttl = Duration::from_secs(3);
    let mut c = Cluster::start(ttl).await;
    c.nats
        .drop_lines("$JS.API.DIRECT.GET.KV_test-agent-registry")
        .await;
    c.add_controller().await;
    let (spec, metrics) = AgentSpec::new("twin").serving_metrics();
    let (clone, clone_metrics) = AgentSpec::new("twin").serving_metrics();
    c.add_agents(std::slice::from_ref(&spec)).await;
    c.add_namesake(&clone, "twin-clone");
    let cannot = "cannot read this agent's registration back";
    wait_for(WAIT, "both processes to say they cannot tell", || async {
        c.log("twin").contains(cannot) && c.log("twin-clone").contains(cannot)
    })
    .await;
    // Each process's own heartbeats go through in time, whatever the other
    // does: never a TTL without one.
    let until = Instant::now() + 3 * ttl;
    while Instant::now() < until {
        for page in [&metrics, &clone_metrics] {
            let age = sample(
                &scrape(page, None).await.1,
                "osapi_agent_heartbeat_age_seconds",
            );
            assert!(
                age < ttl.as_secs_f64(),
                "{page}: last heartbeat {age} s ago"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for process in ["twin", "twin-clone"] {
        assert_eq!(c.log(process).matches(cannot).count(), 1, "said once");
    }
}
