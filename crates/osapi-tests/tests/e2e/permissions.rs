//! Every operation needs its own permission on every route that can start
//! it: `POST /job` and `POST /job/{id}/retry` (besides `job:write`) and the
//! operation's synchronous `/node/…` route, under both prefixes, for the
//! built-in roles, a custom role and an explicit `permissions` claim. The
//! expected permissions are written out here, independently of the code's
//! table, so a wrong entry there fails this test.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{self, Stack, token_with};

/// One operation: its name, the permission it needs, job data, and its
/// `/node` route (method, path under `/node/nobody`, body).
type OpCase = (
    &'static str,
    &'static str,
    Value,
    Method,
    String,
    Option<Value>,
);

/// Every operation (see [`OpCase`]).
fn operations(tmp: &str) -> Vec<OpCase> {
    let file = format!("{tmp}/perm-target");
    vec![
        (
            "node.hostname.get",
            "node:read",
            json!({}),
            Method::GET,
            "/hostname".into(),
            None,
        ),
        (
            "node.status.get",
            "node:read",
            json!({}),
            Method::GET,
            "".into(),
            None,
        ),
        (
            "node.uptime.get",
            "node:read",
            json!({}),
            Method::GET,
            "/uptime".into(),
            None,
        ),
        (
            "node.os.get",
            "node:read",
            json!({}),
            Method::GET,
            "/os".into(),
            None,
        ),
        (
            "node.disk.get",
            "node:read",
            json!({}),
            Method::GET,
            "/disk".into(),
            None,
        ),
        (
            "node.memory.get",
            "node:read",
            json!({}),
            Method::GET,
            "/memory".into(),
            None,
        ),
        (
            "node.load.get",
            "node:read",
            json!({}),
            Method::GET,
            "/load".into(),
            None,
        ),
        (
            "network.dns.get",
            "network:read",
            json!({"interface": "eth0"}),
            Method::GET,
            "/network/dns/eth0".into(),
            None,
        ),
        (
            "network.ping.do",
            "network:read",
            json!({"address": "127.0.0.1"}),
            Method::POST,
            "/network/ping".into(),
            Some(json!({"address": "127.0.0.1"})),
        ),
        (
            "network.dns.update",
            "network:write",
            json!({"interface": "eth0", "servers": ["10.0.0.53"]}),
            Method::PUT,
            "/network/dns".into(),
            Some(json!({"interface_name": "eth0", "servers": ["10.0.0.53"]})),
        ),
        (
            "command.exec.execute",
            "command:execute",
            json!({"command": "true"}),
            Method::POST,
            "/command/exec".into(),
            Some(json!({"command": "true"})),
        ),
        (
            "command.shell.execute",
            "command:execute",
            json!({"command": "true"}),
            Method::POST,
            "/command/shell".into(),
            Some(json!({"command": "true"})),
        ),
        (
            "file.deploy.execute",
            "file:write",
            json!({"object_name": "none", "path": file, "content_type": "raw"}),
            Method::POST,
            "/file/deploy".into(),
            Some(json!({"object_name": "none", "path": file, "content_type": "raw"})),
        ),
        (
            "file.status.get",
            "file:read",
            json!({"path": file}),
            Method::POST,
            "/file/status".into(),
            Some(json!({"path": file})),
        ),
        (
            "node.packages.get",
            "node:read",
            json!({"name": "bash"}),
            Method::POST,
            "/packages".into(),
            Some(json!({"name": "bash"})),
        ),
    ]
}

fn perms(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|p| p.to_string()).collect()
}

