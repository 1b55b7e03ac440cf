//! Bad input on every endpoint with a body or parameter: a clear 4xx with
//! `{"error": …}`, nothing panics, and the controller keeps serving.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{self, Stack};

async fn rejects(
    stack: &Stack,
    m: Method,
    path: &str,
    body: Option<Value>,
    want: StatusCode,
    needle: &str,
) {
    let (status, resp) = stack.admin(m.clone(), path, body.clone()).await;
    assert_eq!(status, want, "{m} {path} {body:?} → {resp}");
    let msg = resp["error"].as_str().unwrap_or_default();
    assert!(
        msg.to_lowercase().contains(&needle.to_lowercase()),
        "{m} {path}: {msg:?} should mention {needle:?}"
    );
}

fn job(op: Value, target: &str) -> Option<Value> {
    Some(json!({"operation": op, "target_hostname": target}))
}

#[tokio::test]
async fn job_api_bad_input() {
    let stack = common::single().await;
    let bad = StatusCode::BAD_REQUEST;
    let (s, b) = stack
        .raw(Method::POST, "/job", "application/json", "{not json")
        .await;
    assert_eq!(s, bad, "{b}");
    assert!(b["error"].as_str().unwrap().contains("malformed JSON"));
    let (s, _) = stack.raw(Method::POST, "/job", "text/plain", "{}").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    rejects(
        &stack,
        Method::POST,
        "/job",
        Some(json!({"target_hostname": "_any"})),
        bad,
        "operation",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        Some(json!({"operation": {"type": "node.hostname.get"}, "target_hostname": 5})),
        bad,
        "target_hostname",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(json!("node.hostname.get"), "_any"),
        bad,
        "must be a JSON object",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(json!({"data": {}}), "_any"),
        bad,
        "missing type",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(json!({"type": "node.reboot.execute"}), "_any"),
        bad,
        "unsupported operation",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(json!({"type": "node.hostname.get"}), "nosuch"),
        bad,
        "not found",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(json!({"type": "node.hostname.get"}), "role:nobody"),
        bad,
        "no agent matches",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(json!({"type": "node.hostname.get"}), "role:a..b"),
        bad,
        "label selector",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(json!({"type": "node.hostname.get"}), ""),
        bad,
        "target",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(
            json!({"type": "command.exec.execute", "data": {"args": []}}),
            "_any",
        ),
        bad,
        "command",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(
            json!({"type": "command.exec.execute", "data": {"command": "ls", "timeout": 0}}),
            "_any",
        ),
        bad,
        "timeout",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(
            json!({"type": "command.exec.execute", "data": {"command": "ls", "args": "-l"}}),
            "_any",
        ),
        bad,
        "invalid data",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(
            json!({"type": "file.deploy.execute", "data": {"object_name": "x", "path": "etc/x"}}),
            "_any",
        ),
        bad,
        "absolute",
    )
    .await;
    rejects(&stack, Method::POST, "/job", job(json!({"type": "file.deploy.execute", "data": {"object_name": "x", "path": "/etc/../root/x"}}), "_any"), bad, "..").await;
    rejects(&stack, Method::POST, "/job", job(json!({"type": "file.deploy.execute", "data": {"object_name": "x", "path": "/tmp/x", "mode": "rwx"}}), "_any"), bad, "octal").await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(
            json!({"type": "file.status.get", "data": {"path": "x"}}),
            "_any",
        ),
        bad,
        "absolute",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(
            json!({"type": "network.dns.update", "data": {"interface": "eth0"}}),
            "_any",
        ),
        bad,
        "servers",
    )
    .await;
    rejects(&stack, Method::POST, "/job", Some(json!({"operation": {"type": "node.hostname.get"}, "target_hostname": "_any", "timeout": "forever"})), bad, "timeout").await;

    rejects(
        &stack,
        Method::GET,
        "/job?status=bogus",
        None,
        bad,
        "invalid status",
    )
    .await;
    rejects(&stack, Method::GET, "/job?limit=many", None, bad, "limit").await;
    rejects(&stack, Method::GET, "/job?offset=-1", None, bad, "offset").await;
    rejects(
        &stack,
        Method::GET,
        "/job/not-a-uuid",
        None,
        bad,
        "must be a UUID",
    )
    .await;
    let id = uuid::Uuid::new_v4();
    rejects(
        &stack,
        Method::GET,
        &format!("/job/{id}?wait=soon"),
        None,
        bad,
        "wait",
    )
    .await;
    rejects(
        &stack,
        Method::GET,
        &format!("/job/{id}"),
        None,
        StatusCode::NOT_FOUND,
        "job not found",
    )
    .await;
    rejects(
        &stack,
        Method::DELETE,
        "/job/123",
        None,
        bad,
        "must be a UUID",
    )
    .await;
    rejects(
        &stack,
        Method::DELETE,
        &format!("/job/{id}"),
        None,
        StatusCode::NOT_FOUND,
        "job not found",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("/job/{id}/retry"),
        None,
        StatusCode::NOT_FOUND,
        "job not found",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/job/xyz/retry",
        None,
        bad,
        "must be a UUID",
    )
    .await;
    let created = stack
        .client
        .submit("node.hostname.get", json!({}), "_any")
        .await
        .unwrap();
    let retry = format!("/job/{}/retry", created.job_id);
    rejects(
        &stack,
        Method::POST,
        &retry,
        Some(json!({"target_hostname": "ghost"})),
        bad,
        "not found",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &retry,
        Some(json!({"target_hostname": 7})),
        bad,
        "malformed",
    )
    .await;
    let (s, _) = stack
        .raw(Method::POST, &retry, "application/json", "{{")
        .await;
    assert_eq!(s, bad);
    assert_eq!(stack.client.health().await.unwrap().status, "ok");
}

