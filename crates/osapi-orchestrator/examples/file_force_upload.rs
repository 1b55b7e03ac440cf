//! Forced upload: like `file-deploy`, but the upload step is `.force()`d, so
//! it always replaces the stored object and reports `changed`, whatever the
//! store held before.
//!
//! DAG: `health-check` → `upload-file` (`app-config.yaml`, raw, forced) →
//! `deploy-file` (`_all`, mode 0644; owner and group root only when this
//! process runs as root) → `file-status` (`_all`).
//!
//! Prints the run (`[changed] upload-file`), then the uploaded object's
//! SHA-256 and `File <path> status: in-sync`.
//!
//! In embedded mode the file goes to a temp dir that is removed at exit;
//! against a real controller it goes to `/tmp/app-config.yaml` (or into
//! `OSAPI_DEPLOY_DIR` when that is set).
//!
//! Relative to upstream: the same plan; the deploy asks for owner root only
//! when that can work.
//!
//! `cargo run --example file-force-upload` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;

const CONFIG: &str = "server:\n  port: 8080\n  debug: false\n";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;
    let path = env.deploy_path("app-config.yaml");

    let mut opts = FileDeployOpts::new("app-config.yaml", &path).mode("0644");
    if common::running_as_root() {
        opts = opts.owner("root").group("root");
    }

    let health = o.health_check();
    let upload = o
        .file_upload("app-config.yaml", ContentType::Raw, CONFIG)
        .force()
        .after(&health);
    let deploy = o.file_deploy("_all", opts).after(&upload);
    let status = o.file_status_get("_all", &path).after(&deploy);

    let report = env.run(&o).await?;

    println!();
    let up: FileUploadResult = report.result(&upload)?;
    println!(
        "Uploaded {} ({} bytes, sha256: {}, changed: {})",
        up.name,
        up.size,
        up.sha256.get(..12).unwrap_or(&up.sha256),
        up.changed
    );
    common::print_file_status(&report, &status, &path)?;

    env.shutdown().await;
    Ok(())
}
