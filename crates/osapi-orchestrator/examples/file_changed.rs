//! Change detection: compare a local file with the store, and upload and
//! deploy only when it differs.
//!
//! DAG: `health-check` → `check-file` (`app-config.yaml`: changed when the
//! store lacks this content) → `upload-file` (`.only_if_changed().force()`)
//! → `deploy-file` (`_all`, mode 0644, `.only_if_changed()`).
//!
//! Prints the run, then `File app-config.yaml changed: <bool> (sha256:
//! <first 12 hex>)`. On a fresh store (always, in embedded mode) the file
//! changed, so it is uploaded and deployed; run it again against the same
//! controller and both later steps skip with `no dependencies changed`.
//!
//! In embedded mode the file goes to a temp dir that is removed at exit;
//! against a real controller it goes to `/tmp/app-config.yaml` (or into
//! `OSAPI_DEPLOY_DIR` when that is set).
//!
//! Relative to upstream: upstream's upload would fail when the store held an
//! older version of the file; the check already decided to replace it, so
//! the upload is forced.
//!
//! `cargo run --example file-changed` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;

const CONFIG: &str = "server:\n  port: 8080\n  debug: false\n";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;
    let path = env.deploy_path("app-config.yaml");

    let health = o.health_check();
    let check = o.file_changed("app-config.yaml", CONFIG).after(&health);
    let upload = o
        .file_upload("app-config.yaml", ContentType::Raw, CONFIG)
        .after(&check)
        .only_if_changed()
        .force();
    let _deploy = o
        .file_deploy(
            "_all",
            FileDeployOpts::new("app-config.yaml", &path).mode("0644"),
        )
        .after(&upload)
        .only_if_changed();

    let report = env.run(&o).await?;

    println!();
    let c: FileChangedResult = report.result(&check)?;
    println!(
        "File {} changed: {} (sha256: {})",
        c.name,
        c.changed,
        c.sha256.get(..12).unwrap_or(&c.sha256)
    );

    env.shutdown().await;
    Ok(())
}
