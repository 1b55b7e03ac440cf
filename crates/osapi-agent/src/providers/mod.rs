//! Providers: the code that reads and changes the real Linux host on behalf
//! of a job. Each operation of the catalogue has a `Provider`;
//! [`execute`] decodes a job's `data` into the operation's typed
//! parameters, runs its provider and serialises its typed result.
//!
//! Error texts follow upstream's wrapping (`failed to get hostname: …`,
//! `command exec failed: command execution failed: …`, `ping failed: …` …),
//! with a cause a person can act on after the prefix.

pub mod command;
pub mod dns;
pub mod file;
pub mod node;
pub mod ping;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use osapi_api::ops::{
    CommandExecParams, CommandShellParams, DnsGetParams, DnsUpdateParams, FileDeployParams,
    FileStatusParams, NoParams, Op, Operation, PingParams, op,
};
use osapi_api::records::Facts;
use osapi_api::results::{
    CommandResult, DiskResult, DnsConfigResult, DnsUpdateResult, FileDeployResult,
    FileStatusResult, HostnameResult, LoadResult, MemoryResult, NodeStatusResult, OsInfo,
    PingResult, UptimeResult,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Host-side settings of the providers.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// The resolver file read and written in file mode (default `/etc/resolv.conf`).
    pub resolv_conf: PathBuf,
    /// Whether DNS goes through `resolvectl` (systemd-resolved).
    pub resolvectl: ResolvectlMode,
    /// Command timeout when a job gives none (default 30 s).
    pub command_default_timeout: Duration,
    /// Longest command timeout a job may ask for (default 300 s); larger values are rejected.
    pub command_max_timeout: Duration,
    /// Bytes captured per output stream (default 4 MiB); the excess is
    /// dropped and the result says so (`stdout_truncated`, `stderr_truncated`).
    pub max_output_bytes: usize,
    /// Overall time limit of one ping operation (default 5 s).
    pub ping_timeout: Duration,
    /// Pause between echo requests (default 200 ms).
    pub ping_interval: Duration,
    /// Where the host paths of file operations live: with `Some(root)`,
    /// deploying `/etc/app.conf` writes `<root>/etc/app.conf` (creating
    /// its directories) and its status reads it there; results still say
    /// `/etc/app.conf`. `None` (the default): the real filesystem. The
    /// embedded stack's sandbox sets it; it confines paths, not processes.
    pub file_root: Option<PathBuf>,
}

/// The default resolver file.
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            resolv_conf: PathBuf::from(DEFAULT_RESOLV_CONF),
            resolvectl: ResolvectlMode::Auto,
            command_default_timeout: Duration::from_secs(30),
            command_max_timeout: Duration::from_secs(300),
            max_output_bytes: 4 * 1024 * 1024,
            ping_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_millis(200),
            file_root: None,
        }
    }
}

/// When DNS reads and updates go through `resolvectl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolvectlMode {
    /// Use `resolvectl` when it is on `PATH` and systemd-resolved answers for
    /// the interface; otherwise the resolver file.
    #[default]
    Auto,
    /// Always use the resolver file.
    Never,
    /// Always use `resolvectl`; fail when it is missing or fails.
    Always,
}

/// Everything a provider may need besides the job's own data.
#[derive(Clone)]
pub struct ProviderContext {
    /// The agent's identity (used in results and file-state keys).
    pub hostname: String,
    /// The agent's configured labels.
    pub labels: Arc<BTreeMap<String, String>>,
    /// The last collected facts, if any (template `.Facts`).
    pub facts: Option<Arc<Facts>>,
    /// Uploaded files, read by file deploy.
    pub objects: Arc<dyn osapi_bus::ObjectStore>,
    /// Records of deployed files.
    pub file_state: Arc<dyn osapi_bus::FileStateStore>,
    /// Host-side settings.
    pub config: Arc<ProviderConfig>,
    /// Where work that must be cleaned up after a crash is recorded.
    pub journal: Arc<crate::journal::Journal>,
}

