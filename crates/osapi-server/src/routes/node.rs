//! The synchronous `/node/{hostname}/…` endpoints: each creates a job, waits
//! for it, and answers with one item per host (`{"job_id", "results"}`).
//! Unicast targets (`_any`, a hostname) answer with exactly one item and turn
//! an agent failure into a 500; broadcast targets list failed hosts as items
//! with `error`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use osapi_api::factref::is_fact_ref;
use osapi_api::format::{go_duration, human_uptime};
use osapi_api::job::JobStatus;
use osapi_api::node::*;
use osapi_api::ops::is_valid_hostname;
use osapi_api::ops::{ContentType, Operation};
use osapi_api::results::*;
use osapi_api::target::Target;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{AuditNotes, Authorized, op};
use crate::error::{ApiError, ApiResult};
use crate::extract;
use crate::jobs::{validate_command, validate_deploy};
use crate::state::AppState;

/// Declares the synchronous routes once: the router and the table of which
/// operation each route starts (the OpenAPI document takes each route's
/// permission from it, through the catalogue).
macro_rules! node_routes {
    ($($method:ident $path:literal => $handler:ident, $op:ident;)*) => {
        /// `(method, path, operation)` of every synchronous route.
        pub const OPERATIONS: &[(&str, &str, Operation)] = &[
            $((stringify!($method), $path, Operation::$op),)*
        ];

        /// The synchronous routes.
        pub fn router() -> Router<AppState> {
            Router::new()$(.route($path, axum::routing::$method($handler)))*
        }
    };
}

node_routes! {
    get "/node/{hostname}" => status, NodeStatusGet;
    get "/node/{hostname}/hostname" => hostname, NodeHostnameGet;
    get "/node/{hostname}/disk" => disk, NodeDiskGet;
    get "/node/{hostname}/memory" => memory, NodeMemoryGet;
    get "/node/{hostname}/load" => load, NodeLoadGet;
    get "/node/{hostname}/os" => os, NodeOsGet;
    get "/node/{hostname}/uptime" => uptime, NodeUptimeGet;
    post "/node/{hostname}/network/ping" => ping, NetworkPingDo;
    get "/node/{hostname}/network/dns/{interfaceName}" => dns_get, NetworkDnsGet;
    put "/node/{hostname}/network/dns" => dns_update, NetworkDnsUpdate;
    post "/node/{hostname}/command/exec" => command_exec, CommandExec;
    post "/node/{hostname}/command/shell" => command_shell, CommandShell;
    post "/node/{hostname}/file/deploy" => file_deploy, FileDeploy;
    post "/node/{hostname}/file/status" => file_status, FileStatusGet;
}

/// One host's answer to a synchronous job.
struct Answer {
    hostname: String,
    data: Option<Value>,
    error: Option<String>,
    changed: bool,
}

/// Creates the job (noting it in the audit entry), waits, and collects the answers.
async fn run(
    state: &AppState,
    audit: &AuditNotes,
    target: &str,
    op: Operation,
    data: Value,
    wait: Duration,
) -> ApiResult<(Uuid, Vec<Answer>)> {
    let broadcast = Target::parse(target).is_ok_and(|t| t.is_broadcast());
    let operation = json!({"type": op.as_str(), "data": data});
    audit.note(|a| {
        a.note_operation(&operation);
        a.target = Some(target.to_string());
    });
    let created = state.jobs.create(operation, target, None, None).await?;
    let id = created.record.id;
    audit.note(|a| a.job_id = Some(id));
    let detail = state.jobs.wait(id, wait).await?;
    let terminal = detail.status.is_some_and(JobStatus::is_terminal);
    let answers: Vec<Answer> = if broadcast {
        detail
            .responses
            .unwrap_or_default()
            .into_values()
            .map(|r| Answer {
                hostname: r.hostname,
                changed: r.changed.unwrap_or(false),
                data: r.data,
                error: r.error,
            })
            .collect()
    } else if terminal {
        vec![Answer {
            hostname: detail.hostname.unwrap_or_default(),
            data: detail.result,
            changed: detail.changed.unwrap_or(false),
            error: (detail.status == Some(JobStatus::Failed))
                .then(|| detail.error.unwrap_or_else(|| "job failed".into())),
        }]
    } else {
        Vec::new()
    };
    if answers.is_empty() && !terminal {
        return Err(ApiError::internal(format!(
            "timeout waiting for job response: no agent answered within {} (job {id})",
            go_duration(wait)
        )));
    }
    if !broadcast && let Some(err) = answers.first().and_then(|a| a.error.clone()) {
        return Err(ApiError::internal(format!("job failed: {err}")));
    }
    Ok((id, answers))
}