/// Who calls, with the permissions upstream's role table (or the claim) gives.
fn principals(key: &str) -> Vec<(&'static str, String, BTreeSet<String>)> {
    let all = [
        "agent:read",
        "agent:write",
        "node:read",
        "network:read",
        "network:write",
        "job:read",
        "job:write",
        "health:read",
        "audit:read",
        "command:execute",
        "file:read",
        "file:write",
    ];
    let write = [
        "agent:read",
        "node:read",
        "network:read",
        "network:write",
        "job:read",
        "job:write",
        "health:read",
        "file:read",
        "file:write",
    ];
    let read = [
        "agent:read",
        "node:read",
        "network:read",
        "job:read",
        "health:read",
        "file:read",
    ];
    vec![
        (
            "admin",
            token_with(key, json!({"roles": ["admin"], "sub": "a"})),
            perms(&all),
        ),
        (
            "write",
            token_with(key, json!({"roles": ["write"], "sub": "w"})),
            perms(&write),
        ),
        (
            "read",
            token_with(key, json!({"roles": ["read"], "sub": "r"})),
            perms(&read),
        ),
        (
            "custom role ops",
            token_with(key, json!({"roles": ["ops"], "sub": "o"})),
            perms(&["job:write", "node:read", "file:read"]),
        ),
        (
            "permissions claim",
            token_with(
                key,
                json!({"roles": ["read"], "permissions": ["job:write", "command:execute"], "sub": "p"}),
            ),
            perms(&["job:write", "command:execute"]),
        ),
    ]
}

/// A request to make.
struct Call<'a> {
    case: String,
    method: Method,
    path: String,
    token: &'a str,
    body: Option<Value>,
}

/// 403 with upstream's message when `allowed` is false; otherwise the
/// request got past authorisation (to the 400 of the unknown target).
async fn check(stack: &Stack, call: Call<'_>, allowed: bool, needed: &str) {
    let Call {
        case,
        method,
        path,
        token,
        body,
    } = call;
    let path = path.as_str();
    let (status, resp) = stack.call(method.clone(), path, Some(token), body).await;
    if allowed {
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{case}: {method} {path} should pass authorisation and fail on the unknown target: {resp}"
        );
    } else {
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{case}: {method} {path}: {resp}"
        );
        let msg = resp["error"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("Insufficient permissions. Required: [") && msg.contains(needed),
            "{case}: {method} {path}: {msg}"
        );
    }
}