/// What a provider produced: the typed result serialised, and whether the host changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderOutput {
    /// The typed result as JSON (it includes `changed`).
    pub data: Value,
    /// Whether the operation changed the host.
    pub changed: bool,
}

/// Why an operation failed, as the text that goes into the job response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

impl ProviderError {
    /// An error with this text.
    pub fn new(message: impl Into<String>) -> Self {
        ProviderError(message.into())
    }
}

/// What the agent does for one operation: one implementation per
/// operation type of the catalogue ([`osapi_api::ops::op`]); [`execute`]
/// reaches it through one generic dispatch generated from the catalogue,
/// so an operation without a provider does not compile.
pub(crate) trait Provider: Op {
    /// How the operation is named in "failed to parse … data" errors.
    const WHAT: &'static str;

    /// Runs the operation; the result and whether the host changed.
    fn run(
        params: Self::Params,
        ctx: &ProviderContext,
    ) -> impl Future<Output = Result<(Self::Output, bool), ProviderError>> + Send;
}

/// Decodes `data` as `P`'s parameters, runs `P` and encodes its result.
async fn run<P: Provider>(
    data: Value,
    ctx: &ProviderContext,
) -> Result<ProviderOutput, ProviderError> {
    let params: P::Params = decode(data, P::WHAT)?;
    let (result, changed) = P::run(params, ctx).await?;
    output(&result, changed)
}

macro_rules! dispatch {
    ($($variant:ident),*) => {
        /// Runs one operation on this host.
        ///
        /// `data` is the job's `data` object, already parsed and with `@fact.`
        /// references resolved; `null` counts as `{}`.
        pub async fn execute(
            op: Operation,
            data: Value,
            ctx: &ProviderContext,
        ) -> Result<ProviderOutput, ProviderError> {
            match op {
                $( Operation::$variant => run::<op::$variant>(data, ctx).await, )*
            }
        }
    };
}
osapi_api::with_operations!(dispatch);

impl Provider for op::NodeHostnameGet {
    const WHAT: &'static str = "hostname";
    async fn run(
        _: NoParams,
        ctx: &ProviderContext,
    ) -> Result<(HostnameResult, bool), ProviderError> {
        let hostname = node::os_hostname()?;
        let labels = (*ctx.labels).clone();
        Ok((
            HostnameResult {
                hostname,
                agent: ctx.hostname.clone(),
                labels,
                changed: false,
            },
            false,
        ))
    }
}

impl Provider for op::NodeStatusGet {
    const WHAT: &'static str = "status";
    async fn run(
        _: NoParams,
        _: &ProviderContext,
    ) -> Result<(NodeStatusResult, bool), ProviderError> {
        Ok((blocking(node::status).await?, false))
    }
}

impl Provider for op::NodeUptimeGet {
    const WHAT: &'static str = "uptime";
    async fn run(_: NoParams, _: &ProviderContext) -> Result<(UptimeResult, bool), ProviderError> {
        Ok((node::uptime()?, false))
    }
}

impl Provider for op::NodeOsGet {
    const WHAT: &'static str = "os";
    async fn run(_: NoParams, _: &ProviderContext) -> Result<(OsInfo, bool), ProviderError> {
        Ok((node::os_info()?, false))
    }
}

impl Provider for op::NodeDiskGet {
    const WHAT: &'static str = "disk";
    async fn run(_: NoParams, _: &ProviderContext) -> Result<(DiskResult, bool), ProviderError> {
        let disks = blocking(node::disks).await??;
        Ok((
            DiskResult {
                disks,
                changed: false,
            },
            false,
        ))
    }
}

impl Provider for op::NodeMemoryGet {
    const WHAT: &'static str = "memory";
    async fn run(_: NoParams, _: &ProviderContext) -> Result<(MemoryResult, bool), ProviderError> {
        Ok((node::memory()?, false))
    }
}

impl Provider for op::NodeLoadGet {
    const WHAT: &'static str = "load";
    async fn run(_: NoParams, _: &ProviderContext) -> Result<(LoadResult, bool), ProviderError> {
        Ok((node::load()?, false))
    }
}

