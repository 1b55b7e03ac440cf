//! File deploy through the job API: raw and template, idempotent against the
//! disk, drift detected and fixed, mode applied.

use std::os::unix::fs::PermissionsExt;

use osapi_api::agent::AgentState;
use osapi_api::job::JobStatus;
use osapi_api::ops::ContentType;
use osapi_api::results::{FileDeployResult, FileStatusResult, FileSyncStatus};
use serde_json::json;

use crate::common::{self, decode};

#[tokio::test]
async fn deploy_raw_twice_then_drift_then_fix() {
    let stack = common::single().await;
    stack
        .client
        .upload_file(
            "app.yaml",
            ContentType::Raw,
            &b"server:\n  port: 8080\n"[..],
            false,
        )
        .await
        .unwrap();
    let path = stack.path("app.yaml");
    let data =
        json!({"object_name": "app.yaml", "path": path, "content_type": "raw", "mode": "0600"});

    let first: FileDeployResult = decode(
        &stack
            .run_job("file.deploy.execute", data.clone(), "_any")
            .await,
    );
    assert!(first.changed);
    assert_eq!(std::fs::read(&path).unwrap(), b"server:\n  port: 8080\n");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let second = stack
        .run_job("file.deploy.execute", data.clone(), "_any")
        .await;
    assert!(
        !decode::<FileDeployResult>(&second).changed,
        "same bytes, same mode: unchanged"
    );
    assert_eq!(second.changed, Some(false));

    let status: FileStatusResult = decode(
        &stack
            .run_job("file.status.get", json!({"path": path}), "_any")
            .await,
    );
    assert_eq!(status.status, FileSyncStatus::InSync);
    assert_eq!(status.sha256.as_deref(), Some(first.sha256.as_str()));

    std::fs::write(&path, b"edited by hand\n").unwrap();
    let status: FileStatusResult = decode(
        &stack
            .run_job("file.status.get", json!({"path": path}), "_any")
            .await,
    );
    assert_eq!(status.status, FileSyncStatus::Drifted);
    assert_ne!(status.sha256.as_deref(), Some(first.sha256.as_str()));

    let fixed: FileDeployResult = decode(
        &stack
            .run_job("file.deploy.execute", data.clone(), "_any")
            .await,
    );
    assert!(fixed.changed, "deploy repairs the drift");
    assert_eq!(std::fs::read(&path).unwrap(), b"server:\n  port: 8080\n");
    let status: FileStatusResult = decode(
        &stack
            .run_job("file.status.get", json!({"path": path}), "_any")
            .await,
    );
    assert_eq!(status.status, FileSyncStatus::InSync);

    // Only the mode differs: still a change.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let chmod: FileDeployResult = decode(&stack.run_job("file.deploy.execute", data, "_any").await);
    assert!(chmod.changed);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let missing: FileStatusResult = decode(
        &stack
            .run_job(
                "file.status.get",
                json!({"path": stack.path("never-deployed")}),
                "_any",
            )
            .await,
    );
    assert_eq!(missing.status, FileSyncStatus::Missing);
    assert!(missing.sha256.is_none());
}

#[tokio::test]
async fn deploy_template_with_vars_facts_and_hostname() {
    let stack = common::fleet().await;
    let template = "listen {{ .Vars.port }}\nhost {{ .Hostname }}\nenv {{ .Facts.facts.env }}\n{{ range .Vars.upstreams }}upstream {{ . }}\n{{ end }}";
    stack
        .client
        .upload_file(
            "site.conf",
            ContentType::Template,
            template.as_bytes().to_vec(),
            false,
        )
        .await
        .unwrap();
    std::fs::create_dir(stack.path("web-01")).unwrap();
    std::fs::create_dir(stack.path("web-02")).unwrap();
    let path = format!("{}/@fact.hostname/site.conf", stack.dir.path().display());
    let data = json!({"object_name": "site.conf", "path": path, "content_type": "template",
                      "vars": {"port": 8080, "upstreams": ["a:1", "b:2"]}});
    let d = stack
        .run_job("file.deploy.execute", data.clone(), "role:web")
        .await;
    assert_eq!(d.status(), JobStatus::Completed, "{d:?}");
    let web1 = std::fs::read_to_string(stack.path("web-01/site.conf")).unwrap();
    assert_eq!(
        web1,
        "listen 8080\nhost web-01\nenv prod\nupstream a:1\nupstream b:2\n"
    );
    let web2 = std::fs::read_to_string(stack.path("web-02/site.conf")).unwrap();
    assert!(
        web2.starts_with("listen 8080\nhost web-02\nenv staging\n"),
        "{web2}"
    );
    let again = stack.run_job("file.deploy.execute", data, "role:web").await;
    assert_eq!(again.changed, Some(false));
    assert!(
        again
            .responses
            .unwrap()
            .values()
            .all(|r| r.changed == Some(false))
    );
}

#[tokio::test]
async fn a_full_file_store_refuses_uploads_and_keeps_what_it_has() {
    let stack = common::builder()
        .agent(|a| a, "agent-1")
        .bus(|b| b.max_object_bytes = 3 << 20)
        .start()
        .await;
    let c = &stack.client;
    let first = vec![b'1'; 2 << 20];
    c.upload_file("first", ContentType::Raw, first.clone(), false)
        .await
        .unwrap();
    let err = c
        .upload_file("second", ContentType::Raw, vec![b'2'; 2 << 20], false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("507") && err.contains("limit"), "{err}");
    // Nothing stored was lost, and replacing within the budget still works.
    let kept = c.file("first").await.unwrap();
    assert_eq!(kept.size, 2 << 20);
    let path = stack.path("first.out");
    let deployed: FileDeployResult = decode(
        &stack
            .run_job(
                "file.deploy.execute",
                json!({"object_name": "first", "path": path, "content_type": "raw"}),
                "_any",
            )
            .await,
    );
    assert!(deployed.changed);
    assert_eq!(std::fs::read(&path).unwrap(), first);
    c.upload_file("first", ContentType::Raw, vec![b'3'; 2 << 20], true)
        .await
        .unwrap();
    assert!(c.file("second").await.is_err());
}

