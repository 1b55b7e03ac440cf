//! `osapi client …`: REST calls against a controller, printing JSON.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use osapi_api::format::parse_duration;
use osapi_api::job::{CreateJobRequest, JobDetail, JobStatus};
use osapi_api::ops::{ContentType, Operation};
use osapi_client::Client;
use serde::Serialize;
use uuid::Uuid;

use crate::config::OsapiFile;

/// Connection options and the command.
#[derive(Args)]
pub struct ClientArgs {
    /// Controller URL (default: api.client.url, then OSAPI_URL).
    #[arg(long, env = "OSAPI_URL")]
    url: Option<String>,
    /// Bearer token (default: api.client.security.bearer_token, then OSAPI_TOKEN).
    #[arg(long, env = "OSAPI_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Health endpoints.
    Health {
        #[command(subcommand)]
        which: Option<HealthCommand>,
    },
    /// Agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Files in the store.
    #[command(subcommand)]
    File(FileCommand),
    /// Audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The controller's Prometheus metrics, as text.
    Metrics,
}

#[derive(Subcommand)]
enum HealthCommand {
    /// Readiness.
    Ready,
    /// Detailed status.
    Status,
}

#[derive(Subcommand)]
enum AgentCommand {
    /// List agents.
    List,
    /// One agent.
    Get { hostname: String },
    /// Stop sending jobs to an agent.
    Drain { hostname: String },
    /// Resume sending jobs to an agent.
    Undrain { hostname: String },
}

#[derive(Args)]
struct JobSpec {
    /// Target: _any, _all, a hostname or key:value.
    #[arg(short, long, default_value = "_any")]
    target: String,
    /// Operation type, e.g. node.hostname.get.
    operation: String,
    /// Operation data as JSON, e.g. '{"command":"uptime"}'.
    #[arg(long, default_value = "{}")]
    data: String,
}

impl JobSpec {
    fn request(&self) -> Result<CreateJobRequest> {
        let data: serde_json::Value = serde_json::from_str(&self.data)
            .with_context(|| format!("--data is not valid JSON: {}", self.data))?;
        if !data.is_object() {
            bail!("--data must be a JSON object");
        }
        Ok(CreateJobRequest::new(&self.operation, data, &self.target))
    }
}

#[derive(Subcommand)]
enum JobCommand {
    /// Queue a job and print its id.
    Create(JobSpec),
    /// Queue a job, wait for it, print the result.
    Run {
        #[command(flatten)]
        spec: JobSpec,
        /// Longest wait.
        #[arg(long, default_value = "5m")]
        timeout: String,
    },
    /// Show a job (optionally long-polling until it ends).
    Get {
        id: String,
        /// Wait up to this long for the job to end.
        #[arg(long)]
        wait: Option<String>,
    },
    /// List jobs.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Counts per status and operation.
    Status,
    /// Delete a job.
    Delete { id: String },
    /// Run a job's operation again.
    Retry {
        id: String,
        #[arg(short, long)]
        target: Option<String>,
    },
}

#[derive(Subcommand)]
enum FileCommand {
    /// Upload a file.
    Upload {
        /// Object name.
        name: String,
        /// Local file.
        path: PathBuf,
        /// raw or template.
        #[arg(long, default_value = "raw")]
        content_type: String,
        /// Replace an object with other content.
        #[arg(long)]
        force: bool,
    },
    /// List files.
    List,
    /// One file's metadata.
    Get { name: String },
    /// Delete a file.
    Delete { name: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recent entries.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
}

/// How results are printed: JSON for scripts, a table for a person.
#[derive(Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    /// JSON with `--json` or when stdout is not a terminal; a table otherwise.
    fn new(json: bool) -> Output {
        use std::io::IsTerminal;
        Output {
            json: json || !std::io::stdout().is_terminal(),
        }
    }

    fn print<T: Serialize>(self, value: &T) -> Result<()> {
        if self.json {
            return print(value);
        }
        write_out(&crate::table::render(&serde_json::to_value(value)?))
    }
}

