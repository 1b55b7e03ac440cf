//! Long-polls are not idle connections: two thousand concurrent
//! `GET /job/{id}?wait=` requests are all answered when their wait ends.

use std::time::Duration;

use osapi_api::job::{JobDetail, JobStatus};
use serde_json::json;

use crate::common;

/// Raises this process's descriptor limit to `want` (both ends of every
/// connection live in this process).
fn raise_nofile(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(hard >= want, "needs `ulimit -Hn` >= {want} (it is {hard})");
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_long_polls_are_answered() {
    raise_nofile(8192);
    let stack = common::single().await;
    let job = stack
        .client
        .submit(
            "command.exec.execute",
            json!({"command": "sleep", "args": ["20"]}),
            "_any",
        )
        .await
        .unwrap();
    let url = stack.url(&format!("/job/{}?wait=2s", job.job_id));
    let token = stack.emb.token().to_string();
    let polls = (0..2000).map(|_| {
        let req = stack.http.get(&url).bearer_auth(&token);
        async move {
            let resp = req.send().await.expect("answered");
            assert!(resp.status().is_success());
            resp.json::<JobDetail>().await.unwrap().status()
        }
    });
    let statuses = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(polls))
        .await
        .expect("every long-poll ends");
    assert_eq!(statuses.len(), 2000);
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s, JobStatus::Processing | JobStatus::Submitted)),
        "{:?}",
        statuses
            .iter()
            .find(|s| !matches!(s, JobStatus::Processing | JobStatus::Submitted))
    );
}
