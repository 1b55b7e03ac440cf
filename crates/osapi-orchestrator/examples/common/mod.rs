//! Shared set-up of the examples: use the controller named by `OSAPI_URL` and
//! `OSAPI_TOKEN` when both are set; otherwise start an embedded control plane
//! (in this process, on loopback) that changes nothing outside a temp dir.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use osapi_agent::AgentConfig;
use osapi_orchestrator::Embedded;
use osapi_orchestrator::{CancellationToken, Orchestrator, OrchestratorBuilder, Report, RunError};
use tempfile::TempDir;

/// Which agents an embedded control plane runs.
pub enum Fleet {
    /// One agent named after this host.
    Local,
    /// `web-01` (role=web, env=prod), `web-02` (role=web, env=staging),
    /// `db-01` (role=db, env=prod): labels and custom facts alike.
    Three,
}

/// Where the example runs.
pub struct Env {
    pub url: String,
    pub token: String,
    stack: Option<Embedded>,
    dir: TempDir,
}

/// Connects to `OSAPI_URL`/`OSAPI_TOKEN`, or starts an embedded control plane.
pub async fn connect(fleet: Fleet) -> Result<Env> {
    let dir = tempfile::Builder::new()
        .prefix("osapi-example-")
        .tempdir()?;
    if let (Ok(url), Ok(token)) = (std::env::var("OSAPI_URL"), std::env::var("OSAPI_TOKEN"))
        && !url.is_empty()
        && !token.is_empty()
    {
        println!("Using the controller at {url}");
        return Ok(Env {
            url,
            token,
            stack: None,
            dir,
        });
    }
    let configs = match fleet {
        Fleet::Local => vec![AgentConfig::default()],
        Fleet::Three => vec![
            AgentConfig::named("web-01")
                .label("role", "web")
                .label("env", "prod")
                .fact("role", "web")
                .fact("env", "prod"),
            AgentConfig::named("web-02")
                .label("role", "web")
                .label("env", "staging")
                .fact("role", "web")
                .fact("env", "staging"),
            AgentConfig::named("db-01")
                .label("role", "db")
                .label("env", "prod")
                .fact("role", "db")
                .fact("env", "prod"),
        ],
    };
    // Sandboxed by default: DNS updates and deploys stay in a temp dir.
    let mut builder = Embedded::builder();
    for c in configs {
        builder = builder.agent(c);
    }
    let stack = builder
        .start()
        .await
        .context("cannot start the embedded control plane")?;
    println!(
        "Started an embedded control plane at {} with agent(s): {} (set OSAPI_URL and OSAPI_TOKEN to use your own)",
        stack.url(),
        stack.agent_names().join(", ")
    );
    Ok(Env {
        url: stack.url().to_string(),
        token: stack.token().to_string(),
        stack: Some(stack),
        dir,
    })
}

impl Env {
    /// Orchestrator options for this controller.
    pub fn builder(&self) -> OrchestratorBuilder {
        Orchestrator::builder(&self.url, &self.token)
    }

    /// An orchestrator with default options.
    pub fn orchestrator(&self) -> Result<Orchestrator> {
        Ok(self.builder().build()?)
    }

    /// True when running against the embedded control plane.
    pub fn embedded(&self) -> bool {
        self.stack.is_some()
    }

    /// A path for files the example deploys: under `OSAPI_DEPLOY_DIR` when
    /// set, else inside a temp dir in embedded mode and under /tmp against a
    /// real controller (as upstream's examples).
    pub fn deploy_path(&self, name: &str) -> String {
        if let Some(dir) = std::env::var_os("OSAPI_DEPLOY_DIR").filter(|d| !d.is_empty()) {
            PathBuf::from(dir).join(name).display().to_string()
        } else if self.embedded() {
            self.dir.path().join(name).display().to_string()
        } else {
            PathBuf::from("/tmp").join(name).display().to_string()
        }
    }

    /// Runs the plan; Ctrl-C cancels it cleanly.
    pub async fn run(&self, o: &Orchestrator) -> Result<Report, RunError> {
        let cancel = CancellationToken::new();
        let on_ctrl_c = cancel.clone();
        let watcher = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_ctrl_c.cancel();
            }
        });
        let result = o.run_with(cancel).await;
        watcher.abort();
        result
    }

    /// Stops the embedded control plane, if any.
    pub async fn shutdown(self) {
        if let Some(stack) = self.stack {
            stack.shutdown().await;
        }
    }
}

/// Bytes as GiB with one decimal (`12.3 GiB`).
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// Labels (or any string map) as `k=v, k=v`, sorted by key.
pub fn key_values(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when this process runs as root (the owner of `/proc/self`), so a
/// deployed file may be given to root.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Prints `File <path> status: <status>` when every host agrees, else one
/// line per host. (Deploys go to `_all`: with several agents, `_any` could
/// deploy on one host and ask another for the status.)
pub fn print_file_status(
    report: &Report,
    status: &osapi_orchestrator::Step<osapi_orchestrator::types::FileStatusResult>,
    path: &str,
) -> Result<()> {
    let mut statuses = Vec::new();
    for host in report.host_results(status) {
        let s: osapi_orchestrator::types::FileStatusResult = host.decode()?;
        statuses.push((host.hostname.clone(), s.status.as_str()));
    }
    match statuses.first() {
        Some((_, first)) if statuses.iter().all(|(_, s)| s == first) => {
            println!("File {path} status: {first}");
        }
        _ => {
            for (host, s) in statuses {
                println!("File {path} on {host}: {s}");
            }
        }
    }
    Ok(())
}

impl Env {
    /// Says so when no agent of the controller reports the custom fact
    /// `key` (an example that relies on it would otherwise print an empty
    /// result); true when some agent does.
    pub async fn has_custom_fact(&self, o: &Orchestrator, key: &str) -> Result<bool> {
        let agents = o.discover(&[]).await?;
        let found = agents
            .iter()
            .any(|a| osapi_orchestrator::predicate::fact_text(a, key).is_some());
        if !found {
            println!(
                "No agent of {} reports the custom fact `{key}` ({} listed): this \
                 example needs agents started with `agent.facts: {{{key}: …}}` in their \
                 osapi.yaml (the embedded fleet has them).",
                self.url,
                agents.len()
            );
        }
        Ok(found)
    }
}
