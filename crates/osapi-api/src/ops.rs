//! The operation catalogue: every job operation an agent understands, its
//! query/modify class, and its typed parameters (the job's `data` object).

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use params::*;

use crate::auth::Permission;
use crate::results;

/// An operation as a type, declared once in the catalogue below: its wire
/// name and permission (through [`Op::OPERATION`]), its parameters (the
/// job's `data` object) and what each host answers. Code generic over `Op`
/// (the orchestrator's `op::<O>()`, the client's `run::<O>()`) cannot pair
/// an operation with the wrong parameters or result type.
///
/// ```
/// use osapi_api::ops::{Op, Operation, op};
/// fn wire<O: Op>() -> &'static str { O::OPERATION.as_str() }
/// assert_eq!(wire::<op::NodeLoadGet>(), "node.load.get");
/// let params = osapi_api::ops::PingParams { address: "10.0.0.1".into(), count: None };
/// let data: <op::NetworkPingDo as Op>::Params = params;
/// assert_eq!(serde_json::to_value(&data).unwrap(), serde_json::json!({"address": "10.0.0.1"}));
/// ```
pub trait Op: Send + Sync + 'static {
    /// The operation's entry in the catalogue.
    const OPERATION: Operation;
    /// The job's `data` object.
    type Params: Serialize + DeserializeOwned + Validate + Clone + Send + Sync + 'static;
    /// What each host answers.
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// The rules an operation's parameters must meet beyond their types,
/// checked by the controller before a job is created (every route) and
/// again where they are used. The error is the message for the caller.
///
/// ```
/// use osapi_api::ops::{CommandExecParams, Validate};
/// let p = CommandExecParams { command: " ".into(), ..Default::default() };
/// assert_eq!(p.validate(), Err("command is required".to_string()));
/// ```
pub trait Validate {
    /// `Ok` when the parameters may be used.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Command and timeout rules: a command that is not blank, a timeout of 1
/// to 300 seconds when given.
pub fn validate_command(command: &str, timeout: Option<u64>) -> Result<(), String> {
    if command.trim().is_empty() {
        return Err("command is required".to_string());
    }
    if let Some(t) = timeout
        && !(1..=300).contains(&t)
    {
        return Err(format!(
            "timeout must be between 1 and 300 seconds, got {t}"
        ));
    }
    Ok(())
}

/// Deploy rules: an object name of 1–255 characters, an absolute clean
/// path, an octal mode such as `"0644"` when given.
pub fn validate_deploy(object_name: &str, path: &str, mode: Option<&str>) -> Result<(), String> {
    if object_name.is_empty() || object_name.len() > 255 {
        return Err("object_name is required and must be 1-255 characters".to_string());
    }
    validate_host_path(path)?;
    if let Some(mode) = mode.filter(|m| !m.is_empty()) {
        let digits = mode.trim_start_matches("0o");
        if digits.is_empty()
            || digits.len() > 4
            || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
        {
            return Err(format!(
                "mode {mode:?} is not an octal file mode such as \"0644\""
            ));
        }
    }
    Ok(())
}

impl Validate for NoParams {}
impl Validate for DnsGetParams {}

impl Validate for DnsUpdateParams {
    fn validate(&self) -> Result<(), String> {
        if self.servers.as_ref().is_none_or(Vec::is_empty)
            && self.search_domains.as_ref().is_none_or(Vec::is_empty)
        {
            return Err(
                "invalid data for network.dns.update: servers or search_domains is required"
                    .to_string(),
            );
        }
        Ok(())
    }
}

impl Validate for PingParams {
    fn validate(&self) -> Result<(), String> {
        if self.address.is_empty() {
            return Err("invalid data for network.ping.do: address is required".to_string());
        }
        Ok(())
    }
}

impl Validate for CommandExecParams {
    fn validate(&self) -> Result<(), String> {
        validate_command(&self.command, self.timeout)?;
        self.conditions.validate()
    }
}

impl Validate for CommandShellParams {
    fn validate(&self) -> Result<(), String> {
        validate_command(&self.command, self.timeout)?;
        self.conditions.validate()
    }
}

/// ```
/// use osapi_api::ops::{CommandShellParams, RunConditions, Validate};
/// let mut p: CommandShellParams =
///     serde_json::from_value(serde_json::json!({"command": "make", "creates": "/opt/app/bin"})).unwrap();
/// assert_eq!(p.conditions.creates.as_deref(), Some("/opt/app/bin"));
/// assert!(p.validate().is_ok());
/// p.conditions.unless = Some(" ".into());
/// assert_eq!(p.validate().unwrap_err(), "unless must not be empty");
/// // Without conditions, the data is upstream's shape.
/// let plain = CommandShellParams { command: "true".into(), ..Default::default() };
/// assert_eq!(serde_json::to_value(&plain).unwrap(), serde_json::json!({"command": "true"}));
/// ```
impl Validate for RunConditions {
    fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("creates", &self.creates),
            ("removes", &self.removes),
            ("unless", &self.unless),
            ("only_if", &self.only_if),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("{name} must not be empty"));
            }
        }
        Ok(())
    }
}

