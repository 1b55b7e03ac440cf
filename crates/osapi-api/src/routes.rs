//! The synchronous `/node/{hostname}/…` route of every operation: its
//! method and path, its request body, how the body becomes the operation's
//! parameters, and how the hosts' answers become the response. The
//! controller serves every route with one generic handler and writes the
//! OpenAPI document from these declarations; each path is written once.
//!
//! Operations whose route keeps upstream OSAPI's REST shape implement
//! [`NodeRoute`] here by hand. A new operation can instead declare a route
//! in its catalogue entry (`route post "/node/{hostname}/…"`): it then gets
//! the generic shape, its parameters as the body (or, for `get`, from the
//! path) and one [`OperationItem`] per host.
//!
//! ```
//! use osapi_api::ops::op;
//! use osapi_api::routes::{NodeRoute, RouteMethod};
//! assert_eq!(<op::NodeLoadGet as NodeRoute>::PATH, "/node/{hostname}/load");
//! assert_eq!(<op::CommandShell as NodeRoute>::METHOD, RouteMethod::Post);
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::factref::is_fact_ref;
use crate::format::{go_duration, human_uptime};
use crate::node::*;
use crate::ops::{
    CommandExecParams, CommandShellParams, ContentType, DnsGetParams, DnsUpdateParams,
    FileDeployParams, FileStatusParams, NoParams, Op, PingParams, is_valid_hostname, op,
    validate_host_path,
};
use crate::results::*;

/// What the OpenAPI document can describe: `utoipa::ToSchema` with the
/// `openapi` feature, anything without it.
#[cfg(feature = "openapi")]
pub trait Schema: utoipa::ToSchema {}
#[cfg(feature = "openapi")]
impl<T: utoipa::ToSchema> Schema for T {}
/// What the OpenAPI document can describe: `utoipa::ToSchema` with the
/// `openapi` feature, anything without it.
#[cfg(not(feature = "openapi"))]
pub trait Schema {}
#[cfg(not(feature = "openapi"))]
impl<T> Schema for T {}

/// The HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMethod {
    /// `GET`: no body.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
}

/// One host's answer to a synchronous job.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostAnswer {
    /// The agent.
    pub hostname: String,
    /// Its result (the operation's output as JSON).
    pub data: Option<Value>,
    /// Its error, when it failed.
    pub error: Option<String>,
    /// Whether it changed the host.
    pub changed: bool,
}

impl HostAnswer {
    /// The typed result (read in place, not copied).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(self.data.as_ref().unwrap_or(&Value::Null))
            .map_err(|e| format!("unexpected result from agent: {e}"))
    }
}

/// Path parameters by name (`hostname` included).
pub type PathArgs = BTreeMap<String, String>;

/// The body of a `GET` route: none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoBody {}

/// How an operation is served by `/node/{hostname}/…`: the controller
/// decodes [`NodeRoute::Body`], checks it into the operation's parameters
/// with [`NodeRoute::params`] (then runs [`Validate`](crate::ops::Validate),
/// as every route does), creates the job, waits, and answers
/// [`NodeRoute::respond`]'s value with status 200 (202 when
/// [`NodeRoute::ACCEPTED`]).
pub trait NodeRoute: Op {
    /// The method.
    const METHOD: RouteMethod;
    /// The path, with `{hostname}` (the target) and any other parameters.
    const PATH: &'static str;
    /// One line for the OpenAPI document.
    const SUMMARY: &'static str;
    /// Descriptions of path parameters other than `hostname`.
    const PATH_DOCS: &'static [(&'static str, &'static str)] = &[];
    /// 202 instead of 200 (upstream's changing routes).
    const ACCEPTED: bool = false;
    /// The request body ([`NoBody`] for `GET`).
    type Body: DeserializeOwned + Schema + Send + 'static;
    /// The response body.
    type Response: Serialize + Schema + Send + 'static;
    /// The operation's parameters, or what is wrong with the request (a 400).
    fn params(path: &PathArgs, body: Self::Body) -> Result<Self::Params, String>;
    /// The least time to wait for the hosts (the controller waits at least
    /// its `sync_timeout`).
    fn min_wait(_params: &Self::Params) -> Duration {
        Duration::ZERO
    }
    /// The response, from the job's id and the hosts' answers (`broadcast`:
    /// the target may name several hosts); an error is a 500.
    fn respond(job_id: Uuid, answers: &[HostAnswer]) -> Result<Self::Response, String>;
}

