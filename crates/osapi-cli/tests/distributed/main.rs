//! Distributed mode end to end: a real nats-server, controller processes and
//! agent processes (`osapi api server start`, `osapi agent start`).
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

mod fleet;
mod lists;
mod operate;
mod pki;
mod security;
mod signing;
mod work;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use fleet::{AgentSpec, Cluster, wait_cordoned, wait_for};
use osapi_api::agent::AgentState;
use osapi_api::job::JobStatus;
use osapi_api::ops::ContentType;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn hosts(d: &osapi_api::job::JobDetail) -> Vec<String> {
    let mut h: Vec<String> = d
        .responses
        .as_ref()
        .map(|r| r.values().map(|v| v.hostname.clone()).collect())
        .unwrap_or_default();
    h.sort();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_agents_targets_and_any_runs_exactly_once() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    c.add_agents(&[
        AgentSpec::new("a1")
            .label("group", "web.dev.us-east")
            .label("role", "web"),
        AgentSpec::new("a2")
            .label("group", "web.prod")
            .label("role", "web"),
        AgentSpec::new("a3")
            .label("group", "db.prod")
            .label("role", "db"),
        AgentSpec::new("a4")
            .label("group", "db.dev")
            .label("role", "db"),
        AgentSpec::new("a5")
            .label("group", "cache.prod")
            .label("role", "cache"),
    ])
    .await;
    let client = c.client(0);
    let run = |target: &'static str| {
        let client = client.clone();
        async move {
            let j = client
                .submit("node.hostname.get", json!({}), target)
                .await
                .unwrap();
            client.wait_job(j.job_id, WAIT).await.unwrap()
        }
    };
    let d = run("_all").await;
    assert_eq!(d.status(), JobStatus::Completed);
    assert_eq!(hosts(&d), ["a1", "a2", "a3", "a4", "a5"]);
    assert_eq!(hosts(&run("group:web").await), ["a1", "a2"]);
    assert_eq!(hosts(&run("group:web.dev").await), ["a1"]);
    assert_eq!(hosts(&run("group:db").await), ["a3", "a4"]);
    assert_eq!(hosts(&run("role:cache").await), ["a5"]);
    let one = run("a4").await;
    assert_eq!(one.hostname.as_deref(), Some("a4"));
    assert!(one.result.is_some());

    // 1 000 _any jobs, 32 at a time: each runs on exactly one agent.
    let ids: Vec<uuid::Uuid> = futures::future::join_all((0..1000).map(|_| {
        let client = client.clone();
        async move {
            client
                .submit("node.hostname.get", json!({}), "_any")
                .await
                .unwrap()
                .job_id
        }
    }))
    .await;
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    let details: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(futures::StreamExt::buffer_unordered(
            futures::stream::iter(ids.iter().map(|id| {
                let client = client.clone();
                let id = *id;
                async move { client.wait_job(id, WAIT).await.unwrap() }
            })),
            32,
        ))
        .await;
    for d in &details {
        assert_eq!(d.status(), JobStatus::Completed, "{d:?}");
        let states = d.agent_states.as_ref().unwrap();
        assert_eq!(states.len(), 1, "one agent per _any job: {states:?}");
        *per_agent
            .entry(states.keys().next().unwrap().clone())
            .or_default() += 1;
    }
    assert_eq!(per_agent.values().sum::<usize>(), 1000, "{per_agent:?}");
    assert!(
        per_agent.len() >= 2,
        "the shared queue spreads work: {per_agent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agent_is_lost_within_the_ttl() {
    let ttl = Duration::from_secs(2);
    let mut c = Cluster::start(ttl).await;
    c.add_controller().await;
    c.add_agents(&[AgentSpec::new("stays"), AgentSpec::new("dies")])
        .await;
    let client = c.client(0);
    let job = client
        .submit(
            "command.shell.execute",
            json!({"command": "sleep 3"}),
            "_all",
        )
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "both agents to start the job",
        || {
            let client = client.clone();
            async move {
                client.job(job.job_id).await.is_ok_and(|d| {
                    d.agent_states
                        .is_some_and(|s| s.values().filter(|a| a.status == "started").count() == 2)
                })
            }
        },
    )
    .await;
    let killed = Instant::now();
    c.agents.get_mut("dies").unwrap().kill(); // SIGKILL
    let d = client.wait_job(job.job_id, WAIT).await.unwrap();
    let noticed = killed.elapsed();
    assert_eq!(d.status(), JobStatus::PartialFailure, "{d:?}");
    let r = d.responses.unwrap();
    assert_eq!(r["stays"].status, "completed");
    assert_eq!(r["dies"].status, "failed");
    assert!(
        r["dies"].error.as_deref().unwrap().contains("lost"),
        "{:?}",
        r["dies"]
    );
    assert_eq!(d.agent_states.unwrap()["dies"].status, "lost");
    assert!(
        noticed <= ttl + Duration::from_secs(3),
        "lost noticed after {noticed:?}"
    );
    // The controller counts it: a host lost on a job, an agent lost.
    let metrics = format!("{}/metrics", c.url(0));
    operate::wait_for_sample(
        &metrics,
        "osapi_agents{state=\"lost\"}",
        1.0,
        "the lost agent",
    )
    .await;
    let page = operate::scrape(&metrics, None).await.1;
    assert_eq!(
        operate::sample(&page, "osapi_hosts_lost_total"),
        1.0,
        "{page}"
    );
    assert_eq!(
        operate::sample(&page, "osapi_agents{state=\"ready\"}"),
        1.0,
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_are_stateless_and_restarts_lose_nothing() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    c.add_controller().await;
    c.add_agents(&[AgentSpec::new("w1"), AgentSpec::new("w2")])
        .await;
    let (a, b) = (c.client(0), c.client(1));
    // Created on one, awaited on the other; the wait wakes on either.
    let job = a
        .submit(
            "command.shell.execute",
            json!({"command": "sleep 0.5; echo done"}),
            "_any",
        )
        .await
        .unwrap();
    let d = b.wait_job(job.job_id, WAIT).await.unwrap();
    assert_eq!(d.status(), JobStatus::Completed);
    assert_eq!(d.result.unwrap()["stdout"], "done\n");

    // Restart controller 0 while jobs run: nothing is lost, waits resume.
    let jobs: Vec<_> = futures::future::join_all((0..10).map(|i| {
        let a = a.clone();
        async move {
            a.submit(
                "command.shell.execute",
                json!({"command": format!("sleep 1; echo {i}")}),
                "_all",
            )
            .await
            .unwrap()
            .job_id
        }
    }))
    .await;
    let port = c.controllers[0].0;
    let waits = futures::future::join_all(jobs.iter().map(|id| {
        let a = a.clone();
        let id = *id;
        async move { a.wait_job(id, WAIT).await }
    }));
    let restart = async {
        c.controllers[0].1.kill();
        c.start_controller_on(port).await;
    };
    let (results, ()) = tokio::join!(waits, restart);
    for r in results {
        let d = r.expect("the wait resumed after the restart");
        assert_eq!(d.status(), JobStatus::Completed, "{d:?}");
        assert_eq!(d.responses.unwrap().len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_is_survived() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    c.add_agents(&[AgentSpec::new("n1"), AgentSpec::new("n2")])
        .await;
    let client = c.client(0);
    // Acknowledged before the outage (201), run after it.
    c.nats.stop();
    wait_for(
        Duration::from_secs(20),
        "the controller to report not ready",
        || {
            let client = client.clone();
            async move { client.ready().await.is_ok_and(|r| r.status == "not_ready") }
        },
    )
    .await;
    let err = client
        .submit("node.hostname.get", json!({}), "_any")
        .await
        .unwrap_err();
    assert!(err.status().is_some_and(|s| s >= 500), "{err}");
    c.nats.run().await;
    wait_for(
        Duration::from_secs(30),
        "the controller to be ready again",
        || {
            let client = client.clone();
            async move { client.ready().await.is_ok_and(|r| r.status == "ready") }
        },
    )
    .await;
    // Agents reconnect and take new work (addressed to each one).
    for host in ["n1", "n2", "_all"] {
        let job = loop {
            match client.submit("node.hostname.get", json!({}), host).await {
                Ok(j) => break j,
                // Until the agents re-register after the outage, they are unknown targets.
                Err(e) if e.status() == Some(400) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        let d = client.wait_job(job.job_id, WAIT).await.unwrap();
        assert_eq!(
            d.status(),
            JobStatus::Completed,
            "{host}: {d:?}\n{}",
            c.log("n1")
        );
    }
    let created_before = client.jobs(None, 0, 0).await.unwrap();
    assert!(
        created_before.total_items >= 3,
        "job records survived: {}",
        created_before.total_items
    );
    // The controller counted the outage: the failed submission's bus call
    // and the reconnection.
    let page = operate::scrape(&format!("{}/metrics", c.url(0)), None)
        .await
        .1;
    assert!(
        operate::sample(&page, "osapi_bus_errors_total") >= 1.0,
        "{page}"
    );
    assert!(
        operate::sample(&page, "osapi_bus_reconnects_total") >= 1.0,
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_across_controllers_and_agents() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    c.add_controller().await;
    c.add_agents(&[
        AgentSpec::new("f1"),
        AgentSpec::new("f2"),
        AgentSpec::new("f3"),
    ])
    .await;
    let (a, b) = (c.client(0), c.client(1));
    let up = a
        .upload_file(
            "app.conf",
            ContentType::Template,
            &b"host={{ .Hostname }}\n"[..],
            false,
        )
        .await
        .unwrap();
    assert!(up.changed);
    assert_eq!(
        b.file("app.conf").await.unwrap().sha256,
        up.sha256,
        "visible through the other controller"
    );
    let path = format!("{}/@fact.hostname.conf", c.dir.path().display());
    for host in ["f1", "f2"] {
        let job = b
            .submit(
                "file.deploy.execute",
                json!({"object_name": "app.conf", "path": path, "content_type": "template"}),
                host,
            )
            .await
            .unwrap();
        let d = b.wait_job(job.job_id, WAIT).await.unwrap();
        assert_eq!(d.status(), JobStatus::Completed, "{d:?}");
        let text = std::fs::read_to_string(c.dir.path().join(format!("{host}.conf"))).unwrap();
        assert_eq!(text, format!("host={host}\n"));
    }
    for (host, want) in [("f1", "in-sync"), ("f2", "in-sync"), ("f3", "missing")] {
        let r = a
            .node_file_status(host, &path.replace("@fact.hostname", host))
            .await
            .unwrap();
        assert_eq!(r.status, want, "{host}");
    }

    // An object of several chunks arrives whole, and a replaced one as replaced.
    let big_path = c.dir.path().join("big.bin");
    for seed in [7u32, 11] {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * seed % 251) as u8).collect();
        a.upload_file("big.bin", ContentType::Raw, big.clone(), true)
            .await
            .unwrap();
        let job = b
            .submit(
                "file.deploy.execute",
                json!({"object_name": "big.bin", "path": big_path, "content_type": "raw"}),
                "f3",
            )
            .await
            .unwrap();
        let d = b.wait_job(job.job_id, WAIT).await.unwrap();
        assert_eq!(d.status(), JobStatus::Completed, "{d:?}");
        assert!(
            std::fs::read(&big_path).unwrap() == big,
            "content of seed {seed}"
        );
    }
}

/// A deploy deploys the version of its object it was queued with, or
/// nothing: an agent that holds that version (it deployed it before) uses
/// it although the object was replaced meanwhile; one that does not finds
/// the object replaced and fails the job, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_are_of_the_version_queued() {
    let spec = AgentSpec::new("v1");
    let c = Cluster::with_agent(Duration::from_secs(10), &spec).await;
    let client = c.client(0);
    let path = |name: &str| c.dir.path().join(name);
    let deploy = |object: &str, to: &str| {
        let client = client.clone();
        let data = json!({"object_name": object, "path": path(to), "content_type": "raw"});
        async move {
            client
                .submit("file.deploy.execute", data, "v1")
                .await
                .unwrap()
                .job_id
        }
    };
    let upload = |object: &'static str, content: &'static [u8]| {
        let client = client.clone();
        async move {
            client
                .upload_file(object, ContentType::Raw, content, true)
                .await
                .unwrap()
        }
    };
    upload("motd", b"first\n").await;
    let done = client
        .wait_job(deploy("motd", "a").await, WAIT)
        .await
        .unwrap();
    assert_eq!(done.status(), JobStatus::Completed, "{done:?}");

    // Queued while the agent is drained; each object replaced afterwards.
    upload("other", b"one\n").await;
    client.drain("v1").await.unwrap();
    wait_cordoned(&client, "v1", WAIT).await;
    let held = deploy("motd", "b").await;
    let unread = deploy("other", "c").await;
    let second_sha = upload("motd", b"second\n").await.sha256;
    upload("other", b"two\n").await;
    let current = deploy("motd", "d").await;
    client.undrain("v1").await.unwrap();

    let held = client.wait_job(held, WAIT).await.unwrap();
    assert_eq!(held.status(), JobStatus::Completed, "{held:?}");
    assert_eq!(std::fs::read(path("b")).unwrap(), b"first\n");
    let unread = client.wait_job(unread, WAIT).await.unwrap();
    assert_eq!(unread.status(), JobStatus::Failed, "{unread:?}");
    let error = unread.error.unwrap_or_default();
    assert!(
        error.contains("was replaced after this job was queued"),
        "{error}"
    );
    assert!(!path("c").exists(), "a replaced object was deployed");
    let current = client.wait_job(current, WAIT).await.unwrap();
    assert_eq!(current.status(), JobStatus::Completed, "{current:?}");
    assert_eq!(std::fs::read(path("d")).unwrap(), b"second\n");
    let pinned = current.operation.unwrap_or_default()["data"]["object_sha256"].clone();
    assert_eq!(
        pinned,
        json!(second_sha),
        "the job records the version it deploys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drained_agent_process_finishes_work_and_takes_no_more() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    c.add_agents(&[AgentSpec::new("busy"), AgentSpec::new("free")])
        .await;
    let client = c.client(0);
    let long = client
        .submit(
            "command.shell.execute",
            json!({"command": "sleep 1"}),
            "busy",
        )
        .await
        .unwrap();
    wait_for(Duration::from_secs(20), "the job to start", || {
        let client = client.clone();
        async move {
            client.job(long.job_id).await.is_ok_and(|d| {
                d.agent_states
                    .is_some_and(|s| s.get("busy").is_some_and(|a| a.status == "started"))
            })
        }
    })
    .await;
    client.drain("busy").await.unwrap();
    assert_eq!(
        client.agent("busy").await.unwrap().state,
        Some(AgentState::Draining)
    );
    let all = client
        .submit("node.hostname.get", json!({}), "_all")
        .await
        .unwrap();
    assert_eq!(all.expected_hosts, ["free"]);
    let queued = client
        .submit("node.hostname.get", json!({}), "busy")
        .await
        .unwrap();
    assert_eq!(
        client.wait_job(long.job_id, WAIT).await.unwrap().status(),
        JobStatus::Completed
    );
    wait_cordoned(&client, "busy", Duration::from_secs(20)).await;
    let waiting = client
        .job_wait(queued.job_id, Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(
        waiting.status(),
        JobStatus::Submitted,
        "a drained agent takes no work"
    );
    client.undrain("busy").await.unwrap();
    let done = client.wait_job(queued.job_id, WAIT).await.unwrap();
    assert_eq!(
        done.status(),
        JobStatus::Completed,
        "queued work runs after undrain"
    );
    // A clean stop (SIGTERM) deregisters at once.
    c.agents.get_mut("free").unwrap().terminate();
    let names: Vec<String> = client
        .agents()
        .await
        .unwrap()
        .agents
        .into_iter()
        .map(|a| a.hostname)
        .collect();
    assert_eq!(names, ["busy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrator_examples_run_unchanged_against_nats() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    c.add_agents(&[
        AgentSpec::new("web-01")
            .label("role", "web")
            .label("env", "prod")
            .fact("env", "prod"),
        AgentSpec::new("web-02")
            .label("role", "web")
            .label("env", "staging")
            .fact("env", "staging"),
        AgentSpec::new("db-01")
            .label("role", "db")
            .label("env", "prod")
            .fact("env", "prod"),
    ])
    .await;
    let examples = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    let deploy_dir = tempfile::tempdir().unwrap();
    for (name, expect) in [
        ("basic", "Complete: 2 steps, 2 unchanged"),
        ("parallel", "Complete: 6 steps, 6 unchanged"),
        ("broadcast", "[web-02] ok"),
        ("error-recovery", "[failed]    deploy"),
        ("file-deploy", "status: in-sync"),
        ("label-filter", "Found 1 prod web agents"),
        // Batches of agent processes, stopped by a failing gate.
        (
            "rolling-update",
            "  run 2 web-01  Skipped: rollout stopped after batch 1 of 2: gate failed",
        ),
        // Check mode on agent processes: predictions with diffs.
        ("check-mode", "    +workers: 8\n"),
        // A run resumed from its journal: only web-02 runs again.
        ("resume", "  install on web-02  Changed in run 2"),
        // Conditions checked by agent processes: web-01's work was done.
        (
            "creates-unless",
            "  install  web-01  Ok changed=false (skipped: creates: ",
        ),
    ] {
        let bin = examples.join(name);
        assert!(
            bin.exists(),
            "{} missing: run the tests with `cargo test --workspace` (it builds the examples)",
            bin.display()
        );
        let out = Command::new(&bin)
            .env("OSAPI_URL", c.url(0))
            .env("OSAPI_TOKEN", c.token())
            .env("OSAPI_DEPLOY_DIR", deploy_dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("Using the controller at {}", c.url(0))),
            "{name}: {stdout}"
        );
        assert!(
            stdout.contains(expect),
            "{name} should print {expect:?}:\n{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_follows_a_short_registry_ttl() {
    // No agent.heartbeat_interval: the agent beats every TTL/3, so it stays
    // registered (a 10 s default would let a 3 s TTL expire between beats).
    let ttl = Duration::from_secs(3);
    let mut c = Cluster::start(ttl).await;
    c.add_controller().await;
    // "unaware"'s own file says the TTL is 30 s: the controllers' bucket
    // (3 s) is what counts.
    let long = Duration::from_secs(30);
    // "patient"'s heartbeat (2 s) is longer than its own file's TTL (1 s)
    // but within the server's: it starts, and stays.
    let mut patient = AgentSpec::new("patient")
        .default_heartbeat()
        .registry_ttl_in_file(Duration::from_secs(1));
    patient.extra.push_str("  heartbeat_interval: 2s\n");
    c.add_agents(&[
        AgentSpec::new("steady")
            .label("role", "web")
            .default_heartbeat(),
        AgentSpec::new("unaware")
            .default_heartbeat()
            .registry_ttl_in_file(long),
        patient,
    ])
    .await;
    let client = c.client(0);
    let until = Instant::now() + 3 * ttl;
    while Instant::now() < until {
        let listed = client.agents().await.unwrap();
        for host in ["steady", "unaware", "patient"] {
            assert!(
                listed.agents.iter().any(|a| a.hostname == host),
                "{host} dropped out of the registry"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A heartbeat set in the file at or above the server's TTL is a
    // startup error, though the file's own TTL would allow it.
    let mut slow = AgentSpec::new("slow")
        .registry_ttl_in_file(long)
        .default_heartbeat();
    slow.extra.push_str("  heartbeat_interval: 5s\n");
    // Heartbeats of one process, some at once with state changes, never
    // read as another process's.
    for host in ["steady", "unaware", "patient"] {
        let log = c.log(host);
        assert!(!log.contains("another agent process"), "{host}: {log}");
    }
    let (status, log) = c.failed_agent(&slow).await;
    assert!(!status.success());
    assert!(
        log.contains("agent.heartbeat_interval (5s) must be shorter than the registry's time to live on the NATS server (3s"),
        "{log}"
    );
    // The controller and the `osapi-agent` process report the version and
    // commit `osapi version` prints, as semver (`0.1.0+8d085288c507`), and
    // an agent of the controller's own version has no version skew.
    let wire = wire_version();
    assert_eq!(client.status().await.unwrap().version, wire);
    let steady = client.agent("steady").await.unwrap();
    assert_eq!(steady.agent_version.as_deref(), Some(wire.as_str()));
    assert!(
        !steady
            .conditions
            .iter()
            .any(|c| c.condition_type == osapi_api::agent::condition::VERSION_SKEW),
        "{:?}",
        steady.conditions
    );
    let d = client
        .run_job(
            &osapi_api::job::CreateJobRequest::new("node.hostname.get", json!({}), "role:web"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(d.status(), JobStatus::Completed);
}

/// `version+commit` (or `version` when the commit is unknown), from what
/// `osapi version --json` prints.
fn wire_version() -> String {
    let out = Command::new(fleet::BIN)
        .args(["version", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (version, commit) = (
        v["version"].as_str().unwrap(),
        v["commit"].as_str().unwrap(),
    );
    match commit {
        "unknown" => version.to_string(),
        commit => format!("{version}+{commit}"),
    }
}