#[tokio::test]
async fn every_operation_needs_its_permission_on_every_route() {
    let stack = common::builder()
        .agent(|a| a, "agent-1")
        .server(|c| {
            c.roles.insert(
                "ops".into(),
                vec!["job:write".into(), "node:read".into(), "file:read".into()],
            );
        })
        .start()
        .await;
    let tmp = stack.dir.path().display().to_string();
    let key = stack.emb.signing_key().to_string();
    let ops = operations(&tmp);
    // Every operation of the catalogue is here.
    let listed: BTreeSet<&str> = ops.iter().map(|(op, ..)| *op).collect();
    let catalogue: BTreeSet<&str> = osapi_api::ops::Operation::ALL
        .iter()
        .map(|op| op.as_str())
        .collect();
    assert_eq!(listed, catalogue, "add new operations to `operations()`");
    // One job per operation, started by the admin, to retry.
    let mut originals = Vec::new();
    for (op, _, data, ..) in &ops {
        let (status, body) = stack
            .admin(
                Method::POST,
                "/job",
                Some(
                    json!({"operation": {"type": op, "data": data}, "target_hostname": "agent-1"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{op}: {body}");
        originals.push(body["job_id"].as_str().unwrap().to_string());
    }
    for (who, token, held) in principals(&key) {
        for ((op, needed, data, method, node_path, node_body), original) in
            ops.iter().zip(&originals)
        {
            let has_op = held.contains(*needed);
            let job_allowed = has_op && held.contains("job:write");
            let needed_for_job = if held.contains("job:write") {
                needed
            } else {
                "job:write"
            };
            for prefix in ["", "/api"] {
                check(
                    &stack,
                    Call {
                        case: format!("{who} POST /job {op}"),
                        method: Method::POST,
                        path: format!("{prefix}/job"),
                        token: &token,
                        body: Some(json!({"operation": {"type": op, "data": data}, "target_hostname": "nobody"})),
                    },
                    job_allowed,
                    needed_for_job,
                )
                .await;
                check(
                    &stack,
                    Call {
                        case: format!("{who} retry {op}"),
                        method: Method::POST,
                        path: format!("{prefix}/job/{original}/retry"),
                        token: &token,
                        body: Some(json!({"target_hostname": "nobody"})),
                    },
                    job_allowed,
                    needed_for_job,
                )
                .await;
                check(
                    &stack,
                    Call {
                        case: format!("{who} /node {op}"),
                        method: method.clone(),
                        path: format!("{prefix}/node/nobody{node_path}"),
                        token: &token,
                        body: node_body.clone(),
                    },
                    has_op,
                    needed,
                )
                .await;
            }
        }
    }
}

#[tokio::test]
async fn job_routes_cannot_bypass_operation_permissions() {
    let stack = common::single().await;
    let key = stack.emb.signing_key().to_string();
    let owned = stack.path("owned");
    let write = stack.emb.mint_token(&["write"], &[]).unwrap();
    let jobs_only = token_with(
        &key,
        json!({"roles": ["read"], "permissions": ["job:write", "job:read"], "sub": "mallory"}),
    );
    let shell = json!({"type": "command.shell.execute", "data": {"command": format!("id -un > {}", owned.display())}});

    // The issue's reproduction: the write role has no command:execute.
    let (status, body) = stack
        .call(
            Method::POST,
            "/job",
            Some(&write),
            Some(json!({"operation": shell, "target_hostname": "_any"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("Insufficient permissions. Required: [command:execute], resolved: ["),
        "{body}"
    );

    // An admin's shell job, which the job-only token then tries to re-run.
    let admin_job = stack
        .run_job("command.shell.execute", json!({"command": "true"}), "_any")
        .await;
    let attempts = [
        (
            "/job".to_string(),
            json!({"operation": {"type": "command.exec.execute", "data": {"command": "touch", "args": [owned]}}, "target_hostname": "_any"}),
            "command:execute",
        ),
        (
            "/job".to_string(),
            json!({"operation": {"type": "file.deploy.execute", "data": {"object_name": "x", "path": owned, "content_type": "raw"}}, "target_hostname": "_any"}),
            "file:write",
        ),
        (
            "/job".to_string(),
            json!({"operation": {"type": "network.dns.update", "data": {"interface": "eth0", "servers": ["6.6.6.6"]}}, "target_hostname": "_all"}),
            "network:write",
        ),
        (
            format!("/job/{}/retry", admin_job.id.unwrap()),
            json!({}),
            "command:execute",
        ),
    ];
    for (path, body, needed) in &attempts {
        let (status, resp) = stack
            .call(Method::POST, path, Some(&jobs_only), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} {body}: {resp}");
        assert!(
            resp["error"]
                .as_str()
                .unwrap()
                .contains(&format!("Required: [{needed}]")),
            "{resp}"
        );
    }
    // Nothing ran: only the admin's job exists, and no file was written.
    let (_, list) = stack.admin(Method::GET, "/job?limit=0", None).await;
    assert_eq!(list["total_items"], 1, "{list}");
    assert!(!owned.exists());
    let resolv = std::fs::read_to_string(stack.path("resolv-agent-1.conf")).unwrap();
    assert!(!resolv.contains("6.6.6.6"));

    // Every refusal is in the audit log, with what was attempted.
    let entries = stack.client.audit_export().await.unwrap().items;
    let denied: Vec<_> = entries
        .iter()
        .filter(|e| e.response_code == 403 && e.user == "mallory")
        .collect();
    assert_eq!(denied.len(), attempts.len(), "{denied:#?}");
    let ops: BTreeSet<&str> = denied
        .iter()
        .filter_map(|e| e.action.operation.as_deref())
        .collect();
    assert_eq!(
        ops,
        BTreeSet::from([
            "command.exec.execute",
            "command.shell.execute",
            "file.deploy.execute",
            "network.dns.update"
        ])
    );
    let retry = denied
        .iter()
        .find(|e| e.path.ends_with("/retry"))
        .expect("retry audited");
    assert_eq!(retry.action.retry_of, admin_job.id);
    assert_eq!(retry.action.command.as_deref(), Some("true"));
    assert!(
        denied.iter().all(|e| e.action.job_id.is_none()),
        "no job was created"
    );
}