/// A per-host item of a collection response.
pub trait Item: Sized {
    /// The item of a host that failed.
    fn failed(hostname: String, error: String) -> Self;
    /// The item of a host that answered.
    fn from_answer(a: &HostAnswer) -> Result<Self, String>;
}

/// `{"job_id", "results"}` with one item per host, answers before failures.
pub fn collection<T: Item>(job_id: Uuid, answers: &[HostAnswer]) -> Collection<T> {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for a in answers {
        match &a.error {
            Some(e) => failed.push(T::failed(a.hostname.clone(), e.clone())),
            None => match T::from_answer(a) {
                Ok(item) => ok.push(item),
                Err(e) => failed.push(T::failed(a.hostname.clone(), e)),
            },
        }
    }
    ok.extend(failed);
    Collection {
        job_id: Some(job_id),
        results: ok,
    }
}

/// Item of the generic route shape: the host, whether it changed, and its
/// result or error.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationItem {
    /// Agent hostname.
    pub hostname: String,
    /// Whether the host changed.
    #[serde(default)]
    pub changed: bool,
    /// The operation's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<Value>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Item for OperationItem {
    fn failed(hostname: String, error: String) -> Self {
        OperationItem {
            hostname,
            error: Some(error),
            ..Default::default()
        }
    }
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        Ok(OperationItem {
            hostname: a.hostname.clone(),
            changed: a.changed,
            result: a.data.clone(),
            error: None,
        })
    }
}

/// The parameters of a generic `get` route: its path parameters other than
/// `hostname`, by name.
pub fn params_from_path<P: DeserializeOwned>(path: &PathArgs) -> Result<P, String> {
    let fields: serde_json::Map<String, Value> = path
        .iter()
        .filter(|(k, _)| k.as_str() != "hostname")
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    P::deserialize(Value::Object(fields)).map_err(|e| format!("invalid path parameters: {e}"))
}

/// The generic route of a catalogue entry with `route get|post|put "path"`.
macro_rules! generic_route {
    ($variant:ident, $wire:literal, get, $path:literal) => {
        $crate::routes::generic_route!(@impl $variant, $wire, Get, $path, $crate::routes::NoBody,
            |path, _body| $crate::routes::params_from_path(path));
    };
    ($variant:ident, $wire:literal, post, $path:literal) => {
        $crate::routes::generic_route!(@impl $variant, $wire, Post, $path,
            <$variant as $crate::ops::Op>::Params, |_path, body| Ok(body));
    };
    ($variant:ident, $wire:literal, put, $path:literal) => {
        $crate::routes::generic_route!(@impl $variant, $wire, Put, $path,
            <$variant as $crate::ops::Op>::Params, |_path, body| Ok(body));
    };
    (@impl $variant:ident, $wire:literal, $method:ident, $path:literal, $body:ty,
        |$p:pat_param, $b:pat_param| $params:expr) => {
        impl $crate::routes::NodeRoute for $variant {
            const METHOD: $crate::routes::RouteMethod = $crate::routes::RouteMethod::$method;
            const PATH: &'static str = $path;
            const SUMMARY: &'static str =
                concat!("Runs `", $wire, "` on the target host(s) and waits for their answers.");
            type Body = $body;
            type Response = $crate::node::Collection<$crate::routes::OperationItem>;
            fn params(
                $p: &$crate::routes::PathArgs,
                $b: Self::Body,
            ) -> Result<Self::Params, String> {
                $params
            }
            fn respond(
                job_id: uuid::Uuid,
                answers: &[$crate::routes::HostAnswer],
            ) -> Result<Self::Response, String> {
                Ok($crate::routes::collection(job_id, answers))
            }
        }
    };
}

pub(crate) use generic_route;

// ---- Upstream's routes -------------------------------------------------

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

