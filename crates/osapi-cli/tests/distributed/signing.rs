//! Signed jobs against a compromised bus: the test publishes on NATS itself,
//! as an attacker who reached the bus would. A captured job replayed runs
//! once only (also after the agent restarts), a job with its command changed
//! never runs and shows rejected, and a job signed with another key is
//! refused.

use std::time::Duration;

use futures::StreamExt;
use osapi_api::job::{JobDetail, JobStatus};
use osapi_api::records::JobRecord;
use osapi_api::signing::JobSigner;
use serde_json::json;

use crate::fleet::{Cluster, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// Lines in a file (0 when missing).
fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Writes `record` to the bus's job records (so the controller shows it)
/// and publishes it on `subject`, as an attacker on the bus would.
async fn inject(
    js: &async_nats::jetstream::Context,
    records: &async_nats::jetstream::kv::Store,
    subject: &'static str,
    record: &JobRecord,
) {
    let bytes = serde_json::to_vec(record).unwrap();
    records
        .put(format!("jobs.{}", record.id), bytes.clone().into())
        .await
        .unwrap();
    js.publish(subject, bytes.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Waits until the job's timeline has a rejection naming `why`.
async fn rejected(c: &osapi_client::Client, id: uuid::Uuid, why: &str) -> JobDetail {
    let has = |d: &JobDetail| {
        d.timeline.iter().flatten().any(|e| {
            e.error
                .as_deref()
                .is_some_and(|err| err.starts_with("rejected:") && err.contains(why))
        })
    };
    wait_for(WAIT, &format!("job {id} to be rejected ({why})"), || {
        let c = c.clone();
        async move { c.job(id).await.is_ok_and(|d| has(&d)) }
    })
    .await;
    c.job(id).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_forged_and_foreign_jobs_do_not_run() {
    let (mut c, spec, agent_metrics) = Cluster::with_metered_agent("target").await;
    let client = c.client(0);
    let ran = c.dir.path().join("ran");
    let forged_marker = c.dir.path().join("forged");

    // A real job, run once.
    let job = client
        .submit(
            "command.shell.execute",
            json!({"command": format!("echo run >> {}", ran.display())}),
            "target",
        )
        .await
        .unwrap();
    let d = client.wait_job(job.job_id, WAIT).await.unwrap();
    assert_eq!(d.status(), JobStatus::Completed, "{d:?}");
    assert_eq!(lines(&ran), 1);

    // The attacker reads the job off the bus and publishes it again.
    let nats = c.nats.controller_client().await;
    let js = async_nats::jetstream::new(nats);
    let records = js.get_key_value("test-job-queue").await.unwrap();
    let captured = records
        .get(format!("jobs.{}", job.job_id))
        .await
        .unwrap()
        .expect("the job record is on the bus");
    let subject = "test.jobs.modify.host.target";
    js.publish(subject, captured.clone())
        .await
        .unwrap()
        .await
        .unwrap();
    let d = rejected(&client, job.job_id, "replayed").await;
    assert_eq!(d.status(), JobStatus::Completed, "the first answer stands");
    assert_eq!(lines(&ran), 1, "a replayed job runs once only");

    // Still refused after the agent restarts (the ids it took are on disk).
    c.restart_agent(&spec).await;
    js.publish(subject, captured.clone())
        .await
        .unwrap()
        .await
        .unwrap();
    wait_for(WAIT, "the second replay to be refused", || {
        let client = client.clone();
        async move {
            client.job(job.job_id).await.is_ok_and(|d| {
                d.timeline
                    .iter()
                    .flatten()
                    .filter(|e| e.error.as_deref().is_some_and(|e| e.contains("replayed")))
                    .count()
                    == 2
            })
        }
    })
    .await;
    assert_eq!(
        lines(&ran),
        1,
        "a replay after a restart does not run either"
    );

    // A forgery: the captured job under a new id with another command,
    // written to the bus's records as well, so the controller shows it.
    let mut forged: JobRecord = serde_json::from_slice(&captured).unwrap();
    forged.id = uuid::Uuid::new_v4();
    forged.operation["data"]["command"] =
        json!(format!("echo forged >> {}", forged_marker.display()));
    inject(&js, &records, subject, &forged).await;
    let d = rejected(&client, forged.id, "signature does not match").await;
    assert_eq!(d.status(), JobStatus::Failed, "{d:?}");
    assert!(
        d.error.as_deref().unwrap().starts_with("rejected:"),
        "{d:?}"
    );

    // A job signed with a key the agent does not trust.
    let mut foreign = forged.clone();
    foreign.id = uuid::Uuid::new_v4();
    JobSigner::generate().unwrap().sign(&mut foreign);
    inject(&js, &records, subject, &foreign).await;
    let d = rejected(&client, foreign.id, "unknown key").await;
    assert_eq!(d.status(), JobStatus::Failed);
    assert!(!forged_marker.exists(), "no forged command ever ran");
    // The agent counts each refusal by reason (since its restart: the
    // second replay, the forgery, the foreign key).
    let page = crate::operate::scrape(&agent_metrics, None).await.1;
    for reason in ["replay", "bad_signature", "unknown_key"] {
        let name = format!("osapi_agent_jobs_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(
            crate::operate::sample(&page, &name),
            1.0,
            "{reason}: {page}"
        );
    }
    assert!(
        c.log("target").contains("refusing a job"),
        "the agent logs a warning"
    );
}

/// A message delivered again (handed back by a taker, as a lost
/// acknowledgement would have it) is told apart by its stream sequence: the
/// job's own message, never taken here, runs; a copy of a job the agent
/// took, published again and handed back, is still a replay, refused and
/// counted (so an attacker cannot make one pass unseen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_run_once_and_replays_handed_back_are_still_refused() {
    let (mut c, spec, agent_metrics) = Cluster::with_metered_agent("dup").await;
    let client = c.client(0);
    let ran = c.dir.path().join("ran");
    let js = async_nats::jetstream::new(c.nats.controller_client().await);
    let consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream("test-JOBS")
        .await
        .unwrap()
        .get_consumer("host_dup")
        .await
        .unwrap();
    // Takes the next message of the agent's queue and hands it back.
    let hand_back = || async {
        let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
        let message = batch.next().await.expect("a message").unwrap();
        assert_eq!(message.info().unwrap().delivered, 1);
        message
            .ack_with(async_nats::jetstream::AckKind::Nak(None))
            .await
            .unwrap();
    };

    // A job of the controller's, as a template.
    let first = client
        .submit("command.shell.execute", json!({"command": "true"}), "dup")
        .await
        .unwrap();
    client.wait_job(first.job_id, WAIT).await.unwrap();
    let records = js.get_key_value("test-job-queue").await.unwrap();
    let template: JobRecord = serde_json::from_slice(
        &records
            .get(format!("jobs.{}", first.job_id))
            .await
            .unwrap()
            .expect("the job record is on the bus"),
    )
    .unwrap();

    // The agent is away; a job signed by the controllers' key is queued for
    // it, and its message is taken and handed back once.
    c.agents.get_mut("dup").unwrap().terminate();
    let signer = JobSigner::from_bytes(&std::fs::read(&c.job_key.0).unwrap()).unwrap();
    let mut job = template.clone();
    job.id = uuid::Uuid::new_v4();
    // (The template's creation time and deadline: minutes ahead still.)
    job.operation["data"]["command"] = json!(format!("echo run >> {}", ran.display()));
    signer.sign(&mut job);
    inject(&js, &records, "test.jobs.modify.host.dup", &job).await;
    hand_back().await;
    c.restart_agent(&spec).await;
    let d = client.wait_job(job.id, WAIT).await.unwrap();
    assert_eq!(
        d.status(),
        JobStatus::Completed,
        "the redelivery runs: {d:?}"
    );
    assert_eq!(lines(&ran), 1);

    // The same job published again, and handed back before the agent sees
    // it: a replay all the same.
    c.agents.get_mut("dup").unwrap().terminate();
    js.publish(
        "test.jobs.modify.host.dup",
        serde_json::to_vec(&job).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    hand_back().await;
    c.restart_agent(&spec).await;
    let d = rejected(&client, job.id, "replayed").await;
    assert_eq!(d.status(), JobStatus::Completed, "the first answer stands");
    assert_eq!(lines(&ran), 1, "the job ran once");
    let page = crate::operate::scrape(&agent_metrics, None).await.1;
    assert_eq!(
        crate::operate::sample(&page, "osapi_agent_jobs_rejected_total{reason=\"replay\"}"),
        1.0,
        "{page}"
    );
}