/// A per-host item of a collection response.
trait Item: Sized {
    fn failed(hostname: String, error: String) -> Self;
    fn from_answer(a: &Answer) -> Result<Self, String>;
}

/// `Item::failed` for items whose other fields all default.
macro_rules! failed_with_defaults {
    () => {
        fn failed(hostname: String, error: String) -> Self {
            Self {
                hostname,
                error: Some(error),
                ..Default::default()
            }
        }
    };
}

/// The typed result of an answer (read in place, not copied).
fn decode<T: DeserializeOwned>(a: &Answer) -> Result<T, String> {
    T::deserialize(a.data.as_ref().unwrap_or(&Value::Null))
        .map_err(|e| format!("unexpected result from agent: {e}"))
}

async fn collection<T: Item>(
    state: &AppState,
    audit: &AuditNotes,
    target: &str,
    op: Operation,
    data: Value,
    wait: Duration,
) -> ApiResult<Json<Collection<T>>> {
    let (id, answers) = run(state, audit, target, op, data, wait).await?;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for a in &answers {
        match &a.error {
            Some(e) => failed.push(T::failed(a.hostname.clone(), e.clone())),
            None => match T::from_answer(a) {
                Ok(item) => ok.push(item),
                Err(e) => failed.push(T::failed(a.hostname.clone(), e)),
            },
        }
    }
    ok.extend(failed);
    Ok(Json(Collection {
        job_id: Some(id),
        results: ok,
    }))
}

impl Item for NodeStatusItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: NodeStatusResult = decode(a)?;
        Ok(NodeStatusItem {
            hostname: if r.hostname.is_empty() {
                a.hostname.clone()
            } else {
                r.hostname.clone()
            },
            uptime: Some(human_uptime(r.uptime().as_secs())),
            load_average: r.load.as_ref().map(Into::into),
            memory: r.memory.as_ref().map(Into::into),
            disks: Some(r.disks.clone()),
            os_info: r.os_info.as_ref().map(Into::into),
            error: None,
        })
    }
}

impl Item for HostnameItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: HostnameResult = decode(a)?;
        Ok(HostnameItem {
            hostname: r.hostname,
            labels: r.labels,
            error: None,
        })
    }
}

impl Item for DiskItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: DiskResult = decode(a)?;
        Ok(DiskItem {
            hostname: a.hostname.clone(),
            disks: Some(r.disks),
            error: None,
        })
    }
}

impl Item for MemoryItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: MemoryResult = decode(a)?;
        Ok(MemoryItem {
            hostname: a.hostname.clone(),
            memory: Some((&r).into()),
            error: None,
        })
    }
}

impl Item for LoadItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: LoadResult = decode(a)?;
        Ok(LoadItem {
            hostname: a.hostname.clone(),
            load_average: Some((&r).into()),
            error: None,
        })
    }
}

impl Item for OsInfoItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: OsInfo = decode(a)?;
        Ok(OsInfoItem {
            hostname: a.hostname.clone(),
            os_info: Some((&r).into()),
            error: None,
        })
    }
}

impl Item for UptimeItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: UptimeResult = decode(a)?;
        Ok(UptimeItem {
            hostname: a.hostname.clone(),
            uptime: Some(go_duration(r.duration())),
            error: None,
        })
    }
}

impl Item for PingItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: PingResult = decode(a)?;
        let ms = |ns: u64| format!("{:.2}ms", ns as f64 / 1e6);
        Ok(PingItem {
            hostname: a.hostname.clone(),
            packets_sent: Some(r.packets_sent),
            packets_received: Some(r.packets_received),
            packet_loss: Some(r.packet_loss),
            min_rtt: Some(ms(r.min_rtt_ns)),
            avg_rtt: Some(ms(r.avg_rtt_ns)),
            max_rtt: Some(ms(r.max_rtt_ns)),
            error: None,
        })
    }
}

impl Item for DnsConfigItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: DnsConfigResult = decode(a)?;
        Ok(DnsConfigItem {
            hostname: a.hostname.clone(),
            servers: (!r.dns_servers.is_empty()).then_some(r.dns_servers),
            search_domains: Some(r.search_domains),
            error: None,
        })
    }
}