/// An upstream `GET` route without parameters answering a collection.
macro_rules! node_get {
    ($op:ident, $path:literal, $item:ty, $summary:literal) => {
        impl NodeRoute for op::$op {
            const METHOD: RouteMethod = RouteMethod::Get;
            const PATH: &'static str = $path;
            const SUMMARY: &'static str = $summary;
            type Body = NoBody;
            type Response = Collection<$item>;
            fn params(_: &PathArgs, _: NoBody) -> Result<NoParams, String> {
                Ok(NoParams {})
            }
            fn respond(job_id: Uuid, answers: &[HostAnswer]) -> Result<Self::Response, String> {
                Ok(collection(job_id, answers))
            }
        }
    };
}

node_get!(
    NodeStatusGet,
    "/node/{hostname}",
    NodeStatusItem,
    "Hostname, OS, uptime, load, memory and disks."
);
node_get!(
    NodeHostnameGet,
    "/node/{hostname}/hostname",
    HostnameItem,
    "Hostname and labels."
);
node_get!(
    NodeDiskGet,
    "/node/{hostname}/disk",
    DiskItem,
    "Mounted filesystems."
);
node_get!(
    NodeMemoryGet,
    "/node/{hostname}/memory",
    MemoryItem,
    "Memory."
);
node_get!(
    NodeLoadGet,
    "/node/{hostname}/load",
    LoadItem,
    "Load averages."
);
node_get!(
    NodeOsGet,
    "/node/{hostname}/os",
    OsInfoItem,
    "Distribution and version."
);
node_get!(
    NodeUptimeGet,
    "/node/{hostname}/uptime",
    UptimeItem,
    "Uptime."
);

impl Item for NodeStatusItem {
    failed_with_defaults!();
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: NodeStatusResult = a.decode()?;
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
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: HostnameResult = a.decode()?;
        Ok(HostnameItem {
            hostname: r.hostname,
            labels: r.labels,
            error: None,
        })
    }
}

impl Item for DiskItem {
    failed_with_defaults!();
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: DiskResult = a.decode()?;
        Ok(DiskItem {
            hostname: a.hostname.clone(),
            disks: Some(r.disks),
            error: None,
        })
    }
}

impl Item for MemoryItem {
    failed_with_defaults!();
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: MemoryResult = a.decode()?;
        Ok(MemoryItem {
            hostname: a.hostname.clone(),
            memory: Some((&r).into()),
            error: None,
        })
    }
}

impl Item for LoadItem {
    failed_with_defaults!();
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: LoadResult = a.decode()?;
        Ok(LoadItem {
            hostname: a.hostname.clone(),
            load_average: Some((&r).into()),
            error: None,
        })
    }
}

impl Item for OsInfoItem {
    failed_with_defaults!();
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: OsInfo = a.decode()?;
        Ok(OsInfoItem {
            hostname: a.hostname.clone(),
            os_info: Some((&r).into()),
            error: None,
        })
    }
}

impl Item for UptimeItem {
    failed_with_defaults!();
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: UptimeResult = a.decode()?;
        Ok(UptimeItem {
            hostname: a.hostname.clone(),
            uptime: Some(go_duration(r.duration())),
            error: None,
        })
    }
}

impl NodeRoute for op::NetworkPingDo {
    const METHOD: RouteMethod = RouteMethod::Post;
    const PATH: &'static str = "/node/{hostname}/network/ping";
    const SUMMARY: &'static str = "Ping an address from the host(s).";
    type Body = PingRequest;
    type Response = Collection<PingItem>;
    fn params(_: &PathArgs, req: PingRequest) -> Result<PingParams, String> {
        if req.address.parse::<IpAddr>().is_err() && !is_fact_ref(&req.address) {
            return Err(format!(
                "address {:?} must be an IPv4/IPv6 address or an @fact. reference",
                req.address
            ));
        }
        Ok(PingParams {
            address: req.address,
            count: None,
        })
    }
    fn respond(job_id: Uuid, answers: &[HostAnswer]) -> Result<Self::Response, String> {
        Ok(collection(job_id, answers))
    }
}

