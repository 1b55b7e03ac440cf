//! For every authenticated route: no token, malformed token, bad signature,
//! expired, `alg: none`, unknown role, insufficient permission → 401/403;
//! sufficient permission → through. `/health` and `/health/ready` stay open.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{self, Stack, alg_none_token, now, token_with};

fn routes() -> Vec<(Method, String, Option<Value>, &'static str)> {
    let id = uuid::Uuid::new_v4();
    let job = json!({"operation": {"type": "node.hostname.get"}, "target_hostname": "_any"});
    vec![
        (Method::GET, "/health/status".into(), None, "health:read"),
        (Method::GET, "/agent".into(), None, "agent:read"),
        (Method::GET, "/agent/agent-1".into(), None, "agent:read"),
        (
            Method::POST,
            "/agent/nobody/drain".into(),
            None,
            "agent:write",
        ),
        (
            Method::POST,
            "/agent/nobody/undrain".into(),
            None,
            "agent:write",
        ),
        (Method::POST, "/job".into(), Some(job), "job:write"),
        (Method::GET, "/job".into(), None, "job:read"),
        (Method::GET, "/job/status".into(), None, "job:read"),
        (Method::GET, format!("/job/{id}"), None, "job:read"),
        (Method::DELETE, format!("/job/{id}"), None, "job:write"),
        (Method::POST, format!("/job/{id}/retry"), None, "job:write"),
        (Method::POST, "/file".into(), Some(json!({})), "file:write"),
        (Method::GET, "/file".into(), None, "file:read"),
        (Method::GET, "/file/nothing".into(), None, "file:read"),
        (Method::DELETE, "/file/nothing".into(), None, "file:write"),
        (Method::GET, "/node/agent-1".into(), None, "node:read"),
        (
            Method::GET,
            "/node/agent-1/hostname".into(),
            None,
            "node:read",
        ),
        (Method::GET, "/node/agent-1/disk".into(), None, "node:read"),
        (
            Method::GET,
            "/node/agent-1/memory".into(),
            None,
            "node:read",
        ),
        (Method::GET, "/node/agent-1/load".into(), None, "node:read"),
        (Method::GET, "/node/agent-1/os".into(), None, "node:read"),
        (
            Method::GET,
            "/node/agent-1/uptime".into(),
            None,
            "node:read",
        ),
        (
            Method::POST,
            "/node/agent-1/network/ping".into(),
            Some(json!({"address": "127.0.0.1"})),
            "network:read",
        ),
        (
            Method::GET,
            "/node/agent-1/network/dns/eth0".into(),
            None,
            "network:read",
        ),
        (
            Method::PUT,
            "/node/agent-1/network/dns".into(),
            Some(json!({"interface_name": "eth0", "servers": ["10.0.0.53", "10.0.0.54"]})),
            "network:write",
        ),
        (
            Method::POST,
            "/node/agent-1/command/exec".into(),
            Some(json!({"command": "true"})),
            "command:execute",
        ),
        (
            Method::POST,
            "/node/agent-1/command/shell".into(),
            Some(json!({"command": "true"})),
            "command:execute",
        ),
        (
            Method::POST,
            "/node/agent-1/file/deploy".into(),
            Some(json!({"object_name": "none", "path": "/tmp/x", "content_type": "raw"})),
            "file:write",
        ),
        (
            Method::POST,
            "/node/agent-1/file/status".into(),
            Some(json!({"path": "/tmp/osapi-nothing-here"})),
            "file:read",
        ),
        (Method::GET, "/audit".into(), None, "audit:read"),
        (Method::GET, "/audit/export".into(), None, "audit:read"),
        (Method::GET, format!("/audit/{id}"), None, "audit:read"),
    ]
}

fn other_permission(required: &str) -> &'static str {
    if required == "health:read" {
        "file:read"
    } else {
        "health:read"
    }
}

