//! Job signatures on the embedded stack with checking on: jobs created
//! through the API run; a job put on the bus directly, unsigned or altered,
//! is refused and never runs.

use std::sync::Arc;

use osapi_api::job::JobStatus;
use osapi_api::ops::JobClass;
use osapi_api::records::JobRecord;
use osapi_bus::Route;
use serde_json::json;
use time::OffsetDateTime;

use crate::common;

#[tokio::test]
async fn agents_refuse_jobs_the_controller_did_not_sign() {
    let stack = common::builder()
        .agent(|a| a, "agent-1")
        .verify_signatures()
        .start()
        .await;
    let marker = stack.path("pwned");
    let signed = stack
        .run_job(
            "command.exec.execute",
            json!({"command": "true"}),
            "agent-1",
        )
        .await;
    assert_eq!(signed.status(), JobStatus::Completed, "{signed:?}");

    let bus = stack.emb.bus();
    let record = JobRecord {
        id: uuid::Uuid::new_v4(),
        created: OffsetDateTime::now_utc(),
        operation: json!({"type": "command.exec.execute", "data": {"command": "touch", "args": [marker]}}),
        op_type: "command.exec.execute".into(),
        class: JobClass::Modify,
        target: "agent-1".into(),
        expected_hosts: vec!["agent-1".into()],
        deadline: OffsetDateTime::now_utc() + std::time::Duration::from_secs(60),
        retry_of: None,
        signature: None,
        trace_parent: None,
    };
    let id = record.id;
    bus.jobs.create(Arc::new(record)).await.unwrap();
    bus.queue
        .publish(id, JobClass::Modify, Route::Host("agent-1".into()))
        .await
        .unwrap();
    let d = stack
        .client
        .wait_job(id, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(d.status(), JobStatus::Failed);
    assert_eq!(d.error.as_deref(), Some("rejected: the job is not signed"));
    assert!(!marker.exists());
}