impl Item for PingItem {
    failed_with_defaults!();
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: PingResult = a.decode()?;
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

fn check_interface(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain || is_fact_ref(name) {
        Ok(())
    } else {
        Err(format!(
            "interface {name:?} must be an interface name ([A-Za-z0-9_.-]) or an @fact. reference"
        ))
    }
}

impl NodeRoute for op::NetworkDnsGet {
    const METHOD: RouteMethod = RouteMethod::Get;
    const PATH: &'static str = "/node/{hostname}/network/dns/{interfaceName}";
    const SUMMARY: &'static str = "DNS configuration of an interface.";
    const PATH_DOCS: &'static [(&'static str, &'static str)] =
        &[("interfaceName", "Interface name or @fact. reference")];
    type Body = NoBody;
    type Response = Collection<DnsConfigItem>;
    fn params(path: &PathArgs, _: NoBody) -> Result<DnsGetParams, String> {
        let interface = path.get("interfaceName").cloned().unwrap_or_default();
        check_interface(&interface)?;
        Ok(DnsGetParams { interface })
    }
    fn respond(job_id: Uuid, answers: &[HostAnswer]) -> Result<Self::Response, String> {
        Ok(collection(job_id, answers))
    }
}

impl Item for DnsConfigItem {
    failed_with_defaults!();
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: DnsConfigResult = a.decode()?;
        Ok(DnsConfigItem {
            hostname: a.hostname.clone(),
            servers: (!r.dns_servers.is_empty()).then_some(r.dns_servers),
            search_domains: Some(r.search_domains),
            error: None,
        })
    }
}

/// True for an RFC 1123 hostname, optionally fully qualified (trailing dot).
fn is_hostname(s: &str) -> bool {
    is_valid_hostname(s.strip_suffix('.').unwrap_or(s))
}

impl NodeRoute for op::NetworkDnsUpdate {
    const METHOD: RouteMethod = RouteMethod::Put;
    const PATH: &'static str = "/node/{hostname}/network/dns";
    const SUMMARY: &'static str = "Change the DNS servers and search domains.";
    const ACCEPTED: bool = true;
    type Body = DnsUpdateRequest;
    type Response = Collection<DnsUpdateItem>;
    fn params(_: &PathArgs, req: DnsUpdateRequest) -> Result<DnsUpdateParams, String> {
        check_interface(&req.interface_name)?;
        if req.servers.is_none() && req.search_domains.is_none() {
            return Err("servers or search_domains is required".into());
        }
        if let Some(s) = req
            .servers
            .iter()
            .flatten()
            .find(|s| s.parse::<IpAddr>().is_err())
        {
            return Err(format!("server {s:?} is not an IP address"));
        }
        if let Some(d) = req
            .search_domains
            .iter()
            .flatten()
            .find(|d| !is_hostname(d))
        {
            return Err(format!("search domain {d:?} is not a valid hostname"));
        }
        Ok(DnsUpdateParams {
            interface: req.interface_name,
            servers: req.servers,
            search_domains: req.search_domains,
            dry_run: false,
        })
    }
    fn respond(job_id: Uuid, answers: &[HostAnswer]) -> Result<Self::Response, String> {
        Ok(collection(job_id, answers))
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
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: DnsUpdateResult = a.decode()?;
        Ok(DnsUpdateItem {
            hostname: a.hostname.clone(),
            status: "ok".into(),
            changed: r.changed,
            error: None,
        })
    }
}

/// A REST command timeout: 1 to 300 seconds when given.
fn check_timeout(t: Option<i64>) -> Result<Option<u64>, String> {
    match t {
        None => Ok(None),
        Some(t) if (1..=300).contains(&t) => Ok(Some(t as u64)),
        Some(t) => Err(format!(
            "timeout must be between 1 and 300 seconds, got {t}"
        )),
    }
}

/// A command may run for its timeout (default 30 s): wait that and 5 s more.
fn command_wait(timeout: Option<u64>) -> Duration {
    Duration::from_secs(timeout.unwrap_or(30)) + Duration::from_secs(5)
}

impl NodeRoute for op::CommandExec {
    const METHOD: RouteMethod = RouteMethod::Post;
    const PATH: &'static str = "/node/{hostname}/command/exec";
    const SUMMARY: &'static str = "Run a command without a shell.";
    const ACCEPTED: bool = true;
    type Body = CommandExecRequest;
    type Response = Collection<CommandItem>;
    fn params(_: &PathArgs, req: CommandExecRequest) -> Result<CommandExecParams, String> {
        Ok(CommandExecParams {
            timeout: check_timeout(req.timeout)?,
            command: req.command,
            args: req.args,
            cwd: req.cwd,
            conditions: Default::default(),
            dry_run: false,
        })
    }
    fn min_wait(params: &CommandExecParams) -> Duration {
        command_wait(params.timeout)
    }
    fn respond(job_id: Uuid, answers: &[HostAnswer]) -> Result<Self::Response, String> {
        Ok(collection(job_id, answers))
    }
}