impl Validate for FileDeployParams {
    fn validate(&self) -> Result<(), String> {
        validate_deploy(&self.object_name, &self.path, self.mode.as_deref())?;
        match &self.object_sha256 {
            Some(sha)
                if sha.len() != 64
                    || !sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                Err(format!(
                    "object_sha256 {sha:?} is not a SHA-256 digest (64 lowercase hex digits)"
                ))
            }
            _ => Ok(()),
        }
    }
}

impl Validate for PackagesParams {
    fn validate(&self) -> Result<(), String> {
        match &self.name {
            Some(name)
                if name.is_empty()
                    || name.len() > 255
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+._*-".contains(&b)) =>
            {
                Err(format!(
                    "name {name:?} must be a package name or pattern: 1-255 characters of \
                     letters, digits, + . _ - and * (any run of characters)"
                ))
            }
            _ => Ok(()),
        }
    }
}

impl Validate for FileStatusParams {
    fn validate(&self) -> Result<(), String> {
        validate_host_path(&self.path)
    }
}

/// Code that runs for one operation type, chosen at run time from an
/// [`Operation`] by [`Operation::visit`].
///
/// ```
/// use osapi_api::ops::{Op, OpVisitor, Operation};
/// struct OutputType;
/// impl OpVisitor for OutputType {
///     type Out = &'static str;
///     fn visit<O: Op>(self) -> &'static str { std::any::type_name::<O::Output>() }
/// }
/// assert!(Operation::NodeLoadGet.visit(OutputType).ends_with("LoadResult"));
/// ```
pub trait OpVisitor {
    /// What the visit returns.
    type Out;
    /// Called with the operation's type.
    fn visit<O: Op>(self) -> Self::Out;
}

/// Generates [`Operation`], its string forms, [`Operation::ALL`], the
/// permission table, [`Operation::visit`] and one [`Op`] type per entry in
/// [`op`].
macro_rules! catalogue {
    ($d:tt; $( $(#[$doc:meta])* $variant:ident = $wire:literal, $perm:ident, $params:ty => $output:ty
        $(, route $method:ident $path:literal)?; )*) => {
        /// Calls the macro `m` with the name of every operation of the
        /// catalogue, `m!(NodeHostnameGet, NodeStatusGet, …)`: code that
        /// must cover every operation (the agent's dispatch) is generated
        /// from the catalogue, so a new operation without, say, a provider
        /// does not compile.
        #[macro_export]
        macro_rules! with_operations {
            ($d m:ident) => { $d m! { $($variant),* } };
        }

        /// A job operation an agent can run.
        ///
        /// ```
        /// use osapi_api::ops::{Operation, JobClass};
        /// let op: Operation = "command.exec.execute".parse().unwrap();
        /// assert_eq!(op, Operation::CommandExec);
        /// assert_eq!(op.class(), JobClass::Modify);
        /// assert_eq!(Operation::NodeHostnameGet.as_str(), "node.hostname.get");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $( $(#[$doc])* #[doc = concat!("\n\n`", $wire, "`")] $variant, )*
        }

        impl Operation {
            /// Every operation, in catalogue order.
            pub const ALL: [Operation; catalogue!(@count $($variant)*)] = [$(Operation::$variant),*];

            /// The operation's `type` string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Operation::$variant => $wire, )*
                }
            }

            /// The permission a caller needs to start this operation, on
            /// every route that can start it: `POST /job`, `POST
            /// /job/{id}/retry` (both also need `job:write`) and the
            /// operation's synchronous `/node/{hostname}/…` route. This is
            /// the one table the controller and its OpenAPI document read.
            ///
            /// ```
            /// use osapi_api::auth::Permission;
            /// use osapi_api::ops::Operation;
            /// assert_eq!(Operation::CommandShell.permission(), Permission::CommandExecute);
            /// assert_eq!(Operation::NodeLoadGet.permission(), Permission::NodeRead);
            /// ```
            pub const fn permission(self) -> Permission {
                match self {
                    $( Operation::$variant => Permission::$perm, )*
                }
            }

            /// Runs `visitor` with this operation's [`Op`] type.
            pub fn visit<V: OpVisitor>(self, visitor: V) -> V::Out {
                match self {
                    $( Operation::$variant => visitor.visit::<op::$variant>(), )*
                }
            }
        }

        /// One type per operation (see [`Op`]), named as in [`Operation`].
        pub mod op {
            use super::*;
            $(
                $(#[$doc])*
                #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
                pub struct $variant;
                impl Op for $variant {
                    const OPERATION: Operation = Operation::$variant;
                    type Params = $params;
                    type Output = $output;
                }
                $( crate::routes::generic_route!($variant, $wire, $method, $path); )?
            )*
        }
    };
    (@count) => { 0usize };
    (@count $head:ident $($tail:ident)*) => { 1usize + catalogue!(@count $($tail)*) };
}

