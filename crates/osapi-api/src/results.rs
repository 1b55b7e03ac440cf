//! Typed results of every operation: what an agent puts in a job response's
//! `data`. Keys are snake_case and carry `changed`; serde aliases accept the
//! Go-cased keys of upstream agents (`Load1`, `Total`, `DNSServers`,
//! `PacketsSent` …) so results from an upstream fleet decode too.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::serde_util::null_as_default;

/// Result of `node.hostname.get`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostnameResult {
    /// The host's name as the OS reports it (upstream's field; on a
    /// simulated fleet every agent may report the same machine's name).
    #[serde(alias = "Hostname")]
    pub hostname: String,
    /// The agent that answered: its identity, which targets name (ours;
    /// empty from upstream agents).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent: String,
    /// The agent's configured labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: BTreeMap<String, String>,
    /// Always false: reading changes nothing.
    #[serde(default)]
    pub changed: bool,
}

/// Distribution and version (`node.os.get`, and inside status).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OsInfo {
    /// Distribution id from os-release, e.g. `debian`, `ubuntu`.
    #[serde(alias = "Distribution")]
    pub distribution: String,
    /// Version id, e.g. `12`, `24.04`.
    #[serde(alias = "Version", default)]
    pub version: String,
    /// Always false.
    #[serde(default)]
    pub changed: bool,
}

/// Result of `node.uptime.get`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UptimeResult {
    /// Seconds since boot.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// The same, as a Go duration string (`76h3m12s`).
    #[serde(default)]
    pub uptime: String,
    /// Always false.
    #[serde(default)]
    pub changed: bool,
}

impl UptimeResult {
    /// Uptime as a [`Duration`].
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.uptime_seconds)
    }
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskUsage {
    /// Mount point.
    #[serde(alias = "Name")]
    pub name: String,
    /// Size in bytes.
    #[serde(alias = "Total", default)]
    pub total: u64,
    /// Used bytes.
    #[serde(alias = "Used", default)]
    pub used: u64,
    /// Bytes available to unprivileged users.
    #[serde(alias = "Free", default)]
    pub free: u64,
    /// Backing device, e.g. `/dev/vda1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    /// Filesystem type, e.g. `ext4`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fs_type: String,
}

impl DiskUsage {
    /// Used share in percent (0 when the size is unknown).
    pub fn used_percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.used as f64 * 100.0 / self.total as f64
        }
    }
}

/// Result of `node.disk.get`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DiskResult {
    /// Mounted filesystems.
    #[serde(default, deserialize_with = "null_as_default")]
    pub disks: Vec<DiskUsage>,
    /// Always false.
    #[serde(default)]
    pub changed: bool,
}

/// Result of `node.memory.get`, in bytes.
///
/// Upstream agents send Go-cased keys and no `used`; it is then derived:
///
/// ```
/// use osapi_api::results::MemoryResult;
/// let m: MemoryResult =
///     serde_json::from_str(r#"{"Total":1000,"Available":600,"Free":100,"Cached":300}"#).unwrap();
/// assert_eq!(m.used, 400);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "MemoryWire")]
pub struct MemoryResult {
    /// MemTotal.
    pub total: u64,
    /// MemAvailable.
    pub available: u64,
    /// MemFree.
    pub free: u64,
    /// Cached + SReclaimable.
    pub cached: u64,
    /// Total − available (upstream reported Cached here; we report real
    /// use, and derive it when an upstream agent sends none).
    pub used: u64,
    /// Always false.
    pub changed: bool,
}

/// [`MemoryResult`] as agents send it: snake_case (ours) or Go-cased
/// (upstream's), `used` possibly absent.
#[derive(Deserialize)]
struct MemoryWire {
    #[serde(alias = "Total", default)]
    total: u64,
    #[serde(alias = "Available", default)]
    available: u64,
    #[serde(alias = "Free", default)]
    free: u64,
    #[serde(alias = "Cached", default)]
    cached: u64,
    #[serde(alias = "Used", default)]
    used: Option<u64>,
    #[serde(default)]
    changed: bool,
}

impl From<MemoryWire> for MemoryResult {
    fn from(w: MemoryWire) -> Self {
        MemoryResult {
            used: w
                .used
                .unwrap_or_else(|| w.total.saturating_sub(w.available)),
            total: w.total,
            available: w.available,
            free: w.free,
            cached: w.cached,
            changed: w.changed,
        }
    }
}

/// Result of `node.load.get`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadResult {
    /// 1-minute load average.
    #[serde(alias = "Load1", default)]
    pub load1: f64,
    /// 5-minute load average.
    #[serde(alias = "Load5", default)]
    pub load5: f64,
    /// 15-minute load average.
    #[serde(alias = "Load15", default)]
    pub load15: f64,
    /// Always false.
    #[serde(default)]
    pub changed: bool,
}

