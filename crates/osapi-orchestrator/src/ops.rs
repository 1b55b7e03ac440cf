//! The typed operations: each adds a step to the plan and returns its
//! handle. [`Orchestrator::op`] takes any operation of the catalogue as a
//! type; the named methods (`node_load_get`, …) are wrappers over it that
//! keep upstream's step names (`get-hostname`, `run-<basename>`,
//! `shell-<first word's basename>`, then `-2`, `-3` …) and check their
//! arguments.

use bytes::Bytes;
use osapi_api::ops::{Op, Operation, Validate, op};
use serde_json::Value;

use crate::orchestrator::Orchestrator;
use crate::plan::{Builtin, StepKind};
use crate::step::Step;
use crate::types::*;

/// The name upstream gives a step of `op` (before `-2`, `-3` …).
fn step_name(op: Operation) -> &'static str {
    match op {
        Operation::NodeHostnameGet => "get-hostname",
        Operation::NodeStatusGet => "get-status",
        Operation::NodeUptimeGet => "get-uptime",
        Operation::NodeOsGet => "get-os",
        Operation::NodeDiskGet => "get-disk",
        Operation::NodeMemoryGet => "get-memory",
        Operation::NodeLoadGet => "get-load",
        Operation::NetworkDnsGet => "get-dns",
        Operation::NetworkDnsUpdate => "update-dns",
        Operation::NetworkPingDo => "ping",
        Operation::CommandExec => "run",
        Operation::CommandShell => "shell",
        Operation::FileDeploy => "deploy-file",
        Operation::FileStatusGet => "file-status",
        Operation::NodePackagesGet => "get-packages",
    }
}

/// The last path component of a command word (`/usr/bin/ls` → `ls`).
fn basename(word: &str) -> &str {
    word.rsplit('/').find(|s| !s.is_empty()).unwrap_or(word)
}

impl Orchestrator {
    /// A step running operation `O` on `target` (`_any`, `_all`, a
    /// hostname or `key:value`) with typed parameters; its result decodes
    /// as `O::Output`. Every operation of the catalogue works here, also
    /// those without a named method.
    ///
    /// ```no_run
    /// # fn demo(o: &osapi_orchestrator::Orchestrator) {
    /// use osapi_orchestrator::op;
    /// use osapi_orchestrator::types::{LoadResult, PingParams};
    /// let load = o.op::<op::NodeLoadGet>("_all", Default::default());
    /// let ping = o
    ///     .op::<op::NetworkPingDo>("web-01", PingParams { address: "10.0.0.1".into(), count: Some(1) })
    ///     .after(&load);
    /// # let _: osapi_orchestrator::Step<LoadResult> = load;
    /// # }
    /// ```
    pub fn op<O: Op>(&self, target: &str, params: O::Params) -> Step<O::Output> {
        self.op_step::<O>(step_name(O::OPERATION), target, params, None)
    }

    /// Adds a step of `O` named after `name`; `invalid` makes it a plan error.
    fn op_step<O: Op>(
        &self,
        name: &str,
        target: &str,
        params: O::Params,
        invalid: Option<String>,
    ) -> Step<O::Output> {
        let invalid = invalid.or_else(|| params.validate().err());
        let (data, invalid) = match serde_json::to_value(&params) {
            Ok(data) => (data, invalid),
            Err(e) => (
                Value::Null,
                Some(format!("cannot encode the parameters: {e}")),
            ),
        };
        let kind = StepKind::Job {
            op: O::OPERATION,
            target: target.to_string(),
            data,
        };
        match invalid {
            Some(message) => self.add_invalid(name, kind, message),
            None => self.add(name, kind),
        }
    }

    /// Checks the controller is up (`GET /health`). Unchanged on success.
    pub fn health_check(&self) -> Step<HealthResponse> {
        self.add("health-check", StepKind::Builtin(Builtin::Health))
    }

    /// Hostname and labels.
    pub fn node_hostname_get(&self, target: &str) -> Step<HostnameResult> {
        self.op::<op::NodeHostnameGet>(target, NoParams {})
    }