impl Item for DnsUpdateItem {
    fn failed(hostname: String, error: String) -> Self {
        DnsUpdateItem {
            hostname,
            status: "failed".into(),
            changed: false,
            error: Some(error),
        }
    }
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: DnsUpdateResult = decode(a)?;
        Ok(DnsUpdateItem {
            hostname: a.hostname.clone(),
            status: "ok".into(),
            changed: r.changed,
            error: None,
        })
    }
}

impl Item for CommandItem {
    failed_with_defaults!();
    fn from_answer(a: &Answer) -> Result<Self, String> {
        let r: CommandResult = decode(a)?;
        Ok(CommandItem {
            hostname: a.hostname.clone(),
            stdout: Some(r.stdout),
            stderr: Some(r.stderr),
            exit_code: Some(r.exit_code),
            duration_ms: Some(r.duration_ms),
            changed: Some(r.changed),
            error: None,
        })
    }
}

/// Waits at least as long as the command may run (`timeout` as checked by
/// `check_timeout`).
fn command_wait(state: &AppState, timeout: Option<u64>) -> Duration {
    let cmd = Duration::from_secs(timeout.unwrap_or(30)) + Duration::from_secs(5);
    state.config.sync_timeout.max(cmd)
}

macro_rules! node_get {
    ($name:ident, $path:literal, $op:ident, $item:ty, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(get, path = $path, tag = "Node",
            params(("hostname" = String, Path, description = "_any, _all, a hostname or key:value")),
            security(("BearerAuth" = [])),
            responses((status = 200, body = Collection<$item>),
                (status = 400, body = osapi_api::error::ErrorResponse),
                (status = 500, body = osapi_api::error::ErrorResponse)))]
        pub async fn $name(
            auth: Authorized<op::$op>,
            State(state): State<AppState>,
            Path(hostname): Path<String>,
        ) -> ApiResult<Json<Collection<$item>>> {
            collection(
                &state,
                &auth.audit,
                &hostname,
                Operation::$op,
                json!({}),
                state.config.sync_timeout,
            )
            .await
        }
    };
}

node_get!(
    status,
    "/node/{hostname}",
    NodeStatusGet,
    NodeStatusItem,
    "Hostname, OS, uptime, load, memory and disks."
);
node_get!(
    hostname,
    "/node/{hostname}/hostname",
    NodeHostnameGet,
    HostnameItem,
    "Hostname and labels."
);
node_get!(
    disk,
    "/node/{hostname}/disk",
    NodeDiskGet,
    DiskItem,
    "Mounted filesystems."
);
node_get!(
    memory,
    "/node/{hostname}/memory",
    NodeMemoryGet,
    MemoryItem,
    "Memory."
);
node_get!(
    load,
    "/node/{hostname}/load",
    NodeLoadGet,
    LoadItem,
    "Load averages."
);
node_get!(
    os,
    "/node/{hostname}/os",
    NodeOsGet,
    OsInfoItem,
    "Distribution and version."
);
node_get!(
    uptime,
    "/node/{hostname}/uptime",
    NodeUptimeGet,
    UptimeItem,
    "Uptime."
);

/// Ping an address from the host(s).
#[utoipa::path(post, path = "/node/{hostname}/network/ping", tag = "Node",
    params(("hostname" = String, Path, description = "_any, _all, a hostname or key:value")),
    request_body = PingRequest,
    security(("BearerAuth" = [])),
    responses((status = 200, body = Collection<PingItem>),
        (status = 400, body = osapi_api::error::ErrorResponse)))]
pub async fn ping(
    auth: Authorized<op::NetworkPingDo>,
    State(state): State<AppState>,
    Path(hostname): Path<String>,
    extract::Json(req): extract::Json<PingRequest>,
) -> ApiResult<Json<Collection<PingItem>>> {
    if req.address.parse::<IpAddr>().is_err() && !is_fact_ref(&req.address) {
        return Err(ApiError::bad_request(format!(
            "address {:?} must be an IPv4/IPv6 address or an @fact. reference",
            req.address
        )));
    }
    collection(
        &state,
        &auth.audit,
        &hostname,
        Operation::NetworkPingDo,
        json!({"address": req.address}),
        state.config.sync_timeout,
    )
    .await
}

fn check_interface(name: &str) -> ApiResult<()> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain || is_fact_ref(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "interface {name:?} must be an interface name ([A-Za-z0-9_.-]) or an @fact. reference"
        )))
    }
}

