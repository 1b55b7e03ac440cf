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

/// Requests refused for their content (400, 404 …) are kept apart from
/// changes too: a token allowed to call a route cannot push an admin's
/// change out of the log by sending it bad requests; and no client text
/// makes an entry large.
#[tokio::test]
async fn refused_requests_and_huge_paths_cannot_flush_changes() {
    let stack = common::builder()
        .agent(|a| a, "agent-1")
        .bus(|b| {
            b.max_audit_entries = 50;
            b.max_audit_bytes = 512 << 10;
        })
        .start()
        .await;
    let job = stack
        .run_job("command.shell.execute", json!({"command": "true"}), "_any")
        .await;
    let reader = stack.emb.mint_token(&["read"], &[]).unwrap();
    for _ in 0..100 {
        let (status, _) = stack
            .call(
                Method::POST,
                "/node/nobody/network/ping",
                Some(&reader),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let job_writer = stack.emb.mint_token(&[], &["job:write"]).unwrap();
    for _ in 0..100 {
        let body =
            json!({"operation": {"type": "no.such.op", "data": {}}, "target_hostname": "_any"});
        let (status, _) = stack
            .call(Method::POST, "/job", Some(&job_writer), Some(body))
            .await;
        assert!(status.is_client_error(), "{status}");
    }
    let nobody = stack.emb.mint_token(&[], &["health:read"]).unwrap();
    let long_path = format!("/agent/{}", "a".repeat(60_000));
    for _ in 0..100 {
        let (status, _) = stack
            .call(Method::DELETE, &long_path, Some(&nobody), None)
            .await;
        assert!(status.is_client_error(), "{status}");
    }
    let entries = stack.client.audit_export().await.unwrap().items;
    let created = entries
        .iter()
        .find(|e| e.method == "POST" && e.path == "/job" && e.response_code == 201)
        .expect("the admin's job is still in the log");
    assert_eq!(created.action.job_id, job.id);
    let longest = entries.iter().map(|e| e.path.len()).max().unwrap_or(0);
    assert!(
        longest <= osapi_api::audit::AUDIT_FIELD_LIMIT,
        "a path of {longest} bytes was kept"
    );
    let refused = entries.iter().filter(|e| e.response_code >= 400).count();
    assert!(refused <= 50, "{refused} refused entries kept");
}

/// Files and jobs changed through the API say what was done: the file's
/// name (never its content), a deploy's path, mode and owner, the job a
/// delete cancelled and the job a retry created.
#[tokio::test]
async fn file_and_job_changes_record_what() {
    let stack = common::single().await;
    let secret = "content-that-must-not-be-logged";
    stack
        .client
        .upload_file(
            "app.conf",
            osapi_api::ops::ContentType::Raw,
            secret.as_bytes().to_vec(),
            false,
        )
        .await
        .unwrap();
    let target = stack.path("app.conf");
    let deploy = stack
        .run_job(
            "file.deploy.execute",
            json!({"object_name": "app.conf", "path": target, "mode": "0640", "content_type": "raw"}),
            "agent-1",
        )
        .await;
    let first = deploy.id.unwrap();
    let retried = stack.client.retry_job(first, None).await.unwrap();
    stack.client.delete_job(retried.job_id).await.unwrap();
    stack.client.delete_file("app.conf").await.unwrap();

    let entries = stack.client.audit_export().await.unwrap().items;
    let find = |method: &str, path: &str| {
        entries
            .iter()
            .find(|e| e.method == method && e.path == path)
            .unwrap_or_else(|| panic!("no entry for {method} {path}: {entries:#?}"))
    };
    let upload = find("POST", "/file");
    assert_eq!(upload.action.file.as_deref(), Some("app.conf"));
    let created = entries
        .iter()
        .find(|e| e.path == "/job" && e.action.job_id == Some(first))
        .expect("the deploy job's entry");
    assert_eq!(
        created.action.operation.as_deref(),
        Some("file.deploy.execute")
    );
    assert_eq!(created.action.file.as_deref(), Some("app.conf"));
    assert_eq!(
        created.action.file_path.as_deref(),
        Some(target.display().to_string().as_str())
    );
    assert_eq!(created.action.file_mode.as_deref(), Some("0640"));
    assert_eq!(created.action.target.as_deref(), Some("agent-1"));
    let retry = find("POST", &format!("/job/{first}/retry"));
    assert_eq!(retry.action.retry_of, Some(first));
    assert_eq!(retry.action.job_id, Some(retried.job_id));
    let deleted = find("DELETE", &format!("/job/{}", retried.job_id));
    assert_eq!(deleted.action.job_id, Some(retried.job_id));
    let removed = find("DELETE", "/file/app.conf");
    assert_eq!(removed.action.file.as_deref(), Some("app.conf"));
    let raw = serde_json::to_string(&entries).unwrap();
    assert!(!raw.contains(secret), "file content reached the log");
}