    /// Hostname, OS, uptime, disks, memory and load in one call.
    pub fn node_status_get(&self, target: &str) -> Step<NodeStatusResult> {
        self.op::<op::NodeStatusGet>(target, NoParams {})
    }

    /// Uptime.
    pub fn node_uptime_get(&self, target: &str) -> Step<UptimeResult> {
        self.op::<op::NodeUptimeGet>(target, NoParams {})
    }

    /// Distribution and version.
    pub fn node_os_get(&self, target: &str) -> Step<OsInfo> {
        self.op::<op::NodeOsGet>(target, NoParams {})
    }

    /// Mounted filesystems.
    pub fn node_disk_get(&self, target: &str) -> Step<DiskResult> {
        self.op::<op::NodeDiskGet>(target, NoParams {})
    }

    /// Memory.
    pub fn node_memory_get(&self, target: &str) -> Step<MemoryResult> {
        self.op::<op::NodeMemoryGet>(target, NoParams {})
    }

    /// Load averages.
    pub fn node_load_get(&self, target: &str) -> Step<LoadResult> {
        self.op::<op::NodeLoadGet>(target, NoParams {})
    }

    /// Installed packages, or those whose name matches `name` (`*` matches
    /// any run of characters: `Some("openssl*")`).
    pub fn node_packages_get(&self, target: &str, name: Option<&str>) -> Step<PackagesResult> {
        let params = PackagesParams {
            name: name.map(str::to_string),
        };
        self.op::<op::NodePackagesGet>(target, params)
    }

    /// DNS servers and search domains of an interface (`""` for the system configuration).
    pub fn network_dns_get(&self, target: &str, interface: &str) -> Step<DnsConfigResult> {
        let params = DnsGetParams {
            interface: interface.to_string(),
        };
        self.op::<op::NetworkDnsGet>(target, params)
    }

    /// Sets DNS servers and/or search domains (an empty list keeps the current one).
    pub fn network_dns_update(
        &self,
        target: &str,
        interface: &str,
        servers: &[&str],
        search_domains: &[&str],
    ) -> Step<DnsUpdateResult> {
        let list = |v: &[&str]| {
            (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect::<Vec<String>>())
        };
        let params = DnsUpdateParams {
            interface: interface.to_string(),
            servers: list(servers),
            search_domains: list(search_domains),
            dry_run: false,
        };
        let invalid = (servers.is_empty() && search_domains.is_empty())
            .then(|| "network_dns_update needs servers or search domains".to_string());
        self.op_step::<op::NetworkDnsUpdate>("update-dns", target, params, invalid)
    }

    /// Pings an address three times.
    pub fn network_ping_do(&self, target: &str, address: &str) -> Step<PingResult> {
        let params = PingParams {
            address: address.to_string(),
            count: None,
        };
        self.op::<op::NetworkPingDo>(target, params)
    }

    /// Runs a command without a shell. A non-zero exit fails that host.
    pub fn command_exec(&self, target: &str, command: &str, args: &[&str]) -> Step<CommandResult> {
        let params = CommandExecParams {
            command: command.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        };
        if command.trim().is_empty() {
            let invalid = Some("command must not be empty".to_string());
            return self.op_step::<op::CommandExec>("run", target, params, invalid);
        }
        let name = format!("run-{}", basename(command));
        self.op_step::<op::CommandExec>(&name, target, params, None)
    }

    /// Runs a command line with `/bin/sh -c`. A non-zero exit fails that host.
    pub fn command_shell(&self, target: &str, command: &str) -> Step<CommandResult> {
        let params = CommandShellParams {
            command: command.to_string(),
            ..Default::default()
        };
        match command.split_whitespace().next() {
            Some(first) => {
                let name = format!("shell-{}", basename(first));
                self.op_step::<op::CommandShell>(&name, target, params, None)
            }
            None => {
                let invalid = Some("command must not be empty".to_string());
                self.op_step::<op::CommandShell>("shell", target, params, invalid)
            }
        }
    }