#[tokio::test]
async fn a_deploy_removes_temp_files_left_by_interrupted_ones() {
    let stack = common::single().await;
    stack
        .client
        .upload_file("app.conf", ContentType::Raw, &b"port 80\n"[..], false)
        .await
        .unwrap();
    let dir = stack.dir.path().join("etc");
    std::fs::create_dir(&dir).unwrap();
    // What a crash mid-deploy leaves, a while ago; and one just started by
    // another process (it may still be writing it).
    let stale = dir.join(".app.conf.osapi-0123456789abcdef0123456789abcdef.tmp");
    let fresh = dir.join(".other.osapi-fedcba9876543210fedcba9876543210.tmp");
    let unrelated = dir.join(".keep.tmp");
    for f in [&stale, &fresh, &unrelated] {
        std::fs::write(f, vec![0u8; 1024]).unwrap();
    }
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let path = dir.join("app.conf");
    let d = stack
        .run_job(
            "file.deploy.execute",
            json!({"object_name": "app.conf", "path": path, "content_type": "raw"}),
            "_any",
        )
        .await;
    assert_eq!(d.status(), JobStatus::Completed, "{d:?}");
    assert!(!stale.exists(), "a left-over temporary file is removed");
    assert!(fresh.exists(), "a recent one may be another writer's");
    assert!(
        unrelated.exists(),
        "only our own temporary files are touched"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"port 80\n");
}

/// A deploy records the version of its object it deploys; a client may
/// name the version (refused when the object is another, or when the name
/// is not a digest); a job whose object was replaced while it waited fails
/// instead of deploying other content.
#[tokio::test]
async fn a_deploy_is_of_the_version_it_was_queued_with() {
    let stack = common::single().await;
    let client = &stack.client;
    let first = client
        .upload_file("motd", ContentType::Raw, &b"first\n"[..], false)
        .await
        .unwrap();
    let data = |to: &str, sha: Option<&str>| {
        let mut d = json!({"object_name": "motd", "path": stack.path(to), "content_type": "raw"});
        if let Some(sha) = sha {
            d["object_sha256"] = json!(sha);
        }
        d
    };
    let done = stack
        .run_job("file.deploy.execute", data("a", None), "agent-1")
        .await;
    assert_eq!(done.status(), JobStatus::Completed, "{done:?}");
    let operation = done.operation.clone().unwrap_or_default();
    assert_eq!(operation["data"]["object_sha256"], json!(first.sha256));

    // Named by the client: the current version is accepted, another or a
    // malformed one refused before anything is queued.
    let named = stack
        .run_job(
            "file.deploy.execute",
            data("b", Some(&first.sha256)),
            "agent-1",
        )
        .await;
    assert_eq!(named.status(), JobStatus::Completed, "{named:?}");
    let other = "0".repeat(64);
    let (status, body) = stack
        .admin(
            reqwest::Method::POST,
            "/job",
            Some(json!({"operation": {"type": "file.deploy.execute", "data": data("c", Some(&other))}, "target_hostname": "agent-1"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains(&first.sha256), "{body}");
    let (status, body) = stack
        .admin(
            reqwest::Method::POST,
            "/job",
            Some(json!({"operation": {"type": "file.deploy.execute", "data": data("c", Some("SHA"))}, "target_hostname": "agent-1"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("not a SHA-256 digest"), "{body}");
    assert!(!stack.path("c").exists());

    // Queued while the agent is drained, the object replaced meanwhile.
    client.drain("agent-1").await.unwrap();
    let cordoned = async {
        while client.agent("agent-1").await.unwrap().state != Some(AgentState::Cordoned) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), cordoned)
        .await
        .expect("the agent reports Cordoned");
    let queued = client
        .submit("file.deploy.execute", data("d", None), "agent-1")
        .await
        .unwrap()
        .job_id;
    client
        .upload_file("motd", ContentType::Raw, &b"second\n"[..], true)
        .await
        .unwrap();
    client.undrain("agent-1").await.unwrap();
    let failed = client
        .wait_job(queued, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(failed.status(), JobStatus::Failed, "{failed:?}");
    let error = failed.error.unwrap_or_default();
    assert!(
        error.contains("was replaced after this job was queued"),
        "{error}"
    );
    assert!(!stack.path("d").exists(), "a replaced object was deployed");

    // Retried, it deploys the object as it is now.
    let retried = client.retry_job(queued, Some("agent-1")).await.unwrap();
    let retried = client
        .wait_job(retried.job_id, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(retried.status(), JobStatus::Completed, "{retried:?}");
    assert_eq!(std::fs::read(stack.path("d")).unwrap(), b"second\n");

    // A deleted object's version cannot be named any more.
    client.delete_file("motd").await.unwrap();
    let (status, body) = stack
        .admin(
            reqwest::Method::POST,
            "/job",
            Some(json!({"operation": {"type": "file.deploy.execute", "data": data("e", Some(&first.sha256))}, "target_hostname": "agent-1"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("not in the file store"), "{body}");
}
