//! Lists, counts and the audit log on NATS across two controllers: the
//! index of each controller learns jobs created through the other, lists and
//! counts settle expired jobs, the read that settles a job returns the
//! settled status, and denied requests cannot push allowed ones out of a
//! byte-capped audit log. Pages cost what they return, counted in
//! nats-server's own messages; and the controller's checks (permissions,
//! token expiry, upload limit, trusted proxies) hold on NATS as in memory.

use std::time::{Duration, Instant};

use futures::StreamExt;
use osapi_api::job::{CreateJobRequest, JobStatus};
use osapi_api::ops::ContentType;
use reqwest::StatusCode;
use serde_json::json;

use crate::fleet::{AgentSpec, Cluster, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_counts_and_audit_across_controllers() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.nats_extra = "  audit: {max_bytes: 64KiB}\n".into();
    c.add_controller().await;
    c.add_controller().await;
    c.add_agents(&[AgentSpec::new("parked"), AgentSpec::new("worker")])
        .await;
    let (a, b) = (c.client(0), c.client(1));
    a.drain("parked").await.unwrap();
    let mut expiring = CreateJobRequest::new("node.hostname.get", json!({}), "parked");
    expiring.timeout = Some("2s".into());
    let first = a.create_job(&expiring).await.unwrap();
    let second = a.create_job(&expiring).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..5 {
        let d = a
            .run_job(
                &CreateJobRequest::new("node.hostname.get", json!({}), "worker"),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert_eq!(d.status(), JobStatus::Completed);
    }
    // Created through a, listed by b.
    wait_for(
        Duration::from_secs(10),
        "controller b to list 7 jobs",
        || {
            let b = b.clone();
            async move { b.jobs(None, 1, 0).await.is_ok_and(|p| p.total_items == 7) }
        },
    )
    .await;
    // Wait for the deadline itself (nothing signals it).
    tokio::time::sleep_until((deadline + Duration::from_millis(200)).into()).await;

    // The read that settles a job shows it settled.
    let d = b.job(first.job_id).await.unwrap();
    assert_eq!(d.status(), JobStatus::Failed, "{d:?}");
    assert!(d.error.as_deref().unwrap().contains("deadline exceeded"));
    // Lists and counts settle the other one, on either controller.
    let failed = a.jobs(Some(JobStatus::Failed), 0, 0).await.unwrap();
    let ids: Vec<_> = failed.items.iter().filter_map(|d| d.id).collect();
    assert_eq!(failed.total_items, 2, "{ids:?}");
    assert!(ids.contains(&second.job_id));
    wait_for(
        Duration::from_secs(10),
        "controller b to count both failures",
        || {
            let b = b.clone();
            async move {
                b.job_stats().await.is_ok_and(|s| {
                    s.status_counts["failed"] == 2
                        && s.status_counts["completed"] == 5
                        && s.status_counts["submitted"] == 0
                })
            }
        },
    )
    .await;
    let page = b.jobs(None, 3, 1).await.unwrap();
    assert_eq!(page.total_items, 7);
    assert_eq!(page.items.len(), 3);

    // Denied requests go to their own capped log.
    let nobody = c.token_for("nobody", "read", "health:read");
    let http = reqwest::Client::new();
    for _ in 0..400 {
        let status = http
            .get(format!("{}/audit", c.url(0)))
            .bearer_auth(&nobody)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let all = b.audit_export().await.unwrap().items;
    let jobs_created = all
        .iter()
        .filter(|e| e.method == "POST" && e.path == "/job" && e.response_code == 201)
        .count();
    assert_eq!(jobs_created, 7, "allowed entries survive the flood");
    let denied = all.iter().filter(|e| e.response_code == 403).count();
    assert!(
        denied > 0 && denied < 400,
        "the denied log is capped by bytes: {denied} kept"
    );
    let created = all
        .iter()
        .find(|e| e.action.job_id == Some(first.job_id))
        .expect("the entry names the job");
    assert_eq!(
        created.action.operation.as_deref(),
        Some("node.hostname.get")
    );
    assert_eq!(created.action.target.as_deref(), Some("parked"));
    // Listings read by every request leave no consumer behind on the server
    // (each would outlive the request, and a burst exhausts the limit).
    futures::future::join_all((0..200).map(|_| {
        let b = b.clone();
        async move {
            b.agents().await.unwrap();
            b.files().await.unwrap();
            b.status().await.unwrap();
        }
    }))
    .await;
    let nats = c.nats.controller_client().await;
    let js = async_nats::jetstream::new(nats);
    for stream in [
        "KV_test-agent-registry",
        "KV_test-agent-facts",
        "KV_test-agent-state",
        "OBJ_test-file-objects",
        "KV_test-audit-log",
    ] {
        let names: Vec<String> = futures::TryStreamExt::try_collect(
            js.get_stream(stream).await.unwrap().consumer_names(),
        )
        .await
        .unwrap();
        // At most the long-lived watches of two controllers and two agents
        // (each of the 200 rounds above would otherwise leave its own).
        assert!(
            names.len() <= 4,
            "{stream}: {} consumers: {names:?}",
            names.len()
        );
    }

    // Pages come newest first (by when each request ended; requests that
    // end together may be written in either order).
    let page = a.audit(20, 5).await.unwrap();
    assert_eq!(page.items.len(), 20);
    let slack = Duration::from_millis(100);
    assert!(
        page.items
            .windows(2)
            .all(|w| w[0].ended() + slack >= w[1].ended()),
        "{:#?}",
        page.items
    );
    assert!(page.total_items >= all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_expired_jobs_leave_every_controller() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    // Long enough that the kept job outlives the deletion checks on a
    // loaded machine, short enough to watch it expire.
    c.nats_extra = "  kv: {ttl: 8s}\n  progress: {ttl: 8s}\n".into();
    c.add_controller().await;
    c.add_controller().await;
    c.add_agents(&[AgentSpec::new("w1")]).await;
    let (a, b) = (c.client(0), c.client(1));
    let run = || async {
        a.run_job(
            &CreateJobRequest::new("node.hostname.get", json!({}), "w1"),
            Duration::from_secs(30),
        )
        .await
        .unwrap()
        .id
        .unwrap()
    };
    let deleted = run().await;
    let kept = run().await;
    wait_for(Duration::from_secs(10), "b to list both jobs", || {
        let b = b.clone();
        async move { b.jobs(None, 0, 0).await.is_ok_and(|p| p.total_items == 2) }
    })
    .await;
    a.delete_job(deleted).await.unwrap();
    for client in [&a, &b] {
        let client = client.clone();
        wait_for(
            Duration::from_secs(10),
            "the deleted job to leave the lists",
            || {
                let client = client.clone();
                async move {
                    let listed = client.jobs(None, 0, 0).await.unwrap();
                    let stats = client.job_stats().await.unwrap();
                    listed.total_items == 1
                        && listed.items.iter().all(|d| d.id != Some(deleted))
                        && stats.total_jobs == 1
                        && client.job(deleted).await.is_err()
                }
            },
        )
        .await;
    }
    // Records expire after nats.kv.ttl without a word on the bus: the
    // indexes forget them too.
    wait_for(
        Duration::from_secs(20),
        "the expired job to leave the lists",
        || {
            let (a, b) = (a.clone(), b.clone());
            async move {
                a.jobs(None, 0, 0).await.is_ok_and(|p| p.total_items == 0)
                    && b.job_stats().await.is_ok_and(|s| s.total_jobs == 0)
            }
        },
    )
    .await;
    assert!(a.job(kept).await.is_err());
}

/// Jobs stored for the cost test: a full scan would read each of them.
const STORED_JOBS: usize = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_cost_what_they_return_and_checks_hold() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.server_extra = "    max_upload_bytes: 1024\n    header_read_timeout: 1s\n".into();
    c.add_controller().await;
    c.add_agents(&[AgentSpec::new("parked"), AgentSpec::new("worker")])
        .await;
    let admin = c.client(0);
    let url = c.url(0);
    let http = reqwest::Client::new();

    // Permissions: a `write` token cannot run a command through /job, and
    // a token with only job:write cannot re-run an admin's shell job.
    let shell = json!({"type": "command.shell.execute", "data": {"command": "true"}});
    let writer = c.token_for("writer", "write", "");
    let resp = http
        .post(format!("{url}/job"))
        .bearer_auth(&writer)
        .json(&json!({"operation": shell, "target_hostname": "worker"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("Insufficient permissions. Required: [command:execute]"),
        "{text}"
    );
    let ran = admin
        .run_job(
            &CreateJobRequest::new(
                "command.shell.execute",
                json!({"command": "true"}),
                "worker",
            ),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let job_writer = c.token_for("job-writer", "read", "job:write,job:read");
    let resp = http
        .post(format!("{url}/job/{}/retry", ran.id.unwrap()))
        .bearer_auth(&job_writer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Token expiry: refused from its `exp` second on.
    let short = c.token_with(&["-r", "read", "-u", "short", "--ttl", "1s"]);
    let status = |token: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.get(format!("{url}/agent"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(short.clone()).await, StatusCode::OK);
    wait_for(Duration::from_secs(5), "the 1 s token to expire", || {
        let short = short.clone();
        let status = &status;
        async move { status(short).await == StatusCode::UNAUTHORIZED }
    })
    .await;

    // The upload limit is exact.
    let too_big = admin
        .upload_file("big", ContentType::Raw, vec![b'x'; 1025], false)
        .await
        .unwrap_err();
    assert_eq!(too_big.status(), Some(413), "{too_big}");
    admin
        .upload_file("fits", ContentType::Raw, vec![b'x'; 1024], false)
        .await
        .unwrap();

    // A forwarded address from a peer that is not a trusted proxy is not believed.
    let resp = http
        .get(format!("{url}/agent"))
        .bearer_auth(c.token())
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let entries = admin.audit_export().await.unwrap().items;
    let entry = entries
        .iter()
        .find(|e| e.path == "/agent" && e.user != "short")
        .unwrap();
    assert_eq!(entry.source_ip, "127.0.0.1");

    // A client that never finishes its headers is cut off.
    let mut slow = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read_to_end(&mut slow, &mut rest),
    )
    .await;
    assert!(closed.is_ok(), "a half-sent request stayed open past 3 s");

    // Pages cost what they return: with 1 500 jobs (and as many audit
    // entries) stored, a page, the counts and an audit page each take a
    // few dozen messages through nats-server; reading every job would
    // take at least one each.
    admin.drain("parked").await.unwrap();
    let mut parked = CreateJobRequest::new("node.hostname.get", json!({}), "parked");
    parked.timeout = Some("1h".into());
    futures::stream::iter(0..STORED_JOBS)
        .map(|_| {
            let (admin, parked) = (admin.clone(), parked.clone());
            async move { admin.create_job(&parked).await.unwrap() }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    wait_for(
        Duration::from_secs(30),
        "the index to list every job",
        || {
            let admin = admin.clone();
            async move {
                admin
                    .jobs(None, 1, 0)
                    .await
                    .is_ok_and(|p| p.total_items > STORED_JOBS)
            }
        },
    )
    .await;
    for (what, page) in [
        ("GET /job?limit=1", 0),
        ("GET /job/status", 1),
        ("GET /audit?limit=5", 2),
    ] {
        let before = c.nats.messages().await;
        match page {
            0 => assert_eq!(admin.jobs(None, 1, 0).await.unwrap().items.len(), 1),
            1 => assert!(admin.job_stats().await.unwrap().total_jobs > STORED_JOBS),
            _ => assert_eq!(admin.audit(5, 0).await.unwrap().items.len(), 5),
        }
        let spent = c.nats.messages().await - before;
        assert!(
            spent < 100,
            "{what} took {spent} messages through nats-server"
        );
    }
}