    /// Deploys a stored file (raw or as a template).
    pub fn file_deploy(&self, target: &str, opts: FileDeployOpts) -> Step<FileDeployResult> {
        let invalid = if opts.object_name.is_empty() {
            Some("object name must not be empty".to_string())
        } else {
            osapi_api::ops::validate_host_path(&opts.path).err()
        };
        self.op_step::<op::FileDeploy>("deploy-file", target, opts.to_params(), invalid)
    }

    /// Whether a deployed file is still as deployed.
    pub fn file_status_get(&self, target: &str, path: &str) -> Step<FileStatusResult> {
        let invalid = osapi_api::ops::validate_host_path(path).err();
        let params = FileStatusParams {
            path: path.to_string(),
        };
        self.op_step::<op::FileStatusGet>("file-status", target, params, invalid)
    }

    /// Uploads a file to the store: unchanged when the same content is there,
    /// an error when other content is there, unless `.force()`.
    pub fn file_upload(
        &self,
        name: &str,
        content_type: ContentType,
        data: impl Into<Bytes>,
    ) -> Step<FileUploadResult> {
        let data: Bytes = data.into();
        let builtin = Builtin::Upload {
            name: name.to_string(),
            content_type,
            data: data.clone(),
            force: false,
        };
        if name.is_empty() || data.is_empty() {
            return self.add_invalid(
                "upload-file",
                StepKind::Builtin(builtin),
                "file_upload needs a name and non-empty content".into(),
            );
        }
        self.add("upload-file", StepKind::Builtin(builtin))
    }

    /// Whether `data` differs from the stored object `name` (changed when it does or is absent).
    pub fn file_changed(&self, name: &str, data: impl Into<Bytes>) -> Step<FileChangedResult> {
        self.add(
            "check-file",
            StepKind::Builtin(Builtin::Changed {
                name: name.to_string(),
                data: data.into(),
            }),
        )
    }

    /// Every agent with its facts (`GET /agent`).
    pub fn agent_list(&self) -> Step<AgentListResult> {
        self.add("list-agents", StepKind::Builtin(Builtin::AgentList))
    }

    /// One agent (`GET /agent/{hostname}`).
    pub fn agent_get(&self, hostname: &str) -> Step<AgentResult> {
        self.add(
            "get-agent",
            StepKind::Builtin(Builtin::AgentGet {
                hostname: hostname.to_string(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream_head() {
        let o = Orchestrator::builder("http://127.0.0.1:1", "t")
            .quiet()
            .build()
            .unwrap();
        assert_eq!(o.node_hostname_get("_any").name(), "get-hostname");
        assert_eq!(o.node_disk_get("_any").name(), "get-disk");
        assert_eq!(o.node_hostname_get("_any").name(), "get-hostname-2");
        assert_eq!(o.command_exec("_any", "uptime", &[]).name(), "run-uptime");
        assert_eq!(o.command_exec("_any", "uptime", &[]).name(), "run-uptime-2");
        assert_eq!(
            o.command_exec("_any", "/usr/bin/ls", &["-l"]).name(),
            "run-ls"
        );
        assert_eq!(o.command_shell("_any", "uname -a").name(), "shell-uname");
        assert_eq!(
            o.command_shell("_any", "/sbin/apt-get update -qq").name(),
            "shell-apt-get"
        );
        assert_eq!(o.health_check().name(), "health-check");
        assert_eq!(o.health_check().name(), "health-check-2");
        assert_eq!(o.agent_list().name(), "list-agents");
        assert_eq!(o.agent_get("x").name(), "get-agent");
        assert_eq!(o.file_changed("x", "y").name(), "check-file");
        assert_eq!(
            o.file_upload("x", ContentType::Raw, "y").name(),
            "upload-file"
        );
        // Any operation as a type: upstream's name for it.
        assert_eq!(
            o.op::<op::NodeUptimeGet>("_any", NoParams {}).name(),
            "get-uptime"
        );
        assert_eq!(
            o.op::<op::NetworkPingDo>("_any", PingParams::default())
                .name(),
            "ping"
        );
        // A named step reserves its name: the next auto name skips it.
        o.node_load_get("_any").named("get-load-2");
        assert_eq!(o.node_load_get("_any").name(), "get-load");
        assert_eq!(o.node_load_get("_any").name(), "get-load-3");
    }
}