/// DNS configuration of an interface.
#[utoipa::path(get, path = "/node/{hostname}/network/dns/{interfaceName}", tag = "Node",
    params(("hostname" = String, Path, description = "_any, _all, a hostname or key:value"),
        ("interfaceName" = String, Path, description = "Interface name or @fact. reference")),
    security(("BearerAuth" = [])),
    responses((status = 200, body = Collection<DnsConfigItem>),
        (status = 400, body = osapi_api::error::ErrorResponse)))]
pub async fn dns_get(
    auth: Authorized<op::NetworkDnsGet>,
    State(state): State<AppState>,
    Path((hostname, interface)): Path<(String, String)>,
) -> ApiResult<Json<Collection<DnsConfigItem>>> {
    check_interface(&interface)?;
    collection(
        &state,
        &auth.audit,
        &hostname,
        Operation::NetworkDnsGet,
        json!({"interface": interface}),
        state.config.sync_timeout,
    )
    .await
}

/// True for an RFC 1123 hostname, optionally fully qualified (trailing dot).
fn is_hostname(s: &str) -> bool {
    is_valid_hostname(s.strip_suffix('.').unwrap_or(s))
}

/// Change the DNS servers and search domains.
#[utoipa::path(put, path = "/node/{hostname}/network/dns", tag = "Node",
    params(("hostname" = String, Path, description = "_any, _all, a hostname or key:value")),
    request_body = DnsUpdateRequest,
    security(("BearerAuth" = [])),
    responses((status = 202, body = Collection<DnsUpdateItem>),
        (status = 400, body = osapi_api::error::ErrorResponse)))]
pub async fn dns_update(
    auth: Authorized<op::NetworkDnsUpdate>,
    State(state): State<AppState>,
    Path(hostname): Path<String>,
    extract::Json(req): extract::Json<DnsUpdateRequest>,
) -> ApiResult<(StatusCode, Json<Collection<DnsUpdateItem>>)> {
    check_interface(&req.interface_name)?;
    if req.servers.is_none() && req.search_domains.is_none() {
        return Err(ApiError::bad_request(
            "servers or search_domains is required",
        ));
    }
    for s in req.servers.iter().flatten() {
        if s.parse::<IpAddr>().is_err() {
            return Err(ApiError::bad_request(format!(
                "server {s:?} is not an IP address"
            )));
        }
    }
    for d in req.search_domains.iter().flatten() {
        if !is_hostname(d) {
            return Err(ApiError::bad_request(format!(
                "search domain {d:?} is not a valid hostname"
            )));
        }
    }
    let data = json!({"interface": req.interface_name, "servers": req.servers, "search_domains": req.search_domains});
    let body = collection(
        &state,
        &auth.audit,
        &hostname,
        Operation::NetworkDnsUpdate,
        data,
        state.config.sync_timeout,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, body))
}

/// Run a command without a shell.
#[utoipa::path(post, path = "/node/{hostname}/command/exec", tag = "Node",
    params(("hostname" = String, Path, description = "_any, _all, a hostname or key:value")),
    request_body = CommandExecRequest,
    security(("BearerAuth" = [])),
    responses((status = 202, body = Collection<CommandItem>),
        (status = 400, body = osapi_api::error::ErrorResponse)))]
pub async fn command_exec(
    auth: Authorized<op::CommandExec>,
    State(state): State<AppState>,
    Path(hostname): Path<String>,
    extract::Json(req): extract::Json<CommandExecRequest>,
) -> ApiResult<(StatusCode, Json<Collection<CommandItem>>)> {
    let timeout = check_timeout(req.timeout)?;
    validate_command(&req.command, timeout)?;
    let data =
        json!({"command": req.command, "args": req.args, "cwd": req.cwd, "timeout": timeout});
    let wait = command_wait(&state, timeout);
    let body = collection(
        &state,
        &auth.audit,
        &hostname,
        Operation::CommandExec,
        data,
        wait,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, body))
}

fn check_timeout(t: Option<i64>) -> ApiResult<Option<u64>> {
    match t {
        None => Ok(None),
        Some(t) if (1..=300).contains(&t) => Ok(Some(t as u64)),
        Some(t) => Err(ApiError::bad_request(format!(
            "timeout must be between 1 and 300 seconds, got {t}"
        ))),
    }
}

