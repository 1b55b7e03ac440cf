//! Operations as types through the client: `Client::run::<O>` sends the
//! operation's typed parameters and decodes each host's answer as its
//! result type.

use std::time::Duration;

use osapi_api::ops::{CommandExecParams, CommandShellParams, NoParams, op};

use crate::common;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn typed_runs_decode_every_hosts_answer() {
    let stack = common::fleet().await;
    let client = stack.client.clone();

    // One host: its result, typed.
    let job = client
        .run::<op::NodeHostnameGet>("web-01", &NoParams {}, WAIT)
        .await
        .unwrap();
    let hostname = job.result().unwrap();
    assert_eq!(hostname.labels.get("role").map(String::as_str), Some("web"));

    // Every host: one typed answer each; result() refuses to pick one.
    let job = client
        .run::<op::NodeLoadGet>("_all", &NoParams {}, WAIT)
        .await
        .unwrap();
    let answers = job.answers().unwrap();
    let mut hosts: Vec<&str> = answers.iter().map(|a| a.hostname.as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["db-01", "web-01", "web-02"]);
    assert!(
        answers
            .iter()
            .all(|a| a.result.as_ref().is_ok_and(|l| l.load1 >= 0.0))
    );
    assert!(
        job.result()
            .unwrap_err()
            .to_string()
            .contains("has 3 answers")
    );

    // A command that ran answers with its exit code (deciding that a
    // non-zero exit is a failure is the caller's: the orchestrator does).
    let params = CommandShellParams {
        command: "exit 3".into(),
        ..Default::default()
    };
    let job = client
        .run::<op::CommandShell>("role:db", &params, WAIT)
        .await
        .unwrap();
    assert_eq!(job.result().unwrap().exit_code, 3);

    // A host that fails is an error answer, with the agent's message.
    let params = CommandExecParams {
        command: "/nonexistent/osapi-typed-test".into(),
        ..Default::default()
    };
    let job = client
        .run::<op::CommandExec>("db-01", &params, WAIT)
        .await
        .unwrap();
    let answers = job.answers().unwrap();
    assert_eq!(answers.len(), 1, "{:?}", job.detail);
    assert!(answers[0].result.is_err(), "{answers:?}");
    let err = job.result().unwrap_err().to_string();
    assert!(err.contains("command.exec.execute failed"), "{err}");
}
