//! The secured bus: the tests' nats-server runs docs/nats-server.conf (TLS
//! with client certificates, one user per controller and per agent,
//! least-privilege agent permissions). An agent's credentials cannot publish
//! a job, touch the audit log or read another host's queue or jobs; nkey
//! and token credentials work; a wrong CA, a wrong password or an auth
//! setting that cannot be honoured stop a process at start with a message
//! that says so and shows no secret.

use std::process::{Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use osapi_api::job::{CreateJobRequest, JobStatus};
use serde_json::json;

use crate::fleet::{
    AgentCredentials, AgentSpec, BIN, CONTROLLER_PASSWORD, Cluster, free_port, nats_binary,
    wait_while_running,
};

const WAIT: Duration = Duration::from_secs(60);

/// Waits for a JetStream publish to be stored; false when it was not.
async fn stored(js: &jetstream::Context, subject: &str, payload: &'static [u8]) -> bool {
    match js.publish(subject.to_string(), payload.into()).await {
        Ok(ack) => tokio::time::timeout(Duration::from_secs(3), ack)
            .await
            .is_ok_and(|r| r.is_ok()),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_credentials_stay_in_their_lane() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    let with_nkey = AgentSpec::new("a2").with_nkey(c.dir.path());
    c.add_agents(&[AgentSpec::new("a1"), with_nkey]).await;
    let client = c.client(0);
    // Both credentials work: password (a1) and nkey (a2).
    let a2_job = client
        .run_job(
            &CreateJobRequest::new("node.hostname.get", json!({}), "_all"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(a2_job.status(), JobStatus::Completed, "{a2_job:?}");
    let job_id = a2_job.id.unwrap();

    let admin = jetstream::new(c.nats.controller_client().await);
    let jobs = admin.get_stream("test-JOBS").await.unwrap();
    let before = jobs.get_info().await.unwrap().state.messages;
    let audit = admin.get_stream("KV_test-audit-log").await.unwrap();
    let audited = audit.get_info().await.unwrap().state.messages;
    assert!(audited > 0);

    let agent = c
        .nats
        .connect_agent("a1", &AgentCredentials::Password)
        .await
        .unwrap();
    let mut js = jetstream::new(agent);
    js.set_timeout(Duration::from_secs(2));

    // It cannot publish a job (for any host, even itself).
    for subject in [
        "test.jobs.modify.host.nobody",
        "test.jobs.modify.host.a1",
        "test.jobs.query._any",
    ] {
        assert!(!stored(&js, subject, b"{}").await, "{subject}");
    }
    assert_eq!(jobs.get_info().await.unwrap().state.messages, before);

    // It cannot read, purge, delete or write the audit log.
    assert!(
        js.get_stream("KV_test-audit-log").await.is_err(),
        "the audit log's statistics"
    );
    assert!(
        js.get_key_value("test-audit-log").await.is_err(),
        "opening the audit log"
    );
    let stream = js.get_stream_no_info("KV_test-audit-log").await.unwrap();
    assert!(stream.purge().await.is_err(), "purge");
    assert!(
        js.delete_stream("KV_test-audit-log").await.is_err(),
        "delete"
    );
    assert!(
        !stored(&js, "$KV.test-audit-log.forged", b"{}").await,
        "write"
    );
    assert!(
        admin
            .get_stream("KV_test-audit-log")
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state
            .messages
            >= audited,
        "the audit log is intact"
    );

    // It cannot read another host's queue, nor point its own at it.
    let theirs = js.get_stream_no_info("test-JOBS").await.unwrap();
    assert!(
        theirs
            .get_consumer::<pull::Config>("host_a2")
            .await
            .is_err()
    );
    let sneaky = pull::Config {
        durable_name: Some("host_a1".into()),
        filter_subject: "test.jobs.*.host.a2".into(),
        ..Default::default()
    };
    assert!(theirs.create_consumer(sneaky).await.is_err());
    assert!(
        theirs.direct_get(1).await.is_err(),
        "direct reads of the job stream"
    );

    // Nor another host's job records or progress, nor its registration.
    // (Jobs arrive whole in their queue message: an agent reads no record.)
    assert!(
        js.get_key_value("test-job-queue").await.is_err(),
        "opening the job records"
    );
    let records = js.get_stream_no_info("KV_test-job-queue").await.unwrap();
    assert!(
        records
            .direct_get_last_for_subject(format!("$KV.test-job-queue.jobs.{job_id}"))
            .await
            .is_err(),
        "reading a job record"
    );
    let progress = js.get_key_value("test-job-progress").await.unwrap();
    assert!(progress.get(format!("{job_id}.a2")).await.is_err());
    assert!(!stored(&js, "$KV.test-agent-registry.agents.a2", b"{}").await);
    let registry = js.get_key_value("test-agent-registry").await.unwrap();
    assert!(
        registry.entry("agents.a2").await.is_err(),
        "reading another host's registration"
    );
    assert!(!stored(&js, "$KV.test-agent-state.drain.a2", b"1").await);

    // File objects: read by direct gets only. No consumer on their stream
    // (which exists: the controller created it), no writes.
    assert!(admin.get_stream("OBJ_test-file-objects").await.is_ok());
    let reader = pull::Config {
        durable_name: Some("reader".into()),
        ..Default::default()
    };
    assert!(
        js.create_consumer_on_stream(reader, "OBJ_test-file-objects")
            .await
            .is_err(),
        "a consumer on the file objects"
    );
    assert!(
        !stored(&js, "$O.test-file-objects.C.forged", b"x").await,
        "writing a file object"
    );

    // What it needs is allowed: its own registration (read back too) and
    // progress.
    assert!(progress.get(format!("{job_id}.a1")).await.is_ok());
    assert!(registry.entry("agents.a1").await.is_ok_and(|e| e.is_some()));
    assert!(stored(&js, "$KV.test-agent-facts.facts.a1", b"{}").await);
}

/// `osapi agent start` with `nats_block` as `agent.nats`; returns its
/// exit status and standard error once it exits (or after 30 s).
fn agent_start(c: &Cluster, nats_block: &str) -> (bool, String) {
    let dir = c.dir.path();
    let config = dir.join(format!("bad-agent-{}.yaml", fastrand_suffix()));
    std::fs::write(
        &config,
        format!(
            "agent:\n  hostname: intruder\n  state_dir: {}\n  security: {{allow_unsigned_jobs: true}}\n  nats:\n{nats_block}",
            dir.join("state-intruder").display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("-f")
        .arg(&config)
        .args(["agent", "start"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fastrand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_certificates_fail_at_start() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.add_controller().await;
    let pki = c.nats.pki.clone();
    let tls = |ca: &std::path::Path| {
        format!(
            "    tls: {{ca_file: {}, cert_file: {}, key_file: {}}}\n",
            ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        )
    };
    let host = format!(
        "    host: 127.0.0.1\n    port: {}\n    namespace: test\n",
        c.nats.port
    );

    // A CA that did not sign the server's certificate.
    let started = std::time::Instant::now();
    let (ok, err) = agent_start(
        &c,
        &format!(
            "{host}    auth: {{type: user_pass, username: osapi-controller, password: {CONTROLLER_PASSWORD}}}\n{}",
            tls(&pki.other_ca)
        ),
    );
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "TLS with NATS at tls://127.0.0.1:{} failed",
            c.nats.port
        )),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failed at once, not after retries"
    );
    assert!(
        !err.contains(CONTROLLER_PASSWORD),
        "no secret in errors: {err}"
    );

    // A wrong password.
    let (ok, err) = agent_start(
        &c,
        &format!(
            "{host}    auth: {{type: user_pass, username: osapi-controller, password: not-the-password}}\n{}",
            tls(&pki.ca)
        ),
    );
    assert!(!ok);
    assert!(
        err.contains("refused the credentials (auth type user_pass)"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");

    // Settings that cannot be honoured are errors, never ignored.
    for (auth, needle) in [
        (
            "{type: kerberos}",
            "agent.nats.auth.type \"kerberos\" is not supported",
        ),
        (
            "{type: none, password: x}",
            "agent.nats.auth.password is set but agent.nats.auth.type is \"none\"",
        ),
        (
            "{type: user_pass, username: u}",
            "agent.nats.auth: password (or password_file) is required",
        ),
        ("{type: nkey}", "agent.nats.auth.nkey_file is required"),
        (
            "{type: token, token: a, token_file: /etc/hostname}",
            "give token or token_file, not both",
        ),
        ("{type: user_pass, usernme: u}", "unknown field `usernme`"),
    ] {
        let (ok, err) = agent_start(&c, &format!("{host}    auth: {auth}\n"));
        assert!(!ok, "{auth}");
        assert!(err.contains(needle), "{auth}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_credentials_work() {
    // A server with one token for everyone (no per-user permissions).
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("token.conf");
    std::fs::write(
        &conf,
        format!(
            "port: {port}\nhost: 127.0.0.1\njetstream {{ store_dir: \"{}\" }}\nauthorization {{ token: \"fleet-token-secret\" }}\n",
            dir.path().join("js").display()
        ),
    )
    .unwrap();
    let _server = crate::fleet::Proc {
        child: Command::new(nats_binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "fleet-token-secret\n").unwrap();
    let api_port = free_port();
    let config = dir.path().join("osapi.yaml");
    let nats =
        |auth: &str| format!("{{host: 127.0.0.1, port: {port}, namespace: tok, auth: {auth}}}");
    std::fs::write(
        &config,
        format!(
            "api:\n  server:\n    port: {api_port}\n    bind: 127.0.0.1\n    security: {{signing_key: k}}\n    nats: {}\nagent:\n  hostname: tok-agent\n  state_dir: {}\n  nats: {}\nnats:\n  objects: {{max_bytes: 64MiB}}\n",
            nats(&format!("{{type: token, token_file: {}}}", token_file.display())),
            dir.path().join("state").display(),
            nats("{type: token, token: wrong-token}"),
        ),
    )
    .unwrap();
    // The controller connects with the token from its file…
    let log = dir.path().join("controller.log");
    let mut controller = crate::fleet::Proc {
        child: Command::new(BIN)
            .arg("-f")
            .arg(&config)
            .args(["api", "server", "start"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    };
    let url = format!("http://127.0.0.1:{api_port}");
    let health = osapi_client::Client::new(&url, "unused").unwrap();
    wait_while_running(
        &mut [(&mut controller, log)],
        "the controller on a token-secured NATS",
        || {
            let h = health.clone();
            async move { h.ready().await.is_ok_and(|r| r.status == "ready") }
        },
    )
    .await;
    drop(controller);
    // …and an agent with the wrong token is refused at once.
    let out = Command::new(BIN)
        .arg("-f")
        .arg(&config)
        .args(["agent", "start"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused the credentials (auth type token)"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-token") && !err.contains("fleet-token-secret"),
        "{err}"
    );
}

/// JetStream reserves a bucket's byte limit up front: a limit it cannot
/// reserve stops the controller at start with what to change, and a
/// controller restarted with a lower limit brings the existing store to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_limits_nats_cannot_reserve_fail_at_start() {
    let mut c = Cluster::start(Duration::from_secs(10)).await;
    c.object_bytes = (1u64 << 50).to_string();
    let (status, log) = c.failed_controller().await;
    assert!(!status.success());
    assert!(
        log.contains("cannot create object store test-file-objects")
            && log.contains("nats.objects.max_bytes")
            && log.contains("max_file_store"),
        "{log}"
    );

    // A limit the server can reserve works; changing it later changes the store.
    c.object_bytes = "32MiB".into();
    c.add_controller().await;
    c.object_bytes = "16MiB".into();
    c.add_controller().await;
    let conn = c.nats.controller_client().await;
    let js = jetstream::new(conn);
    let mut stream = js.get_stream("OBJ_test-file-objects").await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.max_bytes, 16 << 20);
}