impl Provider for op::NetworkDnsGet {
    const WHAT: &'static str = "dns get";
    async fn run(
        params: DnsGetParams,
        ctx: &ProviderContext,
    ) -> Result<(DnsConfigResult, bool), ProviderError> {
        Ok((dns::get(&params, &ctx.config).await?, false))
    }
}

impl Provider for op::NetworkDnsUpdate {
    const WHAT: &'static str = "dns update";
    async fn run(
        params: DnsUpdateParams,
        ctx: &ProviderContext,
    ) -> Result<(DnsUpdateResult, bool), ProviderError> {
        let result = dns::update(&params, &ctx.config).await?;
        let changed = result.changed;
        Ok((result, changed))
    }
}

impl Provider for op::NetworkPingDo {
    const WHAT: &'static str = "ping";
    async fn run(
        params: PingParams,
        ctx: &ProviderContext,
    ) -> Result<(PingResult, bool), ProviderError> {
        Ok((ping::ping(&params, &ctx.config).await?, false))
    }
}

impl Provider for op::CommandExec {
    const WHAT: &'static str = "command exec";
    async fn run(
        params: CommandExecParams,
        ctx: &ProviderContext,
    ) -> Result<(CommandResult, bool), ProviderError> {
        // A command that ran changed the host (upstream's default); one
        // its conditions skipped did not.
        let result = command::exec(&params, &ctx.config, Some(&ctx.journal)).await?;
        let changed = result.changed;
        Ok((result, changed))
    }
}

impl Provider for op::CommandShell {
    const WHAT: &'static str = "command shell";
    async fn run(
        params: CommandShellParams,
        ctx: &ProviderContext,
    ) -> Result<(CommandResult, bool), ProviderError> {
        let result = command::shell(&params, &ctx.config, Some(&ctx.journal)).await?;
        let changed = result.changed;
        Ok((result, changed))
    }
}

impl Provider for op::FileDeploy {
    const WHAT: &'static str = "file deploy";
    async fn run(
        params: FileDeployParams,
        ctx: &ProviderContext,
    ) -> Result<(FileDeployResult, bool), ProviderError> {
        let result = file::deploy(&params, ctx).await?;
        let changed = result.changed;
        Ok((result, changed))
    }
}

impl Provider for op::FileStatusGet {
    const WHAT: &'static str = "file status";
    async fn run(
        params: FileStatusParams,
        ctx: &ProviderContext,
    ) -> Result<(FileStatusResult, bool), ProviderError> {
        Ok((file::status(&params, ctx).await?, false))
    }
}

/// Decodes a job's `data` into an operation's parameters.
fn decode<T: DeserializeOwned>(data: Value, what: &str) -> Result<T, ProviderError> {
    let data = if data.is_null() {
        Value::Object(Default::default())
    } else {
        data
    };
    serde_json::from_value(data)
        .map_err(|e| ProviderError(format!("failed to parse {what} data: {e}")))
}

/// Serialises a typed result.
fn output<T: Serialize>(result: &T, changed: bool) -> Result<ProviderOutput, ProviderError> {
    let data = serde_json::to_value(result)
        .map_err(|e| ProviderError(format!("failed to encode result: {e}")))?;
    Ok(ProviderOutput { data, changed })
}

/// Runs blocking host I/O off the async workers.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ProviderError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ProviderError(format!("provider task failed: {e}")))
}