/// Result of `node.status.get`: everything about the host in one call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeStatusResult {
    /// OS hostname.
    #[serde(default)]
    pub hostname: String,
    /// Distribution and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_info: Option<OsInfo>,
    /// Seconds since boot.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// Upstream agents send uptime in nanoseconds under `uptime`.
    #[serde(default, rename = "uptime", skip_serializing)]
    pub uptime_nanos: Option<u64>,
    /// Mounted filesystems.
    #[serde(alias = "disk_usage", default, deserialize_with = "null_as_default")]
    pub disks: Vec<DiskUsage>,
    /// Memory.
    #[serde(
        alias = "memory_stats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<MemoryResult>,
    /// Load averages.
    #[serde(
        alias = "load_averages",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub load: Option<LoadResult>,
    /// Always false.
    #[serde(default)]
    pub changed: bool,
}

impl NodeStatusResult {
    /// Uptime, from whichever field the agent sent.
    pub fn uptime(&self) -> Duration {
        match (self.uptime_seconds, self.uptime_nanos) {
            (0, Some(ns)) => Duration::from_nanos(ns),
            (s, _) => Duration::from_secs(s),
        }
    }
}

/// Result of `network.dns.get`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DnsConfigResult {
    /// Name servers in resolution order.
    #[serde(
        alias = "DNSServers",
        alias = "servers",
        default,
        deserialize_with = "null_as_default"
    )]
    pub dns_servers: Vec<String>,
    /// Search domains (`["."]` when none are configured, as upstream).
    #[serde(alias = "SearchDomains", default, deserialize_with = "null_as_default")]
    pub search_domains: Vec<String>,
    /// Where the configuration was read from (`resolvectl` or a file path).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Always false.
    #[serde(default)]
    pub changed: bool,
}

/// Result of `network.dns.update`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DnsUpdateResult {
    /// True when the update was applied or nothing needed changing.
    #[serde(alias = "Success", default)]
    pub success: bool,
    /// True when the configuration was modified.
    #[serde(default)]
    pub changed: bool,
    /// What happened.
    #[serde(alias = "Message", default)]
    pub message: String,
    /// Check mode: nothing was changed; `changed` says whether it would be.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Result of `network.ping.do`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PingResult {
    /// Echo requests sent.
    #[serde(alias = "PacketsSent", default)]
    pub packets_sent: u32,
    /// Echo replies received.
    #[serde(alias = "PacketsReceived", default)]
    pub packets_received: u32,
    /// Lost share in percent.
    #[serde(alias = "PacketLoss", default)]
    pub packet_loss: f64,
    /// Fastest round trip, nanoseconds.
    #[serde(alias = "MinRTT", default)]
    pub min_rtt_ns: u64,
    /// Mean round trip, nanoseconds.
    #[serde(alias = "AvgRTT", default)]
    pub avg_rtt_ns: u64,
    /// Slowest round trip, nanoseconds.
    #[serde(alias = "MaxRTT", default)]
    pub max_rtt_ns: u64,
    /// Always false.
    #[serde(default)]
    pub changed: bool,
}

impl PingResult {
    /// Mean round trip.
    pub fn avg_rtt(&self) -> Duration {
        Duration::from_nanos(self.avg_rtt_ns)
    }
}

/// Result of `command.exec.execute` and `command.shell.execute`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommandResult {
    /// Captured standard output.
    #[serde(alias = "Stdout", default)]
    pub stdout: String,
    /// Captured standard error.
    #[serde(alias = "Stderr", default)]
    pub stderr: String,
    /// Exit status (128 + signal number when killed by a signal).
    #[serde(alias = "ExitCode", default)]
    pub exit_code: i32,
    /// Wall-clock run time in milliseconds.
    #[serde(alias = "DurationMs", default)]
    pub duration_ms: u64,
    /// True when the command ran (it may have changed anything); false
    /// when a condition skipped it.
    #[serde(default)]
    pub changed: bool,
    /// Standard output went past the agent's capture limit (4 MiB by
    /// default): `stdout` holds the first part.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdout_truncated: bool,
    /// The same for standard error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stderr_truncated: bool,
    /// Why the command did not run: one of its conditions (`creates`,
    /// `removes`, `unless`, `only_if`) said its work is already done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Result of `file.deploy.execute`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileDeployResult {
    /// True when the content or metadata on disk was changed.
    #[serde(default)]
    pub changed: bool,
    /// SHA-256 (hex) of the deployed bytes.
    #[serde(default)]
    pub sha256: String,
    /// Destination path.
    #[serde(default)]
    pub path: String,
    /// Unified diff of the content, old to new, when asked for (`diff`) or
    /// in check mode (at most 64 KiB; binary content is named, not shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Check mode: nothing was written; `changed` says whether it would be.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Sync state of a deployed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum FileSyncStatus {
    /// The file on disk matches what was deployed.
    #[serde(rename = "in-sync")]
    InSync,
    /// The file on disk differs from what was deployed.
    #[serde(rename = "drifted")]
    Drifted,
    /// Nothing was deployed to this path, or the file is gone.
    #[default]
    #[serde(rename = "missing")]
    Missing,
}