// The catalogue: every operation once. Adding one: an entry here (with its
// params type below and its result type in `results`), its provider in the
// agent, its wrapper in the orchestrator, a README row (CONTRIBUTING.md).
// Its synchronous route: `, route get|post|put "/node/{hostname}/…"` at the
// end of the entry (the generic shape, see `routes`), or an upstream-shaped
// `NodeRoute` impl in `routes`.
catalogue! {
    $;
    /// Hostname and labels.
    NodeHostnameGet = "node.hostname.get", NodeRead, NoParams => results::HostnameResult;
    /// Hostname, OS, uptime, disks, memory and load in one answer.
    NodeStatusGet = "node.status.get", NodeRead, NoParams => results::NodeStatusResult;
    /// Uptime.
    NodeUptimeGet = "node.uptime.get", NodeRead, NoParams => results::UptimeResult;
    /// Distribution and version.
    NodeOsGet = "node.os.get", NodeRead, NoParams => results::OsInfo;
    /// Mounted filesystems.
    NodeDiskGet = "node.disk.get", NodeRead, NoParams => results::DiskResult;
    /// Memory.
    NodeMemoryGet = "node.memory.get", NodeRead, NoParams => results::MemoryResult;
    /// Load averages.
    NodeLoadGet = "node.load.get", NodeRead, NoParams => results::LoadResult;
    /// DNS servers and search domains of an interface.
    NetworkDnsGet = "network.dns.get", NetworkRead, DnsGetParams => results::DnsConfigResult;
    /// Sets DNS servers and/or search domains.
    NetworkDnsUpdate = "network.dns.update", NetworkWrite, DnsUpdateParams => results::DnsUpdateResult;
    /// Pings an address.
    NetworkPingDo = "network.ping.do", NetworkRead, PingParams => results::PingResult;
    /// Runs a command without a shell.
    CommandExec = "command.exec.execute", CommandExecute, CommandExecParams => results::CommandResult;
    /// Runs a command line with `/bin/sh -c`.
    CommandShell = "command.shell.execute", CommandExecute, CommandShellParams => results::CommandResult;
    /// Deploys a stored file (raw or as a template).
    FileDeploy = "file.deploy.execute", FileWrite, FileDeployParams => results::FileDeployResult;
    /// Whether a deployed file is still as deployed.
    FileStatusGet = "file.status.get", FileRead, FileStatusParams => results::FileStatusResult;
    /// Installed packages (dpkg or rpm), optionally those matching a name pattern.
    NodePackagesGet = "node.packages.get", NodeRead, PackagesParams => results::PackagesResult,
        route post "/node/{hostname}/packages";
}

impl Operation {
    /// Query or modify.
    pub fn class(self) -> JobClass {
        JobClass::of(self.as_str())
    }

    /// True for the two command operations, whose non-zero exit code is a host failure.
    pub fn is_command(self) -> bool {
        matches!(self, Operation::CommandExec | Operation::CommandShell)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an operation type no agent understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported operation {0:?}")]
pub struct UnknownOperation(pub String);

impl FromStr for Operation {
    type Err = UnknownOperation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(op) = Operation::ALL.into_iter().find(|op| op.as_str() == s) {
            return Ok(op);
        }
        // Upstream's agent also accepts these spellings.
        match s {
            "node.osinfo.get" => Ok(Operation::NodeOsGet),
            "node.mem.get" => Ok(Operation::NodeMemoryGet),
            _ => Err(UnknownOperation(s.to_string())),
        }
    }
}

/// Whether an operation reads (query) or changes (modify) the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobClass {
    /// Reads state.
    Query,
    /// Changes state.
    Modify,
}