/// The first executable file called `name` in the directories of `PATH`.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use osapi_bus::memory::{MemoryFileStateStore, MemoryObjectStore};

    pub(crate) fn context() -> ProviderContext {
        ProviderContext {
            hostname: "test-host".into(),
            labels: Arc::new(BTreeMap::from([("group".to_string(), "web".to_string())])),
            facts: None,
            objects: Arc::new(MemoryObjectStore::default()),
            file_state: Arc::new(MemoryFileStateStore::new()),
            config: Arc::new(ProviderConfig::default()),
            journal: Default::default(),
        }
    }

    #[tokio::test]
    async fn hostname_carries_labels() {
        let out = execute(Operation::NodeHostnameGet, Value::Null, &context())
            .await
            .unwrap();
        assert!(!out.changed);
        let expected = nix::unistd::gethostname().unwrap().into_string().unwrap();
        assert_eq!(out.data["hostname"], expected.as_str());
        assert_eq!(out.data["labels"]["group"], "web");
        assert_eq!(out.data["changed"], false);
    }

    #[tokio::test]
    async fn decode_errors_name_the_operation() {
        let err = execute(
            Operation::CommandExec,
            serde_json::json!({"args": []}),
            &context(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to parse command exec data: missing field `command`"
        );
        let err = execute(
            Operation::NetworkPingDo,
            serde_json::json!({"address": 5}),
            &context(),
        )
        .await
        .unwrap_err();
        assert!(
            err.0.starts_with("failed to parse ping data: invalid type"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn query_results_are_typed() {
        let ctx = context();
        for op in [
            Operation::NodeStatusGet,
            Operation::NodeUptimeGet,
            Operation::NodeOsGet,
            Operation::NodeDiskGet,
            Operation::NodeMemoryGet,
            Operation::NodeLoadGet,
        ] {
            let out = execute(op, serde_json::json!({}), &ctx).await.unwrap();
            assert!(!out.changed, "{op}");
            assert_eq!(out.data["changed"], false, "{op}");
        }
        let out = execute(Operation::NodeDiskGet, Value::Null, &ctx)
            .await
            .unwrap();
        let disks: DiskResult = serde_json::from_value(out.data).unwrap();
        assert!(disks.disks.iter().any(|d| d.name == "/"));
    }

    #[tokio::test]
    async fn command_changed_is_true() {
        let out = execute(
            Operation::CommandExec,
            serde_json::json!({"command": "true"}),
            &context(),
        )
        .await
        .unwrap();
        assert!(out.changed);
        assert_eq!(out.data["exit_code"], 0);
    }

    #[tokio::test]
    async fn file_deploy_and_status_through_dispatch() {
        let ctx = context();
        ctx.objects
            .put("motd", "raw", bytes::Bytes::from_static(b"hello\n"))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("motd").display().to_string();
        let data = serde_json::json!({"object_name": "motd", "path": path, "content_type": "raw", "mode": "0600"});
        let out = execute(Operation::FileDeploy, data.clone(), &ctx)
            .await
            .unwrap();
        assert!(out.changed);
        assert_eq!(out.data["changed"], true);
        assert_eq!(out.data["path"], path.as_str());
        let out = execute(Operation::FileDeploy, data, &ctx).await.unwrap();
        assert!(!out.changed);
        let out = execute(
            Operation::FileStatusGet,
            serde_json::json!({"path": path}),
            &ctx,
        )
        .await
        .unwrap();
        assert_eq!(out.data["status"], "in-sync");
        let err = execute(Operation::FileStatusGet, serde_json::json!({}), &ctx)
            .await
            .unwrap_err();
        assert_eq!(
            err.0,
            "failed to parse file status data: missing field `path`"
        );
    }

    #[tokio::test]
    async fn dns_through_dispatch() {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 192.0.2.1\n").unwrap();
        let mut ctx = context();
        ctx.config = Arc::new(ProviderConfig {
            resolv_conf: resolv.clone(),
            resolvectl: ResolvectlMode::Never,
            ..Default::default()
        });
        let out = execute(
            Operation::NetworkDnsUpdate,
            serde_json::json!({"interface": "eth0", "servers": ["192.0.2.2"], "search_domains": null}),
            &ctx,
        )
        .await
        .unwrap();
        assert!(out.changed);
        assert_eq!(out.data["success"], true);
        let out = execute(
            Operation::NetworkDnsGet,
            serde_json::json!({"interface": "eth0"}),
            &ctx,
        )
        .await
        .unwrap();
        assert_eq!(out.data["dns_servers"], serde_json::json!(["192.0.2.2"]));
        assert_eq!(out.data["search_domains"], serde_json::json!(["."]));
        assert!(!out.changed);
    }

    #[test]
    fn path_lookup() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("definitely-not-a-command-osapi").is_none());
    }
}