impl FileSyncStatus {
    /// `in-sync`, `drifted` or `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileSyncStatus::InSync => "in-sync",
            FileSyncStatus::Drifted => "drifted",
            FileSyncStatus::Missing => "missing",
        }
    }
}

/// Result of `file.status.get`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileStatusResult {
    /// The path asked about.
    #[serde(default)]
    pub path: String,
    /// `in-sync`, `drifted` or `missing`.
    #[serde(default)]
    pub status: FileSyncStatus,
    /// SHA-256 (hex) of the file on disk, absent when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Always false.
    #[serde(default)]
    pub changed: bool,
}

/// Result of `node.packages.get`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PackagesResult {
    /// The package database read: `dpkg` or `rpm`.
    #[serde(default)]
    pub manager: String,
    /// Installed packages, by name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub packages: Vec<Package>,
    /// Always false.
    #[serde(default)]
    pub changed: bool,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Version as the package manager writes it (`3.0.11-1~deb12u2`).
    pub version: String,
    /// Architecture (`amd64`, `x86_64`, `all`, `noarch` …).
    #[serde(default)]
    pub architecture: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_keys_decode() {
        let load: LoadResult =
            serde_json::from_str(r#"{"Load1":0.32,"Load5":0.28,"Load15":0.25,"changed":false}"#)
                .unwrap();
        assert_eq!(load.load1, 0.32);
        let mem: MemoryResult = serde_json::from_str(
            r#"{"Total":16777216000,"Available":9000000000,"Free":2097152000,"Cached":4194304000}"#,
        )
        .unwrap();
        assert_eq!(mem.total, 16_777_216_000);
        assert_eq!(mem.cached, 4_194_304_000);
        assert_eq!(
            mem.used,
            16_777_216_000 - 9_000_000_000,
            "derived: upstream sends none"
        );
        let dns: DnsConfigResult =
            serde_json::from_str(r#"{"DNSServers":null,"SearchDomains":["."],"changed":false}"#)
                .unwrap();
        assert!(dns.dns_servers.is_empty());
        let ping: PingResult = serde_json::from_str(
            r#"{"PacketsSent":3,"PacketsReceived":3,"PacketLoss":0,"MinRTT":14640000,"AvgRTT":18650000,"MaxRTT":24310000}"#,
        )
        .unwrap();
        assert_eq!(ping.packets_sent, 3);
        assert_eq!(ping.avg_rtt(), Duration::from_nanos(18_650_000));
        let status: NodeStatusResult = serde_json::from_str(
            r#"{"hostname":"web-01","os_info":{"Distribution":"ubuntu","Version":"24.04","changed":false},
               "uptime":273600000000000,"disk_usage":[{"Name":"/","Total":10,"Used":5,"Free":5}],
               "memory_stats":{"Total":1,"Available":1,"Free":1,"Cached":1},"load_averages":{"Load1":1,"Load5":1,"Load15":1}}"#,
        )
        .unwrap();
        assert_eq!(status.uptime(), Duration::from_secs(273_600));
        assert_eq!(status.disks[0].name, "/");
        assert_eq!(status.os_info.unwrap().distribution, "ubuntu");
        // Every key of upstream's other results (spec §7) lands in a field.
        let up: UptimeResult =
            serde_json::from_str(r#"{"uptime_seconds":273600,"uptime":"76h0m0s","changed":false}"#)
                .unwrap();
        assert_eq!(
            (up.uptime_seconds, up.uptime.as_str()),
            (273_600, "76h0m0s")
        );
        let dns: DnsUpdateResult = serde_json::from_str(
            r#"{"success":true,"changed":true,"message":"DNS configuration updated successfully"}"#,
        )
        .unwrap();
        assert!(dns.success && dns.changed && dns.message.starts_with("DNS"));
        let cmd: CommandResult = serde_json::from_str(
            r#"{"stdout":"a","stderr":"b","exit_code":3,"duration_ms":12,"changed":true}"#,
        )
        .unwrap();
        assert_eq!((cmd.exit_code, cmd.duration_ms), (3, 12));
        let d: FileDeployResult =
            serde_json::from_str(r#"{"changed":true,"sha256":"ab","path":"/x"}"#).unwrap();
        assert_eq!((d.sha256.as_str(), d.path.as_str()), ("ab", "/x"));
    }

    #[test]
    fn file_status_spelling() {
        let s: FileStatusResult =
            serde_json::from_str(r#"{"path":"/x","status":"in-sync","sha256":"ab"}"#).unwrap();
        assert_eq!(s.status, FileSyncStatus::InSync);
        assert_eq!(
            serde_json::to_value(FileSyncStatus::Drifted).unwrap(),
            "drifted"
        );
    }
}