fn print<T: Serialize>(value: &T) -> Result<()> {
    write_out(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

fn write_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Hosts whose command exited non-zero, with their codes: a command job
/// that "completed" is a failure to whoever ran it (the library says so too).
fn failed_commands(detail: &JobDetail) -> Vec<(String, i64)> {
    let is_command = detail
        .operation
        .as_ref()
        .and_then(|o| o.get("type"))
        .and_then(serde_json::Value::as_str)
        .and_then(|t| t.parse::<Operation>().ok())
        .is_some_and(Operation::is_command);
    if !is_command {
        return Vec::new();
    }
    let code = |data: Option<&serde_json::Value>| {
        data.and_then(|d| d.get("exit_code"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    let mut failed: Vec<(String, i64)> = match &detail.responses {
        Some(responses) => responses
            .values()
            .map(|r| (r.hostname.clone(), code(r.data.as_ref())))
            .collect(),
        None => vec![(
            detail.hostname.clone().unwrap_or_default(),
            code(detail.result.as_ref()),
        )],
    };
    failed.retain(|(_, c)| *c != 0);
    failed.sort();
    failed
}

fn job_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).with_context(|| format!("{raw:?} is not a job id (UUID)"))
}

/// `osapi client …`: one request to a controller, its answer printed as JSON.
pub async fn run(file: &OsapiFile, args: ClientArgs, json: bool) -> Result<()> {
    let out = Output::new(json);
    let url = args
        .url
        .filter(|u| !u.is_empty())
        .or_else(|| Some(file.api.client.url.clone()).filter(|u| !u.is_empty()))
        .context("no controller URL: pass --url, set OSAPI_URL, or set api.client.url")?;
    let token = args
        .token
        .filter(|t| !t.is_empty())
        .or_else(|| Some(file.api.client.security.bearer_token.clone()).filter(|t| !t.is_empty()))
        .context(
            "no token: pass --token, set OSAPI_TOKEN, or set api.client.security.bearer_token",
        )?;
    let client = Client::new(&url, &token)?;
    match args.command {
        ClientCommand::Health { which: None } => out.print(&client.health().await?),
        ClientCommand::Health {
            which: Some(HealthCommand::Ready),
        } => out.print(&client.ready().await?),
        ClientCommand::Health {
            which: Some(HealthCommand::Status),
        } => out.print(&client.status().await?),
        ClientCommand::Agent(AgentCommand::List) => out.print(&client.agents().await?),
        ClientCommand::Agent(AgentCommand::Get { hostname }) => {
            out.print(&client.agent(&hostname).await?)
        }
        ClientCommand::Agent(AgentCommand::Drain { hostname }) => {
            out.print(&client.drain(&hostname).await?)
        }
        ClientCommand::Agent(AgentCommand::Undrain { hostname }) => {
            out.print(&client.undrain(&hostname).await?)
        }
        ClientCommand::Job(JobCommand::Create(spec)) => {
            out.print(&client.create_job(&spec.request()?).await?)
        }
        ClientCommand::Job(JobCommand::Run { spec, timeout }) => {
            let timeout: Duration = parse_duration(&timeout)?;
            let detail = client.run_job(&spec.request()?, timeout).await?;
            out.print(&detail)?;
            let id = detail.id.map(|i| i.to_string()).unwrap_or_default();
            if detail.status() != JobStatus::Completed {
                bail!("job {id} failed: it ended {}", detail.status());
            }
            let failed = failed_commands(&detail);
            if !failed.is_empty() {
                let hosts: Vec<String> = failed
                    .iter()
                    .map(|(h, c)| format!("{h} exited with code {c}"))
                    .collect();
                bail!("job {id} failed: the command {}", hosts.join(", "));
            }
            Ok(())
        }
        ClientCommand::Job(JobCommand::Get { id, wait }) => {
            let id = job_id(&id)?;
            let detail = match wait {
                Some(w) => client.job_wait(id, parse_duration(&w)?).await?,
                None => client.job(id).await?,
            };
            out.print(&detail)
        }
        ClientCommand::Job(JobCommand::List {
            status,
            limit,
            offset,
        }) => {
            let status = status
                .map(|s| JobStatus::parse(&s).with_context(|| format!("unknown status {s:?}")))
                .transpose()?;
            out.print(&client.jobs(status, limit, offset).await?)
        }
        ClientCommand::Job(JobCommand::Status) => out.print(&client.job_stats().await?),
        ClientCommand::Job(JobCommand::Delete { id }) => {
            client.delete_job(job_id(&id)?).await?;
            println!("deleted {id}");
            Ok(())
        }
        ClientCommand::Job(JobCommand::Retry { id, target }) => {
            out.print(&client.retry_job(job_id(&id)?, target.as_deref()).await?)
        }
        ClientCommand::File(FileCommand::Upload {
            name,
            path,
            content_type,
            force,
        }) => {
            let ct: ContentType = content_type.parse().map_err(anyhow::Error::msg)?;
            let data =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            out.print(&client.upload_file(&name, ct, data, force).await?)
        }
        ClientCommand::File(FileCommand::List) => out.print(&client.files().await?),
        ClientCommand::File(FileCommand::Get { name }) => out.print(&client.file(&name).await?),
        ClientCommand::File(FileCommand::Delete { name }) => {
            out.print(&client.delete_file(&name).await?)
        }
        ClientCommand::Audit(AuditCommand::List { limit, offset }) => {
            out.print(&client.audit(limit, offset).await?)
        }
        ClientCommand::Metrics => write_out(&client.metrics().await?),
    }
}
