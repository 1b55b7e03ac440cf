//! File deployment: upload a file to the controller's store, deploy it to a
//! host, then ask whether the host's copy is still as deployed.
//!
//! DAG: `health-check` → `upload-file` (`app-config.yaml`, raw) →
//! `deploy-file` (`_all`, mode 0644; owner and group root only when this
//! process runs as root) → `file-status` (`_all`).
//!
//! Prints the run, then `File <path> status: in-sync`.
//!
//! In embedded mode the file goes to a temp dir that is removed at exit;
//! against a real controller it goes to `/tmp/app-config.yaml` (or into
//! `OSAPI_DEPLOY_DIR` when that is set).
//!
//! Relative to upstream: upstream crashed on a second run against the same
//! controller, because uploading unchanged content returned no result. Our
//! upload of identical content is simply `unchanged` (different content is
//! an error unless the step is `.force()`d: see `file-force-upload`), so the
//! example can run any number of times. Upstream also always asked for
//! owner root, which fails for an unprivileged agent.
//!
//! `cargo run --example file-deploy` (embedded control plane), or with
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
        .after(&health);
    let deploy = o.file_deploy("_all", opts).after(&upload);
    let status = o.file_status_get("_all", &path).after(&deploy);

    let report = env.run(&o).await?;

    println!();
    common::print_file_status(&report, &status, &path)?;

    env.shutdown().await;
    Ok(())
}