async fn expect(
    stack: &Stack,
    m: &Method,
    path: &str,
    body: &Option<Value>,
    token: Option<&str>,
    want: StatusCode,
    case: &str,
) {
    let (status, resp) = stack.call(m.clone(), path, token, body.clone()).await;
    assert_eq!(status, want, "{case}: {m} {path} → {status} {resp}");
    assert!(
        resp["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{case}: {m} {path} error body {resp}"
    );
}

#[tokio::test]
async fn every_route_checks_tokens() {
    let stack = common::single().await;
    let key = stack.emb.signing_key().to_string();
    let expired = token_with(
        &key,
        json!({"roles": ["admin"], "sub": "x", "exp": now() - 3600}),
    );
    let wrong_key = token_with("not-the-key", json!({"roles": ["admin"], "sub": "x"}));
    let unknown_role = token_with(&key, json!({"roles": ["ops"], "sub": "x"}));
    let no_roles = token_with(&key, json!({"sub": "x"}));
    let none = alg_none_token();
    for (m, path, body, perm) in routes() {
        let weak = token_with(
            &key,
            json!({"roles": ["admin"], "permissions": [other_permission(perm)], "sub": "x"}),
        );
        // Starting a job also needs its operation's permission
        // (node.hostname.get: node:read).
        let strong_perms = if perm == "job:write" {
            vec![perm, "node:read"]
        } else {
            vec![perm]
        };
        let strong = token_with(
            &key,
            json!({"roles": [], "permissions": strong_perms, "sub": "x"}),
        );
        let refused = [
            (None, StatusCode::UNAUTHORIZED, "no token"),
            (Some("not.a.jwt"), StatusCode::UNAUTHORIZED, "malformed"),
            (Some(&wrong_key), StatusCode::UNAUTHORIZED, "bad signature"),
            (Some(&expired), StatusCode::UNAUTHORIZED, "expired"),
            (Some(&none), StatusCode::UNAUTHORIZED, "alg none"),
            (
                Some(&unknown_role),
                StatusCode::UNAUTHORIZED,
                "unknown role",
            ),
            (Some(&no_roles), StatusCode::UNAUTHORIZED, "missing roles"),
            (Some(&weak), StatusCode::FORBIDDEN, "insufficient"),
        ];
        for prefix in ["", "/api"] {
            let path = format!("{prefix}{path}");
            for (token, status, case) in refused {
                expect(&stack, &m, &path, &body, token, status, case).await;
            }
            let (status, resp) = stack
                .call(m.clone(), &path, Some(&strong), body.clone())
                .await;
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "sufficient: {m} {path} → {status} {resp}"
            );
        }
    }
    // Only these two are open.
    for path in [
        "/health",
        "/health/ready",
        "/api/health",
        "/api/health/ready",
    ] {
        let (status, _) = stack.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn roles_expand_as_upstream() {
    let stack = common::single().await;
    let read = stack.emb.mint_token(&["read"], &[]).unwrap();
    let write = stack.emb.mint_token(&["write"], &[]).unwrap();
    // read: node yes, job write no, commands no.
    assert_eq!(
        stack
            .call(Method::GET, "/node/agent-1/hostname", Some(&read), None)
            .await
            .0,
        StatusCode::OK
    );
    let job = json!({"operation": {"type": "node.hostname.get"}, "target_hostname": "_any"});
    assert_eq!(
        stack
            .call(Method::POST, "/job", Some(&read), Some(job.clone()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // write: jobs yes, commands and audit no.
    assert_eq!(
        stack
            .call(Method::POST, "/job", Some(&write), Some(job))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, body) = stack
        .call(
            Method::POST,
            "/node/agent-1/command/exec",
            Some(&write),
            Some(json!({"command": "true"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Required: [command:execute]"),
        "{body}"
    );
    assert_eq!(
        stack
            .call(Method::GET, "/audit", Some(&write), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn audit_records_authenticated_requests_only() {
    let stack = common::single().await;
    let read = stack.emb.mint_token(&["read"], &[]).unwrap();
    stack.call(Method::GET, "/agent", Some(&read), None).await;
    stack.call(Method::GET, "/audit", Some(&read), None).await; // 403, audited
    stack.call(Method::GET, "/agent", None, None).await; // 401, not audited
    stack.call(Method::GET, "/health", None, None).await; // never audited
    let entries = stack.client.audit_export().await.unwrap().items;
    let ours: Vec<_> = entries
        .iter()
        .filter(|e| e.path != "/audit/export")
        .collect();
    assert_eq!(ours.len(), 2, "{ours:#?}");
    let forbidden = ours.iter().find(|e| e.path == "/audit").unwrap();
    assert_eq!(forbidden.response_code, 403);
    assert_eq!(forbidden.user, "embedded-user");
    assert_eq!(forbidden.roles, vec!["read"]);
    assert_eq!(forbidden.source_ip, "127.0.0.1");
    let ok = ours.iter().find(|e| e.path == "/agent").unwrap();
    assert_eq!(ok.response_code, 200);
    assert_eq!(ok.method, "GET");
    let one = stack.client.audit_entry(ok.id).await.unwrap();
    assert_eq!(one.entry.id, ok.id);
}
