//! `GET /job` and `GET /job/status`: pages in creation order with exact
//! totals, status filters and counts that agree, and jobs whose deadline
//! passed or whose host was lost shown settled there, without anyone
//! reading them one by one first.

use std::time::{Duration, Instant};

use osapi_api::job::{CreateJobRequest, JobStatus};
use serde_json::json;

use crate::common;

#[tokio::test]
async fn pages_follow_creation_order_and_totals_are_exact() {
    let stack = common::single().await;
    let c = &stack.client;
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(
            c.run_job(
                &CreateJobRequest::new("node.hostname.get", json!({}), "_any"),
                Duration::from_secs(30),
            )
            .await
            .unwrap()
            .id
            .unwrap(),
        );
    }
    ids.reverse(); // newest first
    let page = c.jobs(None, 7, 3).await.unwrap();
    assert_eq!(page.total_items, 30);
    let got: Vec<_> = page.items.iter().map(|d| d.id.unwrap()).collect();
    assert_eq!(got, ids[3..10]);
    let done = c.jobs(Some(JobStatus::Completed), 0, 0).await.unwrap();
    assert_eq!(done.total_items, 30);
    assert_eq!(done.items.len(), 30);
    assert!(
        done.items.iter().all(|d| d.result.is_some()),
        "list items carry the result"
    );
    c.delete_job(ids[0]).await.unwrap();
    let stats = c.job_stats().await.unwrap();
    assert_eq!(stats.total_jobs, 29);
    assert_eq!(stats.status_counts["completed"], 29);
    assert_eq!(stats.operation_counts["node.hostname.get"], 29);
    assert_eq!(c.jobs(None, 1, 0).await.unwrap().items[0].id, Some(ids[1]));
}

#[tokio::test]
async fn lists_and_counts_settle_expired_and_lost_jobs() {
    let stack = common::builder()
        .agent(|a| a, "parked")
        .agent(|a| a, "doomed")
        .ttl(Duration::from_millis(600))
        .start()
        .await;
    let c = &stack.client;
    c.drain("parked").await.unwrap();
    let mut expiring = CreateJobRequest::new("node.hostname.get", json!({}), "parked");
    expiring.timeout = Some("1s".into());
    let expiring = c.create_job(&expiring).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    let stuck = c
        .submit(
            "command.exec.execute",
            json!({"command": "sleep", "args": ["30"]}),
            "doomed",
        )
        .await
        .unwrap();
    // The job is running on "doomed" before the agent is killed.
    loop {
        let d = c
            .job_wait(stuck.job_id, Duration::from_millis(100))
            .await
            .unwrap();
        if d.status() == JobStatus::Processing {
            break;
        }
    }
    assert!(stack.emb.kill_agent("doomed"));

    // Only lists and counts are read from here on.
    let settled = async {
        loop {
            let stats = c.job_stats().await.unwrap();
            if stats.status_counts["failed"] == 2 {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let stats = tokio::time::timeout(Duration::from_secs(15), settled)
        .await
        .expect("both jobs counted as failed");
    assert!(Instant::now() >= deadline);
    assert_eq!(stats.status_counts["submitted"], 0);
    assert_eq!(stats.status_counts["processing"], 0);
    let failed = c.jobs(Some(JobStatus::Failed), 0, 0).await.unwrap();
    assert_eq!(failed.total_items, 2);
    let by_id = |id| failed.items.iter().find(|d| d.id == Some(id)).unwrap();
    assert!(
        by_id(expiring.job_id)
            .error
            .as_deref()
            .unwrap()
            .contains("deadline exceeded"),
        "{:?}",
        by_id(expiring.job_id)
    );
    assert!(
        by_id(stuck.job_id)
            .error
            .as_deref()
            .unwrap()
            .contains("lost"),
        "{:?}",
        by_id(stuck.job_id)
    );
    assert_eq!(
        c.jobs(Some(JobStatus::Submitted), 0, 0)
            .await
            .unwrap()
            .total_items,
        0
    );
}
