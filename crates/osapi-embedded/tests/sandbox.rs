//! A default embedded stack changes nothing on the machine outside its
//! sandbox: DNS updates change the agent's copy of resolv.conf, deploys land
//! under its file root.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::time::Duration;

use osapi_api::ops::ContentType;
use osapi_api::ops::{DnsUpdateParams, FileDeployParams, op};
use osapi_embedded::{AgentConfig, Embedded};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn agents_work_in_the_sandbox_by_default() {
    let real_resolv = std::fs::read("/etc/resolv.conf").ok();
    let stack = Embedded::builder()
        .agent(AgentConfig::named("web-01"))
        .start()
        .await
        .unwrap();
    let home = stack.sandbox_dir().unwrap().join("web-01");
    let client = stack.client().unwrap();

    let update = DnsUpdateParams {
        servers: Some(vec!["192.0.2.53".into()]),
        ..Default::default()
    };
    let r = client
        .run::<op::NetworkDnsUpdate>("web-01", &update, WAIT)
        .await
        .unwrap()
        .result()
        .unwrap();
    assert!(r.changed);
    let copy = std::fs::read_to_string(home.join("resolv.conf")).unwrap();
    assert!(copy.contains("192.0.2.53"), "{copy}");
    assert_eq!(std::fs::read("/etc/resolv.conf").ok(), real_resolv);

    client
        .upload_file("motd", ContentType::Raw, &b"sandboxed\n"[..], false)
        .await
        .unwrap();
    let deploy = FileDeployParams {
        object_name: "motd".into(),
        path: "/etc/osapi-embedded-sandbox-test/motd".into(),
        ..Default::default()
    };
    let d = client
        .run::<op::FileDeploy>("web-01", &deploy, WAIT)
        .await
        .unwrap()
        .result()
        .unwrap();
    assert_eq!(d.path, "/etc/osapi-embedded-sandbox-test/motd");
    assert_eq!(
        std::fs::read(home.join("root/etc/osapi-embedded-sandbox-test/motd")).unwrap(),
        b"sandboxed\n"
    );
    assert!(!std::path::Path::new("/etc/osapi-embedded-sandbox-test").exists());

    // Dropping the stack removes the sandbox.
    let dir = stack.sandbox_dir().unwrap().to_path_buf();
    stack.shutdown().await;
    assert!(!dir.exists());
}

#[tokio::test]
async fn real_host_means_no_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentConfig::named("real-01");
    agent.providers.resolv_conf = dir.path().join("resolv.conf");
    std::fs::write(&agent.providers.resolv_conf, "nameserver 127.0.0.1\n").unwrap();
    agent.providers.resolvectl = osapi_embedded::ResolvectlMode::Never;
    let stack = Embedded::builder()
        .real_host()
        .agent(agent)
        .start()
        .await
        .unwrap();
    assert!(stack.sandbox_dir().is_none());
    stack.shutdown().await;
}
