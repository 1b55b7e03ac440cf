//! Happy path of every endpoint, asserting bodies, at the root and under /api.

use std::time::Duration;

use osapi_api::job::JobStatus;
use osapi_api::ops::ContentType;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common;

#[tokio::test]
async fn health_endpoints() {
    let stack = common::single().await;
    for prefix in ["", "/api"] {
        let (s, b) = stack
            .call(Method::GET, &format!("{prefix}/health"), None, None)
            .await;
        assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
        let (s, b) = stack
            .call(Method::GET, &format!("{prefix}/health/ready"), None, None)
            .await;
        assert_eq!((s, b), (StatusCode::OK, json!({"status": "ready"})));
    }
    let status = stack.client.status().await.unwrap();
    assert_eq!(status.status, "ok");
    assert_eq!(status.components["bus"].status, "ok");
    assert_eq!(status.version, osapi_api::VERSION);
    assert_eq!(status.nats.as_ref().unwrap().url, "memory://");
    let agents = status.agents.unwrap();
    assert_eq!(agents.total, 1);
    assert_eq!(agents.agents[0].hostname, "agent-1");
    assert!(agents.agents[0].registered.ends_with(" ago"));
    assert!(status.jobs.is_some());
}

#[tokio::test]
async fn agent_endpoints() {
    let stack = common::fleet().await;
    let list = stack.client.agents().await.unwrap();
    assert_eq!(list.total, 3);
    let names: Vec<_> = list.agents.iter().map(|a| a.hostname.as_str()).collect();
    assert_eq!(names, ["db-01", "web-01", "web-02"]);
    let web = &list.agents[1];
    assert_eq!(web.labels["group"], "web.dev.us-east");
    assert_eq!(web.facts["env"], "prod");
    assert_eq!(web.state, Some(osapi_api::agent::AgentState::Ready));
    assert!(web.cpu_count.unwrap() >= 1);
    assert!(web.architecture.is_some());
    assert_eq!(web.conditions.len(), 3);
    assert!(web.memory.as_ref().unwrap().total > 0);
    // Upstream's sanitised lookup: web_01 finds web-01.
    let one = stack.client.agent("web_01").await.unwrap();
    assert_eq!(one.hostname, "web-01");
    let drained = stack.client.drain("web-02").await.unwrap();
    assert_eq!(drained.message, "drain initiated for agent web-02");
    let undrained = stack.client.undrain("web-02").await.unwrap();
    assert_eq!(undrained.message, "undrain initiated for agent web-02");
    let detail = stack.client.agent("web-02").await.unwrap();
    let events: Vec<_> = detail.timeline.iter().map(|e| e.event.as_str()).collect();
    assert!(
        events.starts_with(&["drain"]) && events.contains(&"undrain"),
        "{events:?}"
    );
}