/// Run a command line with `/bin/sh -c`.
#[utoipa::path(post, path = "/node/{hostname}/command/shell", tag = "Node",
    params(("hostname" = String, Path, description = "_any, _all, a hostname or key:value")),
    request_body = CommandShellRequest,
    security(("BearerAuth" = [])),
    responses((status = 202, body = Collection<CommandItem>),
        (status = 400, body = osapi_api::error::ErrorResponse)))]
pub async fn command_shell(
    auth: Authorized<op::CommandShell>,
    State(state): State<AppState>,
    Path(hostname): Path<String>,
    extract::Json(req): extract::Json<CommandShellRequest>,
) -> ApiResult<(StatusCode, Json<Collection<CommandItem>>)> {
    let timeout = check_timeout(req.timeout)?;
    validate_command(&req.command, timeout)?;
    let data = json!({"command": req.command, "cwd": req.cwd, "timeout": timeout});
    let wait = command_wait(&state, timeout);
    let body = collection(
        &state,
        &auth.audit,
        &hostname,
        Operation::CommandShell,
        data,
        wait,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, body))
}

/// Deploy a stored file to a path.
#[utoipa::path(post, path = "/node/{hostname}/file/deploy", tag = "Node",
    params(("hostname" = String, Path, description = "_any, _all, a hostname or key:value")),
    request_body = FileDeployRequest,
    security(("BearerAuth" = [])),
    responses((status = 202, body = FileDeployResponse),
        (status = 400, body = osapi_api::error::ErrorResponse),
        (status = 500, body = osapi_api::error::ErrorResponse)))]
pub async fn file_deploy(
    auth: Authorized<op::FileDeploy>,
    State(state): State<AppState>,
    Path(hostname): Path<String>,
    extract::Json(req): extract::Json<FileDeployRequest>,
) -> ApiResult<(StatusCode, Json<FileDeployResponse>)> {
    let content_type: ContentType = req.content_type.parse().map_err(ApiError::bad_request)?;
    validate_deploy(&req.object_name, &req.path, req.mode.as_deref())?;
    let data = json!({
        "object_name": req.object_name, "path": req.path, "content_type": content_type,
        "mode": req.mode, "owner": req.owner, "group": req.group,
        "vars": req.vars.unwrap_or_default(),
    });
    let (id, answers) = run(
        &state,
        &auth.audit,
        &hostname,
        Operation::FileDeploy,
        data,
        state.config.sync_timeout,
    )
    .await?;
    let ok: Vec<&Answer> = answers.iter().filter(|a| a.error.is_none()).collect();
    let Some(first) = ok.first() else {
        let errors: BTreeMap<&str, &str> = answers
            .iter()
            .map(|a| (a.hostname.as_str(), a.error.as_deref().unwrap_or("")))
            .collect();
        return Err(ApiError::internal(format!("job failed: {errors:?}")));
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(FileDeployResponse {
            job_id: id.to_string(),
            hostname: first.hostname.clone(),
            changed: ok.iter().any(|a| a.changed),
        }),
    ))
}

/// Whether a deployed file is still as deployed.
#[utoipa::path(post, path = "/node/{hostname}/file/status", tag = "Node",
    params(("hostname" = String, Path, description = "_any, _all, a hostname or key:value")),
    request_body = FileStatusRequest,
    security(("BearerAuth" = [])),
    responses((status = 200, body = FileStatusResponse),
        (status = 400, body = osapi_api::error::ErrorResponse)))]
pub async fn file_status(
    auth: Authorized<op::FileStatusGet>,
    State(state): State<AppState>,
    Path(hostname): Path<String>,
    extract::Json(req): extract::Json<FileStatusRequest>,
) -> ApiResult<Json<FileStatusResponse>> {
    osapi_api::ops::validate_host_path(&req.path).map_err(ApiError::bad_request)?;
    let (id, answers) = run(
        &state,
        &auth.audit,
        &hostname,
        Operation::FileStatusGet,
        json!({"path": req.path}),
        state.config.sync_timeout,
    )
    .await?;
    let first = answers
        .iter()
        .find(|a| a.error.is_none())
        .ok_or_else(|| ApiError::internal("job failed: no host could read the file status"))?;
    let r: FileStatusResult = decode(first).map_err(ApiError::internal)?;
    Ok(Json(FileStatusResponse {
        job_id: id.to_string(),
        hostname: first.hostname.clone(),
        path: r.path,
        status: r.status.as_str().to_string(),
        sha256: r.sha256,
    }))
}