#[tokio::test]
async fn file_api_bad_input() {
    let stack = common::builder()
        .agent(|a| a, "agent-1")
        .upload_limit(1024)
        .start()
        .await;
    let bad = StatusCode::BAD_REQUEST;
    let (s, b) = stack
        .raw(Method::POST, "/file", "application/json", "{}")
        .await;
    assert_eq!(s, bad, "{b}");
    assert!(b["error"].as_str().unwrap().contains("multipart"));
    let form = |name: Option<&str>, ct: &str, data: Vec<u8>| {
        let mut f = reqwest::multipart::Form::new().text("content_type", ct.to_string());
        if let Some(n) = name {
            f = f.text("name", n.to_string());
        }
        f.part("file", reqwest::multipart::Part::bytes(data).file_name("f"))
    };
    let send = |f: reqwest::multipart::Form| {
        stack
            .http
            .post(stack.url("/file"))
            .bearer_auth(stack.emb.token())
            .multipart(f)
            .send()
    };
    let cases = [
        (form(Some("empty"), "raw", vec![]), bad, "file is required"),
        (form(None, "raw", b"x".to_vec()), bad, "name is required"),
        (
            form(Some(&"n".repeat(256)), "raw", b"x".to_vec()),
            bad,
            "1-255",
        ),
        (
            form(Some("x"), "binary", b"x".to_vec()),
            bad,
            "raw or template",
        ),
        (
            form(Some("big"), "raw", vec![b'a'; 200_000]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        ),
        // The limit is exact: one byte over is refused, the limit itself is not.
        (
            form(Some("over"), "raw", vec![b'a'; 1025]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "1024 bytes",
        ),
    ];
    for (f, want, needle) in cases {
        let resp = send(f).await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, want, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{body} should mention {needle}"
        );
    }
    let at_limit = send(form(Some("exact"), "raw", vec![b'a'; 1024]))
        .await
        .unwrap();
    assert_eq!(at_limit.status(), StatusCode::CREATED);
    stack.client.delete_file("exact").await.unwrap();
    let resp = stack
        .http
        .post(stack.url("/file?force=maybe"))
        .bearer_auth(stack.emb.token())
        .multipart(form(Some("x"), "raw", b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), bad);
    rejects(
        &stack,
        Method::GET,
        "/file/missing",
        None,
        StatusCode::NOT_FOUND,
        "file not found",
    )
    .await;
    rejects(
        &stack,
        Method::DELETE,
        "/file/missing",
        None,
        StatusCode::NOT_FOUND,
        "file not found",
    )
    .await;
    rejects(
        &stack,
        Method::GET,
        &format!("/file/{}", "n".repeat(300)),
        None,
        bad,
        "1-255",
    )
    .await;
    assert!(
        stack.client.files().await.unwrap().files.is_empty(),
        "nothing stored by bad uploads"
    );
}

#[tokio::test]
async fn agent_and_audit_bad_input() {
    let stack = common::single().await;
    rejects(
        &stack,
        Method::GET,
        "/agent/ghost",
        None,
        StatusCode::NOT_FOUND,
        "agent not found: ghost",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/agent/ghost/drain",
        None,
        StatusCode::NOT_FOUND,
        "agent not found",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        "/agent/agent-1/undrain",
        None,
        StatusCode::CONFLICT,
        "not in draining or cordoned state",
    )
    .await;
    stack.client.drain("agent-1").await.unwrap();
    rejects(
        &stack,
        Method::POST,
        "/agent/agent-1/drain",
        None,
        StatusCode::CONFLICT,
        "already in",
    )
    .await;
    rejects(
        &stack,
        Method::GET,
        "/audit?limit=0",
        None,
        StatusCode::BAD_REQUEST,
        "between 1 and 100",
    )
    .await;
    rejects(
        &stack,
        Method::GET,
        "/audit?limit=101",
        None,
        StatusCode::BAD_REQUEST,
        "between 1 and 100",
    )
    .await;
    rejects(
        &stack,
        Method::GET,
        "/audit?offset=x",
        None,
        StatusCode::BAD_REQUEST,
        "offset",
    )
    .await;
    rejects(
        &stack,
        Method::GET,
        "/audit/nope",
        None,
        StatusCode::BAD_REQUEST,
        "must be a UUID",
    )
    .await;
    rejects(
        &stack,
        Method::GET,
        &format!("/audit/{}", uuid::Uuid::new_v4()),
        None,
        StatusCode::NOT_FOUND,
        "audit entry not found",
    )
    .await;
    // All agents drained: _any has nobody to run it.
    rejects(
        &stack,
        Method::POST,
        "/job",
        job(json!({"type": "node.hostname.get"}), "_any"),
        StatusCode::BAD_REQUEST,
        "drained",
    )
    .await;
}

#[tokio::test]
async fn node_api_bad_input() {
    let stack = common::single().await;
    let bad = StatusCode::BAD_REQUEST;
    let n = "/node/agent-1";
    rejects(
        &stack,
        Method::GET,
        "/node/ghost/hostname",
        None,
        bad,
        "not found",
    )
    .await;
    rejects(
        &stack,
        Method::GET,
        "/node/role:none/disk",
        None,
        bad,
        "no agent matches",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/network/ping"),
        Some(json!({"address": "example.com"})),
        bad,
        "IPv4/IPv6",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/network/ping"),
        Some(json!({})),
        bad,
        "address",
    )
    .await;
    rejects(
        &stack,
        Method::GET,
        &format!("{n}/network/dns/eth0;rm"),
        None,
        bad,
        "interface",
    )
    .await;
    rejects(
        &stack,
        Method::PUT,
        &format!("{n}/network/dns"),
        Some(json!({"interface_name": "eth0"})),
        bad,
        "servers or search_domains",
    )
    .await;
    rejects(
        &stack,
        Method::PUT,
        &format!("{n}/network/dns"),
        Some(json!({"interface_name": "eth0", "servers": ["nine"]})),
        bad,
        "not an IP",
    )
    .await;
    rejects(
        &stack,
        Method::PUT,
        &format!("{n}/network/dns"),
        Some(json!({"interface_name": "eth0", "search_domains": ["bad_domain!"]})),
        bad,
        "not a valid hostname",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/command/exec"),
        Some(json!({"command": ""})),
        bad,
        "command is required",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/command/exec"),
        Some(json!({"command": "ls", "timeout": 0})),
        bad,
        "between 1 and 300",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/command/exec"),
        Some(json!({"command": "ls", "timeout": 301})),
        bad,
        "between 1 and 300",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/command/exec"),
        Some(json!({"command": ["ls"]})),
        bad,
        "invalid request body",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/command/shell"),
        Some(json!({})),
        bad,
        "command",
    )
    .await;
    let deploy = |path: &str, ct: &str, mode: Option<&str>| {
        Some(json!({"object_name": "x", "path": path, "content_type": ct, "mode": mode}))
    };
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/file/deploy"),
        deploy("relative/x", "raw", None),
        bad,
        "absolute",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/file/deploy"),
        deploy("/tmp/../etc/passwd", "raw", None),
        bad,
        "..",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/file/deploy"),
        deploy("/tmp/x", "binary", None),
        bad,
        "raw or template",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/file/deploy"),
        deploy("/tmp/x", "raw", Some("999")),
        bad,
        "octal",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/file/status"),
        Some(json!({"path": "x/y"})),
        bad,
        "absolute",
    )
    .await;
    // A failing agent operation on a single target is a 500 with the agent's error.
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/command/exec"),
        Some(json!({"command": "/nonexistent/binary"})),
        StatusCode::INTERNAL_SERVER_ERROR,
        "job failed",
    )
    .await;
    rejects(
        &stack,
        Method::POST,
        &format!("{n}/file/deploy"),
        deploy(stack.path("x").to_str().unwrap(), "raw", None),
        StatusCode::INTERNAL_SERVER_ERROR,
        "not found in the file store",
    )
    .await;
    assert_eq!(stack.client.health().await.unwrap().status, "ok");
    assert!(!stack.path("x").exists());
}
