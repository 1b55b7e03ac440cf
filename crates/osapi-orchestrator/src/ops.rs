//! The typed operations: each adds a step to the plan and returns its
//! handle. Names follow upstream (`get-hostname`, `run-<basename>`,
//! `shell-<first word's basename>`, then `-2`, `-3` …).

use bytes::Bytes;
use osapi_api::ops::{ContentType, Operation};
use serde_json::{Value, json};

use crate::orchestrator::Orchestrator;
use crate::plan::{Builtin, StepKind};
use crate::step::Step;
use crate::types::*;

fn job(op: Operation, target: &str, data: Value) -> StepKind {
    StepKind::Job {
        op,
        target: target.to_string(),
        data,
    }
}

/// The last path component of a command word (`/usr/bin/ls` → `ls`).
fn basename(word: &str) -> &str {
    word.rsplit('/').find(|s| !s.is_empty()).unwrap_or(word)
}

impl Orchestrator {
    /// Checks the controller is up (`GET /health`). Unchanged on success.
    pub fn health_check(&self) -> Step<HealthResponse> {
        self.add("health-check", StepKind::Builtin(Builtin::Health))
    }

    /// Hostname and labels.
    pub fn node_hostname_get(&self, target: &str) -> Step<HostnameResult> {
        self.add(
            "get-hostname",
            job(Operation::NodeHostnameGet, target, json!({})),
        )
    }

    /// Hostname, OS, uptime, disks, memory and load in one call.
    pub fn node_status_get(&self, target: &str) -> Step<NodeStatusResult> {
        self.add(
            "get-status",
            job(Operation::NodeStatusGet, target, json!({})),
        )
    }

    /// Uptime.
    pub fn node_uptime_get(&self, target: &str) -> Step<UptimeResult> {
        self.add(
            "get-uptime",
            job(Operation::NodeUptimeGet, target, json!({})),
        )
    }

    /// Distribution and version.
    pub fn node_os_get(&self, target: &str) -> Step<OsInfo> {
        self.add("get-os", job(Operation::NodeOsGet, target, json!({})))
    }

    /// Mounted filesystems.
    pub fn node_disk_get(&self, target: &str) -> Step<DiskResult> {
        self.add("get-disk", job(Operation::NodeDiskGet, target, json!({})))
    }

    /// Memory.
    pub fn node_memory_get(&self, target: &str) -> Step<MemoryResult> {
        self.add(
            "get-memory",
            job(Operation::NodeMemoryGet, target, json!({})),
        )
    }

    /// Load averages.
    pub fn node_load_get(&self, target: &str) -> Step<LoadResult> {
        self.add("get-load", job(Operation::NodeLoadGet, target, json!({})))
    }

    /// DNS servers and search domains of an interface (`""` for the system configuration).
    pub fn network_dns_get(&self, target: &str, interface: &str) -> Step<DnsConfigResult> {
        self.add(
            "get-dns",
            job(
                Operation::NetworkDnsGet,
                target,
                json!({"interface": interface}),
            ),
        )
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
        let data = json!({"interface": interface, "servers": list(servers), "search_domains": list(search_domains)});
        let kind = job(Operation::NetworkDnsUpdate, target, data);
        if servers.is_empty() && search_domains.is_empty() {
            return self.add_invalid(
                "update-dns",
                kind,
                "network_dns_update needs servers or search domains".into(),
            );
        }
        self.add("update-dns", kind)
    }

    /// Pings an address three times.
    pub fn network_ping_do(&self, target: &str, address: &str) -> Step<PingResult> {
        self.add(
            "ping",
            job(
                Operation::NetworkPingDo,
                target,
                json!({"address": address}),
            ),
        )
    }

    /// Runs a command without a shell. A non-zero exit fails that host.
    pub fn command_exec(&self, target: &str, command: &str, args: &[&str]) -> Step<CommandResult> {
        let kind = job(
            Operation::CommandExec,
            target,
            json!({"command": command, "args": args}),
        );
        if command.trim().is_empty() {
            return self.add_invalid("run", kind, "command must not be empty".into());
        }
        self.add(&format!("run-{}", basename(command)), kind)
    }

    /// Runs a command line with `/bin/sh -c`. A non-zero exit fails that host.
    pub fn command_shell(&self, target: &str, command: &str) -> Step<CommandResult> {
        let kind = job(Operation::CommandShell, target, json!({"command": command}));
        match command.split_whitespace().next() {
            Some(first) => self.add(&format!("shell-{}", basename(first)), kind),
            None => self.add_invalid("shell", kind, "command must not be empty".into()),
        }
    }

    /// Deploys a stored file (raw or as a template).
    pub fn file_deploy(&self, target: &str, opts: FileDeployOpts) -> Step<FileDeployResult> {
        let data = opts.to_data();
        let kind = job(Operation::FileDeploy, target, data);
        if opts.object_name.is_empty() {
            return self.add_invalid("deploy-file", kind, "object name must not be empty".into());
        }
        if let Err(e) = osapi_api::ops::validate_host_path(&opts.path) {
            return self.add_invalid("deploy-file", kind, e);
        }
        self.add("deploy-file", kind)
    }

    /// Whether a deployed file is still as deployed.
    pub fn file_status_get(&self, target: &str, path: &str) -> Step<FileStatusResult> {
        let kind = job(Operation::FileStatusGet, target, json!({"path": path}));
        if let Err(e) = osapi_api::ops::validate_host_path(path) {
            return self.add_invalid("file-status", kind, e);
        }
        self.add("file-status", kind)
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
        // A named step reserves its name: the next auto name skips it.
        o.node_load_get("_any").named("get-load-2");
        assert_eq!(o.node_load_get("_any").name(), "get-load");
        assert_eq!(o.node_load_get("_any").name(), "get-load-3");
    }
}