impl JobClass {
    /// Upstream's routing rule: query if the type ends with `.get`, `.query`,
    /// `.read`, `.status` or `.do`, or starts with `node.`; modify otherwise.
    pub fn of(op_type: &str) -> JobClass {
        const QUERY_SUFFIXES: [&str; 5] = [".get", ".query", ".read", ".status", ".do"];
        if op_type.starts_with("node.") || QUERY_SUFFIXES.iter().any(|s| op_type.ends_with(s)) {
            JobClass::Query
        } else {
            JobClass::Modify
        }
    }

    /// `query` or `modify`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobClass::Query => "query",
            JobClass::Modify => "modify",
        }
    }
}

/// The operations' parameters (each job's `data` object), one type per
/// operation of the catalogue (re-exported here).
pub mod params {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    use crate::serde_util::null_as_default;

    /// Parameters of operations that take none (sent as `{}`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
    pub struct NoParams {}

    /// How a deployed file's content is treated.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "lowercase")]
    pub enum ContentType {
        /// Bytes are written as they are.
        #[default]
        Raw,
        /// Content is a Go template rendered with `.Vars`, `.Facts` and `.Hostname`.
        Template,
    }

    impl ContentType {
        /// `raw` or `template`.
        pub fn as_str(self) -> &'static str {
            match self {
                ContentType::Raw => "raw",
                ContentType::Template => "template",
            }
        }
    }

    impl FromStr for ContentType {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, Self::Err> {
            match s {
                "raw" => Ok(ContentType::Raw),
                "template" => Ok(ContentType::Template),
                other => Err(format!(
                    "content_type must be raw or template, got {other:?}"
                )),
            }
        }
    }

    /// `data` of `network.dns.get`.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    pub struct DnsGetParams {
        /// Interface name or an `@fact.` reference; empty means the primary interface.
        #[serde(default)]
        pub interface: String,
    }

    /// `data` of `network.dns.update`.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    pub struct DnsUpdateParams {
        /// Interface name or an `@fact.` reference.
        #[serde(default)]
        pub interface: String,
        /// New name servers (IP literals); `None` keeps the current ones.
        #[serde(default)]
        pub servers: Option<Vec<String>>,
        /// New search domains; `None` keeps the current ones.
        #[serde(default)]
        pub search_domains: Option<Vec<String>>,
        /// Check mode: compare, change nothing; `changed` is the
        /// prediction.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub dry_run: bool,
    }

    /// `data` of `network.ping.do`.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    pub struct PingParams {
        /// IPv4/IPv6 literal or an `@fact.` reference.
        pub address: String,
        /// Echo requests to send (default 3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub count: Option<u32>,
    }

    /// Checks made on the host before a command runs, each optional (an
    /// osapi agent's; upstream's ignores them). When one says the work is
    /// already done, the command does not run: the host reports
    /// `unchanged`, and the result's `skipped` says why.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    pub struct RunConditions {
        /// Skip when this path exists (a relative path is taken from `cwd`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub creates: Option<String>,
        /// Skip when this path does not exist.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub removes: Option<String>,
        /// Skip when this command line (`/bin/sh -c`, same `cwd` and
        /// timeout) exits 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub unless: Option<String>,
        /// Skip when this command line exits non-zero.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub only_if: Option<String>,
    }

    impl RunConditions {
        /// True when no condition is set.
        pub fn is_empty(&self) -> bool {
            *self == RunConditions::default()
        }
    }

    /// `data` of `command.exec.execute`.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    pub struct CommandExecParams {
        /// Executable name (looked up in `PATH`) or path.
        pub command: String,
        /// Arguments, passed without a shell.
        #[serde(default, deserialize_with = "null_as_default")]
        pub args: Vec<String>,
        /// Working directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cwd: Option<String>,
        /// Seconds before the command is killed (default 30, at most 300 through the REST API).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<u64>,
        /// Checks that may skip the command (`creates`, `unless` …).
        #[serde(flatten)]
        pub conditions: RunConditions,
        /// Check mode: the command does not run (`skipped`: `check mode`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub dry_run: bool,
    }

    /// `data` of `command.shell.execute`.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    pub struct CommandShellParams {
        /// Command line run with `/bin/sh -c`.
        pub command: String,
        /// Working directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cwd: Option<String>,
        /// Seconds before the command is killed (default 30).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<u64>,
        /// Checks that may skip the command (`creates`, `unless` …).
        #[serde(flatten)]
        pub conditions: RunConditions,
        /// Check mode: the command does not run (`skipped`: `check mode`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub dry_run: bool,
    }

    /// `data` of `file.deploy.execute`.
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    pub struct FileDeployParams {
        /// Name of the object in the file store.
        pub object_name: String,
        /// Absolute destination path on the host.
        pub path: String,
        /// `raw` or `template`.
        #[serde(default)]
        pub content_type: ContentType,
        /// Octal mode such as `"0644"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mode: Option<String>,
        /// Owner user name or uid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub owner: Option<String>,
        /// Owner group name or gid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub group: Option<String>,
        /// Template variables (`.Vars`).
        #[serde(
            default,
            skip_serializing_if = "BTreeMap::is_empty",
            deserialize_with = "null_as_default"
        )]
        pub vars: BTreeMap<String, Value>,
        /// Check mode: render and compare with the file on the host, write
        /// nothing; `changed` is the prediction and `diff` what would change.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub dry_run: bool,
        /// Return a unified diff of the content that changed (`diff` in the
        /// result, at most 64 KiB).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub diff: bool,
        /// SHA-256 (lowercase hex) of the object's content this job
        /// deploys. The controller sets it when it queues the job, so every
        /// host deploys the same version: an agent that has that version at
        /// hand reads nothing from the file store, and one that finds the
        /// object replaced since fails the job instead of deploying other
        /// content. A client may set it to deploy only that version (the
        /// controller refuses the job when the object is another).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub object_sha256: Option<String>,
    }

    /// `data` of `node.packages.get`.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct PackagesParams {
        /// Only packages whose name matches: `*` matches any run of
        /// characters (`openssl*`); all packages when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
    }

    /// `data` of `file.status.get`.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    pub struct FileStatusParams {
        /// Absolute path on the host.
        pub path: String,
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner
/// hyphens, 1–63 characters each, at most 253 in all.
pub fn is_valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Validates a deploy or status path: absolute, and without `..` segments.
///
/// ```
/// use osapi_api::ops::validate_host_path;
/// assert!(validate_host_path("/etc/app.conf").is_ok());
/// assert!(validate_host_path("etc/app.conf").is_err());
/// assert!(validate_host_path("/etc/../root/.ssh/keys").is_err());
/// ```
pub fn validate_host_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("path is required".into());
    }
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must be absolute"));
    }
    if path.split('/').any(|seg| seg == "..") {
        return Err(format!("path {path:?} must not contain '..' segments"));
    }
    if path.contains('\0') {
        return Err("path must not contain NUL bytes".into());
    }
    if path.ends_with('/') {
        return Err(format!("path {path:?} must name a file, not a directory"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_type_and_one_wire_name() {
        struct Back;
        impl OpVisitor for Back {
            type Out = Operation;
            fn visit<O: Op>(self) -> Operation {
                O::OPERATION
            }
        }
        let mut names = std::collections::HashSet::new();
        for op in Operation::ALL {
            assert_eq!(op.visit(Back), op, "{op}");
            assert_eq!(op.as_str().parse::<Operation>(), Ok(op));
            assert!(names.insert(op.as_str()), "{op} twice");
        }
        // Operations without parameters send an empty object.
        assert_eq!(
            serde_json::to_value(NoParams {}).unwrap(),
            serde_json::json!({})
        );
        let _: NoParams = serde_json::from_value(serde_json::json!({"extra": 1})).unwrap();
    }

    #[test]
    fn classes_follow_upstream() {
        assert_eq!(JobClass::of("node.reboot.execute"), JobClass::Query);
        assert_eq!(JobClass::of("network.dns.update"), JobClass::Modify);
        assert_eq!(JobClass::of("network.ping.do"), JobClass::Query);
        assert_eq!(JobClass::of("file.status.get"), JobClass::Query);
        assert_eq!(JobClass::of("file.deploy.execute"), JobClass::Modify);
    }

    #[test]
    fn all_ops_round_trip() {
        for op in Operation::ALL {
            assert_eq!(op.as_str().parse::<Operation>().unwrap(), op);
        }
        assert_eq!(
            "node.mem.get".parse::<Operation>().unwrap(),
            Operation::NodeMemoryGet
        );
        assert!("node.reboot.execute".parse::<Operation>().is_err());
    }

    #[test]
    fn exec_params_accept_null_args() {
        let p: CommandExecParams =
            serde_json::from_str(r#"{"command":"uptime","args":null}"#).unwrap();
        assert!(p.args.is_empty());
    }
}