#[tokio::test]
async fn job_endpoints() {
    let stack = common::single().await;
    let (s, created) = stack
        .admin(
            Method::POST,
            "/api/job",
            Some(json!({"operation": {"type": "node.hostname.get"}, "target_hostname": "_any"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(created["status"], "created");
    assert!(created["revision"].as_u64().unwrap() >= 1);
    let id: uuid::Uuid = created["job_id"].as_str().unwrap().parse().unwrap();
    let (s, done) = stack
        .admin(Method::GET, &format!("/job/{id}?wait=10s"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["hostname"], "agent-1");
    assert_eq!(
        done["result"]["hostname"],
        nix::unistd::gethostname().unwrap().to_str().unwrap()
    );
    assert_eq!(done["result"]["changed"], false);
    assert_eq!(done["agent_states"]["agent-1"]["status"], "completed");
    let events: Vec<_> = done["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["submitted", "acknowledged", "started", "completed"]
    );
    assert_eq!(done["timeline"][0]["message"], "Job submitted to queue");

    let list = stack.client.jobs(None, 10, 0).await.unwrap();
    assert_eq!(list.total_items, 1);
    assert_eq!(list.items[0].id, Some(id));
    assert!(
        list.items[0].timeline.is_none(),
        "list items omit the timeline"
    );
    let filtered = stack
        .client
        .jobs(Some(JobStatus::Failed), 10, 0)
        .await
        .unwrap();
    assert_eq!(filtered.total_items, 0);

    let retried = stack.client.retry_job(id, None).await.unwrap();
    assert_ne!(retried.job_id, id);
    let again = stack
        .client
        .wait_job(retried.job_id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(again.status(), JobStatus::Completed);
    let original = stack.client.job(id).await.unwrap();
    let last = original.timeline.unwrap().pop().unwrap();
    assert_eq!(last.event, "retried");
    assert_eq!(last.message, format!("Job retried as {}", retried.job_id));

    let stats = stack.client.job_stats().await.unwrap();
    assert_eq!(stats.total_jobs, 2);
    assert_eq!(stats.status_counts["completed"], 2);
    assert_eq!(stats.status_counts["partial_failure"], 0);
    assert_eq!(stats.operation_counts["node.hostname.get"], 2);

    let (s, body) = stack
        .admin(Method::DELETE, &format!("/job/{id}"), None)
        .await;
    assert_eq!((s, body), (StatusCode::NO_CONTENT, serde_json::Value::Null));
    assert_eq!(stack.client.job(id).await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn file_endpoints() {
    let stack = common::single().await;
    let up = stack
        .client
        .upload_file("app.conf", ContentType::Raw, &b"port: 8080\n"[..], false)
        .await
        .unwrap();
    assert!(up.changed);
    assert_eq!(up.size, 11);
    assert_eq!(up.sha256.len(), 64);
    assert_eq!(up.content_type, "raw");
    let same = stack
        .client
        .upload_file("app.conf", ContentType::Raw, &b"port: 8080\n"[..], false)
        .await
        .unwrap();
    assert!(!same.changed);
    let conflict = stack
        .client
        .upload_file("app.conf", ContentType::Raw, &b"port: 9090\n"[..], false)
        .await
        .unwrap_err();
    assert_eq!(conflict.status(), Some(409));
    assert!(conflict.message().contains("use force"), "{conflict}");
    let forced = stack
        .client
        .upload_file(
            "app.conf",
            ContentType::Template,
            &b"port: {{ .Vars.port }}\n"[..],
            true,
        )
        .await
        .unwrap();
    assert!(forced.changed);
    let info = stack.client.file("app.conf").await.unwrap();
    assert_eq!(info.sha256, forced.sha256);
    assert_eq!(info.content_type, "template");
    let list = stack.client.files().await.unwrap();
    assert_eq!(list.total, 1);
    assert_eq!(list.files[0].name, "app.conf");
    let deleted = stack.client.delete_file("app.conf").await.unwrap();
    assert!(deleted.deleted);
    assert_eq!(
        stack.client.file("app.conf").await.unwrap_err().status(),
        Some(404)
    );
    // Names needing URL escaping round-trip.
    stack
        .client
        .upload_file("my file.txt", ContentType::Raw, &b"x"[..], false)
        .await
        .unwrap();
    assert_eq!(stack.client.file("my file.txt").await.unwrap().size, 1);
}

#[tokio::test]
async fn node_endpoints() {
    let stack = common::single().await;
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let c = &stack.client;
    let r = c.node_hostname("agent-1").await.unwrap();
    assert!(r.job_id.is_some());
    assert_eq!(r.results[0].hostname, host);
    let r = c.node_status("_any").await.unwrap();
    let item = &r.results[0];
    assert!(item.uptime.as_ref().unwrap().contains("day"));
    assert!(item.memory.as_ref().unwrap().total > 0);
    assert!(!item.disks.as_ref().unwrap().is_empty());
    assert!(!item.os_info.as_ref().unwrap().distribution.is_empty());
    let r = c.node_disk("agent-1").await.unwrap();
    assert!(
        r.results[0]
            .disks
            .as_ref()
            .unwrap()
            .iter()
            .any(|d| d.total > 0)
    );
    let r = c.node_memory("agent-1").await.unwrap();
    let m = r.results[0].memory.as_ref().unwrap();
    assert!(m.total >= m.used && m.total >= m.free);
    let r = c.node_load("agent-1").await.unwrap();
    assert!(r.results[0].load_average.as_ref().unwrap().one_min >= 0.0);
    let r = c.node_os("agent-1").await.unwrap();
    assert!(
        !r.results[0]
            .os_info
            .as_ref()
            .unwrap()
            .distribution
            .is_empty()
    );
    let r = c.node_uptime("agent-1").await.unwrap();
    assert!(r.results[0].uptime.as_ref().unwrap().ends_with('s'));
    let r = c.node_ping("agent-1", "127.0.0.1").await.unwrap();
    assert_eq!(r.results[0].packets_received, Some(3));
    assert!(r.results[0].avg_rtt.as_ref().unwrap().ends_with("ms"));
    let r = c.node_dns("agent-1", "eth0").await.unwrap();
    assert_eq!(
        r.results[0].servers.as_deref(),
        Some(&["10.0.0.53".to_string(), "10.0.0.54".to_string()][..])
    );
    assert_eq!(
        r.results[0].search_domains.as_deref(),
        Some(&["corp.example".to_string()][..])
    );
    let upd = osapi_api::node::DnsUpdateRequest {
        interface_name: "eth0".into(),
        servers: Some(vec!["10.1.1.1".into()]),
        search_domains: None,
    };
    let r = c.node_dns_update("agent-1", &upd).await.unwrap();
    assert_eq!(r.results[0].status, "ok");
    assert!(r.results[0].changed);
    let r = c.node_dns_update("agent-1", &upd).await.unwrap();
    assert!(!r.results[0].changed, "same servers again: no change");
    let exec = osapi_api::node::CommandExecRequest {
        command: "echo".into(),
        args: vec!["hi".into()],
        ..Default::default()
    };
    let r = c.node_exec("agent-1", &exec).await.unwrap();
    assert_eq!(r.results[0].stdout.as_deref(), Some("hi\n"));
    assert_eq!(r.results[0].exit_code, Some(0));
    assert_eq!(r.results[0].changed, Some(true));
    let shell = osapi_api::node::CommandShellRequest {
        command: "echo a | tr a b; exit 4".into(),
        ..Default::default()
    };
    let r = c.node_shell("agent-1", &shell).await.unwrap();
    assert_eq!(r.results[0].stdout.as_deref(), Some("b\n"));
    assert_eq!(r.results[0].exit_code, Some(4));
    c.upload_file("motd", ContentType::Raw, &b"hello\n"[..], false)
        .await
        .unwrap();
    let path = stack.path("motd");
    let deploy = osapi_api::node::FileDeployRequest {
        object_name: "motd".into(),
        path: path.to_str().unwrap().into(),
        content_type: "raw".into(),
        ..Default::default()
    };
    let r = c.node_file_deploy("agent-1", &deploy).await.unwrap();
    assert!(r.changed);
    assert_eq!(r.hostname, "agent-1");
    assert_eq!(std::fs::read(&path).unwrap(), b"hello\n");
    let r = c
        .node_file_status("agent-1", path.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(r.status, "in-sync");
    assert_eq!(r.sha256.unwrap().len(), 64);
}

#[tokio::test]
async fn openapi_and_unknown_routes() {
    let stack = common::single().await;
    let doc = stack.client.openapi().await.unwrap();
    assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    for path in [
        "/job",
        "/job/{id}",
        "/node/{hostname}/command/exec",
        "/file",
        "/audit/{id}",
        "/agent/{hostname}/drain",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["JobDetail"].is_object());
    assert!(doc["components"]["securitySchemes"]["BearerAuth"].is_object());
    // Each synchronous route documents its operation's permission, and the
    // job routes list every operation's.
    for (method, path, perm) in [
        ("get", "/node/{hostname}", "node:read"),
        ("get", "/node/{hostname}/uptime", "node:read"),
        ("post", "/node/{hostname}/network/ping", "network:read"),
        (
            "get",
            "/node/{hostname}/network/dns/{interfaceName}",
            "network:read",
        ),
        ("put", "/node/{hostname}/network/dns", "network:write"),
        ("post", "/node/{hostname}/command/exec", "command:execute"),
        ("post", "/node/{hostname}/command/shell", "command:execute"),
        ("post", "/node/{hostname}/file/deploy", "file:write"),
        ("post", "/node/{hostname}/file/status", "file:read"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"][0]["BearerAuth"],
            serde_json::json!([perm]),
            "{method} {path}"
        );
    }
    for path in ["/job", "/job/{id}/retry"] {
        let text = doc["paths"][path]["post"]["description"].as_str().unwrap();
        assert!(
            text.contains("| `command.shell.execute` | `command:execute` |")
                && text.contains("| `network.dns.update` | `network:write` |"),
            "{path}: {text}"
        );
    }
    let (s, b) = stack.admin(Method::GET, "/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(b["error"].as_str().unwrap().contains("/nope"));
    let (s, b) = stack.admin(Method::PATCH, "/job", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(b["error"].as_str().is_some());
}

/// Once the controller is told to stop, `/health/ready` says so (a load
/// balancer stops sending work there) while requests still reach it.
#[tokio::test]
async fn ready_says_shutting_down_once_the_controller_stops() {
    let common::Stack { emb, .. } = common::single().await;
    let client = emb.client().unwrap();
    assert_eq!(client.ready().await.unwrap().status, "ready");
    emb.shutdown().await;
    let ready = client.ready().await.unwrap();
    assert_eq!(ready.status, "not_ready");
    assert!(
        ready
            .error
            .as_deref()
            .is_some_and(|e| e.contains("the controller is shutting down")),
        "{ready:?}"
    );
}
