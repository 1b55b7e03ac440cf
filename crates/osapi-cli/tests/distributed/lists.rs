//! Lists, counts and the audit log on NATS across two controllers: the
//! index of each controller learns jobs created through the other, lists and
//! counts settle expired jobs, the read that settles a job returns the
//! settled status, and denied requests cannot push allowed ones out of a
//! byte-capped audit log.

use std::time::{Duration, Instant};

use osapi_api::job::{CreateJobRequest, JobStatus};
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
    c.nats_extra = "  kv: {ttl: 4s}\n  progress: {ttl: 4s}\n".into();
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