impl NodeRoute for op::CommandShell {
    const METHOD: RouteMethod = RouteMethod::Post;
    const PATH: &'static str = "/node/{hostname}/command/shell";
    const SUMMARY: &'static str = "Run a command line with `/bin/sh -c`.";
    const ACCEPTED: bool = true;
    type Body = CommandShellRequest;
    type Response = Collection<CommandItem>;
    fn params(_: &PathArgs, req: CommandShellRequest) -> Result<CommandShellParams, String> {
        Ok(CommandShellParams {
            timeout: check_timeout(req.timeout)?,
            command: req.command,
            cwd: req.cwd,
            conditions: Default::default(),
            dry_run: false,
        })
    }
    fn min_wait(params: &CommandShellParams) -> Duration {
        command_wait(params.timeout)
    }
    fn respond(job_id: Uuid, answers: &[HostAnswer]) -> Result<Self::Response, String> {
        Ok(collection(job_id, answers))
    }
}

impl Item for CommandItem {
    failed_with_defaults!();
    fn from_answer(a: &HostAnswer) -> Result<Self, String> {
        let r: CommandResult = a.decode()?;
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

impl NodeRoute for op::FileDeploy {
    const METHOD: RouteMethod = RouteMethod::Post;
    const PATH: &'static str = "/node/{hostname}/file/deploy";
    const SUMMARY: &'static str = "Deploy a stored file to a path.";
    const ACCEPTED: bool = true;
    type Body = FileDeployRequest;
    type Response = FileDeployResponse;
    fn params(_: &PathArgs, req: FileDeployRequest) -> Result<FileDeployParams, String> {
        Ok(FileDeployParams {
            content_type: req.content_type.parse::<ContentType>()?,
            object_name: req.object_name,
            path: req.path,
            mode: req.mode,
            owner: req.owner,
            group: req.group,
            vars: req.vars.unwrap_or_default(),
            dry_run: false,
            diff: false,
            // Set by the controller as it queues the job.
            object_sha256: None,
        })
    }
    fn respond(job_id: Uuid, answers: &[HostAnswer]) -> Result<Self::Response, String> {
        let ok: Vec<&HostAnswer> = answers.iter().filter(|a| a.error.is_none()).collect();
        let Some(first) = ok.first() else {
            let errors: BTreeMap<&str, &str> = answers
                .iter()
                .map(|a| (a.hostname.as_str(), a.error.as_deref().unwrap_or("")))
                .collect();
            return Err(format!("job failed: {errors:?}"));
        };
        Ok(FileDeployResponse {
            job_id: job_id.to_string(),
            hostname: first.hostname.clone(),
            changed: ok.iter().any(|a| a.changed),
        })
    }
}

impl NodeRoute for op::FileStatusGet {
    const METHOD: RouteMethod = RouteMethod::Post;
    const PATH: &'static str = "/node/{hostname}/file/status";
    const SUMMARY: &'static str = "Whether a deployed file is still as deployed.";
    type Body = FileStatusRequest;
    type Response = FileStatusResponse;
    fn params(_: &PathArgs, req: FileStatusRequest) -> Result<FileStatusParams, String> {
        validate_host_path(&req.path)?;
        Ok(FileStatusParams { path: req.path })
    }
    fn respond(job_id: Uuid, answers: &[HostAnswer]) -> Result<Self::Response, String> {
        let first = answers
            .iter()
            .find(|a| a.error.is_none())
            .ok_or("job failed: no host could read the file status")?;
        let r: FileStatusResult = first.decode()?;
        Ok(FileStatusResponse {
            job_id: job_id.to_string(),
            hostname: first.hostname.clone(),
            path: r.path,
            status: r.status.as_str().to_string(),
            sha256: r.sha256,
        })
    }
}
