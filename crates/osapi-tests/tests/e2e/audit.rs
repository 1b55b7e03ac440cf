//! The audit log cannot be flushed or spoofed, and says what was done:
//! denied requests are kept apart from allowed ones, the source address is
//! the peer unless the peer is a trusted proxy, and entries of requests that
//! started something record the operation, target, job and command.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common;

#[tokio::test]
async fn denied_requests_cannot_flush_allowed_entries() {
    let stack = common::builder()
        .agent(|a| a, "agent-1")
        .bus(|b| b.max_audit_entries = 50)
        .start()
        .await;
    let job = stack
        .run_job(
            "command.exec.execute",
            json!({"command": "echo", "args": ["hello", "world"]}),
            "_any",
        )
        .await;
    let nobody = stack.emb.mint_token(&[], &["health:read"]).unwrap();
    for _ in 0..200 {
        let (status, _) = stack.call(Method::GET, "/audit", Some(&nobody), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // Nor can a flood of allowed reads.
    let reader = stack.emb.mint_token(&["read"], &[]).unwrap();
    for _ in 0..200 {
        let (status, _) = stack.call(Method::GET, "/agent", Some(&reader), None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let entries = stack.client.audit_export().await.unwrap().items;
    let created = entries
        .iter()
        .find(|e| e.method == "POST" && e.path == "/job")
        .expect("the admin's job is still in the log");
    assert_eq!(created.response_code, 201);
    assert_eq!(
        created.action.operation.as_deref(),
        Some("command.exec.execute")
    );
    assert_eq!(created.action.target.as_deref(), Some("_any"));
    assert_eq!(created.action.job_id, job.id);
    assert_eq!(created.action.command.as_deref(), Some("echo"));
    assert_eq!(
        created.action.args,
        Some(vec!["hello".to_string(), "world".to_string()])
    );
    let denied = entries.iter().filter(|e| e.response_code == 403).count();
    assert_eq!(denied, 50, "denied entries have their own cap");
    let reads = entries
        .iter()
        .filter(|e| e.method == "GET" && e.response_code == 200)
        .count();
    assert_eq!(reads, 50, "reads have their own cap");
    // Pages merge both logs newest first.
    let page = stack.client.audit(10, 5).await.unwrap();
    assert_eq!(page.items.len(), 10);
    assert!(page.total_items >= 101);
    assert!(page.items.windows(2).all(|w| w[0].ended() >= w[1].ended()));
    // No token reaches the log.
    let raw = serde_json::to_string(&entries).unwrap();
    assert!(!raw.contains(stack.emb.token()));
    assert!(!raw.contains(&nobody));
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let spoof = |stack: &common::Stack, ip: &'static str| {
        let req = stack
            .http
            .get(stack.url("/agent"))
            .bearer_auth(stack.emb.token())
            .header("x-forwarded-for", ip)
            .header("x-real-ip", ip);
        async move { assert!(req.send().await.unwrap().status().is_success()) }
    };
    let last_agent_entry = |entries: Vec<osapi_api::audit::AuditEntry>| {
        entries
            .into_iter()
            .find(|e| e.path == "/agent")
            .expect("entry")
            .source_ip
    };

    let untrusted = common::single().await;
    spoof(&untrusted, "6.6.6.6").await;
    let entries = untrusted.client.audit_export().await.unwrap().items;
    assert_eq!(last_agent_entry(entries), "127.0.0.1");

    let behind_proxy = common::builder()
        .agent(|a| a, "agent-1")
        .server(|c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()])
        .start()
        .await;
    spoof(&behind_proxy, "203.0.113.9").await;
    let entries = behind_proxy.client.audit_export().await.unwrap().items;
    assert_eq!(last_agent_entry(entries), "203.0.113.9");
}

#[tokio::test]
async fn changes_record_what_and_reads_do_not() {
    let stack = common::single().await;
    stack
        .admin(
            Method::POST,
            "/node/agent-1/command/shell",
            Some(json!({"command": "echo audited"})),
        )
        .await;
    stack
        .admin(Method::GET, "/node/agent-1/hostname", None)
        .await;
    let entries = stack.client.audit_export().await.unwrap().items;
    let shell = entries
        .iter()
        .find(|e| e.path == "/node/agent-1/command/shell")
        .unwrap();
    assert_eq!(
        shell.action.operation.as_deref(),
        Some("command.shell.execute")
    );
    assert_eq!(shell.action.command.as_deref(), Some("echo audited"));
    assert_eq!(shell.action.target.as_deref(), Some("agent-1"));
    assert!(shell.action.job_id.is_some());
    let read = entries
        .iter()
        .find(|e| e.path == "/audit/export")
        .map(|e| e.action.is_empty());
    assert_ne!(read, Some(false));
}

#[tokio::test]
async fn a_request_whose_client_left_is_still_audited() {
    let stack = common::single().await;
    let marker = stack.path("ran");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let gave_up = client
        .post(stack.url("/node/agent-1/command/shell"))
        .bearer_auth(stack.emb.token())
        .json(&json!({"command": format!("sleep 1; touch {}", marker.display())}))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client gives up before the answer");
    let entry = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let entries = stack.client.audit_export().await.unwrap().items;
            if let Some(e) = entries
                .into_iter()
                .find(|e| e.path == "/node/agent-1/command/shell")
            {
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the request is in the log");
    assert_eq!(entry.response_code, 499);
    assert!(entry.action.job_id.is_some(), "{entry:?}");
    assert_eq!(
        entry.action.command.as_deref(),
        Some(format!("sleep 1; touch {}", marker.display()).as_str())
    );
}
