//! Node providers: hostname, OS, uptime, disks, memory, load, the
//! combined status and installed packages, read from `/proc`,
//! `/etc/os-release`, statvfs and the package database on any Linux. The functions are synchronous (they read small kernel files) so the
//! heartbeat can call them directly; each returns its error already wrapped
//! the way job responses show it (`failed to get memory stats: …`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use osapi_api::format::go_duration;
use osapi_api::ops::{PackagesParams, op};
use osapi_api::results::{
    DiskUsage, LoadResult, MemoryResult, NodeStatusResult, OsInfo, Package, PackagesResult,
    UptimeResult,
};

use super::{Provider, ProviderContext, ProviderError, blocking};

/// Where os-release is looked for, in order.
pub const OS_RELEASE_PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// Filesystem types reported as disks (plus `overlay` when mounted at `/`).
const REAL_FILESYSTEMS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "vfat", "exfat",
    "ntfs", "ntfs3",
];

/// The OS hostname.
pub fn os_hostname() -> Result<String, ProviderError> {
    let name = nix::unistd::gethostname()
        .map_err(|e| ProviderError(format!("failed to get hostname: {}", e.desc())))?;
    name.into_string()
        .map_err(|raw| {
            ProviderError(format!(
                "failed to get hostname: hostname {:?} is not valid UTF-8",
                raw
            ))
        })
        .and_then(|name| {
            if name.is_empty() {
                Err(ProviderError::new(
                    "failed to get hostname: the kernel reports an empty hostname",
                ))
            } else {
                Ok(name)
            }
        })
}

/// Distribution id and version from `/etc/os-release` (or `/usr/lib/os-release`).
pub fn os_info() -> Result<OsInfo, ProviderError> {
    let paths: Vec<&Path> = OS_RELEASE_PATHS.iter().map(Path::new).collect();
    os_info_from(&paths)
}

/// Like [`os_info`], reading the first of `paths` that exists.
pub fn os_info_from(paths: &[&Path]) -> Result<OsInfo, ProviderError> {
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(text) => return Ok(parse_os_release(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ProviderError(format!(
                    "failed to get OS info: cannot read {}: {e}",
                    path.display()
                )));
            }
        }
    }
    let tried: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Err(ProviderError(format!(
        "failed to get OS info: no os-release file found (looked for {})",
        tried.join(", ")
    )))
}

/// Parses os-release text: `ID` (default `linux`, as the os-release
/// specification says) and `VERSION_ID` (empty when absent, e.g. Debian testing).
pub fn parse_os_release(text: &str) -> OsInfo {
    let mut id = None;
    let mut version = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key.trim() {
            "ID" => id = Some(unquote(value.trim())),
            "VERSION_ID" => version = Some(unquote(value.trim())),
            _ => {}
        }
    }
    OsInfo {
        distribution: id
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "linux".into()),
        version: version.unwrap_or_default(),
        changed: false,
    }
}

/// Removes shell-style quoting from an os-release value.
fn unquote(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some('\'') => value[1..].trim_end_matches('\'').to_string(),
        Some('"') => {
            let mut out = String::new();
            let mut escaped = false;
            for c in chars {
                if escaped {
                    out.push(c);
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    break;
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => value.to_string(),
    }
}

/// Whole seconds since boot, from `/proc/uptime`.
pub fn uptime_seconds() -> Result<u64, ProviderError> {
    let text = read_proc("/proc/uptime").map_err(|e| wrap("failed to get uptime", e))?;
    parse_uptime(&text).map_err(|e| wrap("failed to get uptime", e))
}

/// `node.uptime.get`: seconds since boot and the same as a Go duration.
pub fn uptime() -> Result<UptimeResult, ProviderError> {
    let seconds = uptime_seconds()?;
    Ok(UptimeResult {
        uptime_seconds: seconds,
        uptime: go_duration(Duration::from_secs(seconds)),
        changed: false,
    })
}

/// Parses `/proc/uptime` (`"12345.67 2345.00"`) into whole seconds.
pub fn parse_uptime(text: &str) -> Result<u64, String> {
    let first = text.split_whitespace().next().unwrap_or_default();
    let seconds: f64 = first
        .parse()
        .map_err(|_| format!("unexpected /proc/uptime content {:?}", text.trim()))?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("unexpected /proc/uptime content {:?}", text.trim()));
    }
    Ok(seconds.floor() as u64)
}

/// Load averages from `/proc/loadavg`.
pub fn load() -> Result<LoadResult, ProviderError> {
    let text = read_proc("/proc/loadavg").map_err(|e| wrap("failed to get load averages", e))?;
    parse_loadavg(&text).map_err(|e| wrap("failed to get load averages", e))
}

/// Parses `/proc/loadavg` (`"0.32 0.28 0.25 1/123 4567"`).
pub fn parse_loadavg(text: &str) -> Result<LoadResult, String> {
    let bad = || format!("unexpected /proc/loadavg content {:?}", text.trim());
    let values: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .map(|f| f.parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    match values[..] {
        [load1, load5, load15] => Ok(LoadResult {
            load1,
            load5,
            load15,
            changed: false,
        }),
        _ => Err(bad()),
    }
}

/// Memory figures from `/proc/meminfo`, in bytes.
pub fn memory() -> Result<MemoryResult, ProviderError> {
    let text = read_proc("/proc/meminfo").map_err(|e| wrap("failed to get memory stats", e))?;
    parse_meminfo(&text).map_err(|e| wrap("failed to get memory stats", e))
}

/// Parses `/proc/meminfo`: total = MemTotal, available = MemAvailable (or
/// MemFree + Buffers + Cached on kernels without it), free = MemFree,
/// cached = Cached + SReclaimable, used = total − available.
pub fn parse_meminfo(text: &str) -> Result<MemoryResult, String> {
    let mut fields: HashMap<&str, u64> = HashMap::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(Ok(value)) = parts.next().map(str::parse::<u64>) else {
            continue;
        };
        let bytes = match parts.next() {
            Some("kB") => value.saturating_mul(1024),
            _ => value,
        };
        fields.insert(key.trim(), bytes);
    }
    let get = |k: &str| fields.get(k).copied();
    let total = get("MemTotal").ok_or("/proc/meminfo has no MemTotal line")?;
    let free = get("MemFree").unwrap_or(0);
    let cached = get("Cached").unwrap_or(0);
    let available = get("MemAvailable").unwrap_or_else(|| {
        free.saturating_add(get("Buffers").unwrap_or(0))
            .saturating_add(cached)
    });
    Ok(MemoryResult {
        total,
        available,
        free,
        cached: cached.saturating_add(get("SReclaimable").unwrap_or(0)),
        used: total.saturating_sub(available),
        changed: false,
    })
}

/// One line of `/proc/self/mountinfo`, with escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// `major:minor` of the filesystem.
    pub dev_id: String,
    /// Where it is mounted (raw bytes, for statvfs).
    pub mount_point: OsString,
    /// Filesystem type.
    pub fs_type: String,
    /// Mount source, usually the device.
    pub source: String,
}

impl MountEntry {
    /// The mount point as text (lossy for non-UTF-8 names).
    pub fn mount_point_str(&self) -> String {
        self.mount_point.to_string_lossy().into_owned()
    }
}

/// Parses `/proc/self/mountinfo`; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            if sep < 6 {
                return None;
            }
            Some(MountEntry {
                dev_id: fields.get(2)?.to_string(),
                mount_point: OsString::from_vec(unescape_mount(fields.get(4)?)),
                fs_type: String::from_utf8_lossy(&unescape_mount(fields.get(sep + 1)?))
                    .into_owned(),
                source: String::from_utf8_lossy(&unescape_mount(fields.get(sep + 2)?)).into_owned(),
            })
        })
        .collect()
}

/// Decodes the kernel's octal escapes (`\040` = space, `\011`, `\012`, `\134`).
fn unescape_mount(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Keeps real, device-backed filesystems, one entry per device (the
/// shortest mount point wins), in mountinfo order.
pub fn select_mounts(entries: Vec<MountEntry>) -> Vec<MountEntry> {
    let mut kept: Vec<MountEntry> = Vec::new();
    for entry in entries {
        let is_root = entry.mount_point.as_encoded_bytes() == b"/";
        let real = REAL_FILESYSTEMS.contains(&entry.fs_type.as_str())
            || (entry.fs_type == "overlay" && is_root);
        if !real || entry.source.is_empty() || entry.source == "none" {
            continue;
        }
        let key = |e: &MountEntry| {
            if e.fs_type == "overlay" {
                e.dev_id.clone()
            } else {
                e.source.clone()
            }
        };
        let k = key(&entry);
        match kept.iter_mut().find(|e| key(e) == k) {
            Some(existing) => {
                if entry.mount_point.len() < existing.mount_point.len() {
                    *existing = entry;
                }
            }
            None => kept.push(entry),
        }
    }
    kept
}

/// Usage of every real filesystem, from `/proc/self/mountinfo` and statvfs.
///
/// Mounts that cannot be examined for lack of permission (or that vanished
/// since mountinfo was read) are skipped; any other statvfs error fails.
pub fn disks() -> Result<Vec<DiskUsage>, ProviderError> {
    let text =
        read_proc("/proc/self/mountinfo").map_err(|e| wrap("failed to get disk usage", e))?;
    disks_from(&text).map_err(|e| wrap("failed to get disk usage", e))
}

fn disks_from(mountinfo: &str) -> Result<Vec<DiskUsage>, String> {
    let mut out = Vec::new();
    for entry in select_mounts(parse_mountinfo(mountinfo)) {
        let path = PathBuf::from(&entry.mount_point);
        let stat = match nix::sys::statvfs::statvfs(&path) {
            Ok(stat) => stat,
            Err(Errno::EACCES | Errno::EPERM | Errno::ENOENT | Errno::ENOTDIR) => {
                tracing::debug!(mount = %path.display(), "skipping mount that cannot be examined");
                continue;
            }
            Err(e) => {
                return Err(format!("statvfs {}: {}", path.display(), e.desc()));
            }
        };
        let frsize = match to_u64(stat.fragment_size()) {
            0 => to_u64(stat.block_size()),
            n => n,
        };
        let blocks = to_u64(stat.blocks());
        let bfree = to_u64(stat.blocks_free());
        let bavail = to_u64(stat.blocks_available());
        out.push(DiskUsage {
            name: entry.mount_point_str(),
            total: blocks.saturating_mul(frsize),
            used: blocks.saturating_sub(bfree).saturating_mul(frsize),
            free: bavail.saturating_mul(frsize),
            device: entry.source,
            fs_type: entry.fs_type,
        });
    }
    Ok(out)
}

/// `node.status.get`: everything above in one result. A part that cannot be
/// read is left empty; this never fails.
pub fn status() -> NodeStatusResult {
    fn keep<T>(what: &str, r: Result<T, ProviderError>) -> Option<T> {
        r.map_err(|e| tracing::warn!(error = %e, "node status: {what} unavailable"))
            .ok()
    }
    NodeStatusResult {
        hostname: keep("hostname", os_hostname()).unwrap_or_default(),
        os_info: keep("os info", os_info()),
        uptime_seconds: keep("uptime", uptime_seconds()).unwrap_or(0),
        uptime_nanos: None,
        disks: keep("disks", disks()).unwrap_or_default(),
        memory: keep("memory", memory()),
        load: keep("load", load()),
        changed: false,
    }
}

/// Widens the platform's statvfs integer types.
fn to_u64<T: Into<u64>>(value: T) -> u64 {
    value.into()
}

impl Provider for op::NodePackagesGet {
    const WHAT: &'static str = "packages";
    async fn run(
        params: PackagesParams,
        _: &ProviderContext,
    ) -> Result<(PackagesResult, bool), ProviderError> {
        Ok((
            blocking(move || packages(params.name.as_deref())).await??,
            false,
        ))
    }
}

/// dpkg's record of installed packages.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// Installed packages whose name matches `pattern`, from dpkg's status file
/// or, where there is none, from `rpm -qa`.
pub fn packages(pattern: Option<&str>) -> Result<PackagesResult, ProviderError> {
    let fail = |cause: String| wrap("failed to get packages", cause);
    let (manager, mut packages) = match std::fs::read_to_string(DPKG_STATUS) {
        Ok(text) => ("dpkg", parse_dpkg_status(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match super::find_in_path("rpm") {
            Some(rpm) => ("rpm", rpm_packages(&rpm).map_err(fail)?),
            None => {
                return Err(fail(format!(
                    "no package database: neither {DPKG_STATUS} nor rpm on PATH"
                )));
            }
        },
        Err(e) => return Err(fail(format!("cannot read {DPKG_STATUS}: {e}"))),
    };
    if let Some(pattern) = pattern {
        packages.retain(|p| name_matches(pattern, &p.name));
    }
    packages.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    Ok(PackagesResult {
        manager: manager.into(),
        packages,
        changed: false,
    })
}

/// The installed packages of a dpkg status file (stanzas whose `Status`
/// ends in `installed`).
pub fn parse_dpkg_status(text: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza.lines().find_map(|line| {
                    line.strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix(':'))
                        .map(|v| v.trim().to_string())
                })
            };
            let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
            let name = field("Package")?;
            installed.then(|| Package {
                name,
                version: field("Version").unwrap_or_default(),
                architecture: field("Architecture").unwrap_or_default(),
            })
        })
        .collect()
}

fn rpm_packages(rpm: &Path) -> Result<Vec<Package>, String> {
    let out = std::process::Command::new(rpm)
        .args([
            "-qa",
            "--queryformat",
            "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n",
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rpm.display()))?;
    if !out.status.success() {
        return Err(format!(
            "rpm -qa failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            Some(Package {
                name: fields.next()?.to_string(),
                version: fields.next()?.to_string(),
                architecture: fields.next().unwrap_or_default().to_string(),
            })
        })
        .collect())
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn read_proc(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn wrap(prefix: &str, cause: String) -> ProviderError {
    ProviderError(format!("{prefix}: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_lists_installed_packages() {
        let text = "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\n\
                    Version: 3.0.11-1~deb12u2\nDescription: x\n continued\n\n\
                    Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                    Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11\n\
                    Architecture: amd64\n";
        let p = parse_dpkg_status(text);
        assert_eq!(
            p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["openssl", "libssl3"]
        );
        assert_eq!(p[0].version, "3.0.11-1~deb12u2");
        assert_eq!(p[0].architecture, "amd64");
    }

    #[test]
    fn name_patterns() {
        for (pattern, name, expected) in [
            ("openssl", "openssl", true),
            ("openssl", "openssl-dev", false),
            ("openssl*", "openssl-dev", true),
            ("*ssl*", "libssl3", true),
            ("lib*3", "libssl3", true),
            ("lib*3", "libssl3x", false),
            ("*", "anything", true),
            ("a*b*c", "abc", true),
            ("a*bc*c", "abc", false),
        ] {
            assert_eq!(name_matches(pattern, name), expected, "{pattern} {name}");
        }
    }

    #[test]
    fn this_machines_packages() {
        // The machine's real package database (Debian here; rpm elsewhere).
        let all = packages(None).unwrap();
        assert!(!all.packages.is_empty(), "{all:?}");
        let first = all.packages[0].name.clone();
        let one = packages(Some(&first)).unwrap();
        assert!(one.packages.iter().all(|p| p.name == first));
        assert!(!one.packages.is_empty());
    }
    use std::io::Write;

    fn proc_field(file: &str, key: &str) -> u64 {
        let text = std::fs::read_to_string(file).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn hostname_matches_kernel() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(os_hostname().unwrap(), kernel.trim());
    }

    #[test]
    fn os_release_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let ubuntu = dir.path().join("ubuntu");
        std::fs::write(
            &ubuntu,
            "NAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nID_LIKE=debian\n",
        )
        .unwrap();
        let testing = dir.path().join("testing");
        std::fs::write(
            &testing,
            "PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\n# comment\nID=debian\n",
        )
        .unwrap();
        let quoted = dir.path().join("quoted");
        std::fs::write(&quoted, "ID='fedora'\nVERSION_ID=\"40 \\\"x\\\"\"\n").unwrap();
        let missing = dir.path().join("missing");

        let info = os_info_from(&[&ubuntu]).unwrap();
        assert_eq!(
            (info.distribution.as_str(), info.version.as_str()),
            ("ubuntu", "24.04")
        );
        let info = os_info_from(&[&missing, &testing]).unwrap();
        assert_eq!(
            (info.distribution.as_str(), info.version.as_str()),
            ("debian", "")
        );
        let info = os_info_from(&[&quoted]).unwrap();
        assert_eq!(info.distribution, "fedora");
        assert_eq!(info.version, "40 \"x\"");
        assert_eq!(parse_os_release("NAME=x\n").distribution, "linux");

        let err = os_info_from(&[&missing]).unwrap_err();
        assert!(
            err.0
                .starts_with("failed to get OS info: no os-release file found"),
            "{err}"
        );
        assert!(err.0.contains("missing"), "{err}");
    }

    #[test]
    fn os_info_of_this_machine() {
        let info = os_info().unwrap();
        assert!(!info.distribution.is_empty());
    }

    #[test]
    fn uptime_close_to_proc() {
        let before = parse_uptime(&std::fs::read_to_string("/proc/uptime").unwrap()).unwrap();
        let result = uptime().unwrap();
        assert!(result.uptime_seconds >= before && result.uptime_seconds <= before + 2);
        assert_eq!(
            result.uptime,
            go_duration(Duration::from_secs(result.uptime_seconds))
        );
        assert_eq!(parse_uptime("273600.99 10.00\n").unwrap(), 273_600);
        assert!(parse_uptime("garbage").is_err());
    }

    #[test]
    fn load_is_plausible() {
        let load = load().unwrap();
        for v in [load.load1, load.load5, load.load15] {
            assert!((0.0..10_000.0).contains(&v), "{v}");
        }
        let parsed = parse_loadavg("0.32 0.28 0.25 1/123 4567\n").unwrap();
        assert_eq!(
            (parsed.load1, parsed.load5, parsed.load15),
            (0.32, 0.28, 0.25)
        );
        assert!(parse_loadavg("0.1 0.2").is_err());
        assert!(parse_loadavg("").is_err());
    }

    #[test]
    fn memory_matches_meminfo() {
        let mem = memory().unwrap();
        assert_eq!(mem.total, proc_field("/proc/meminfo", "MemTotal") * 1024);
        assert!(mem.available <= mem.total);
        assert!(mem.free <= mem.total);
        assert_eq!(mem.used, mem.total - mem.available);
    }

    #[test]
    fn meminfo_fixture_and_fallback() {
        let text = "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 50 kB\nCached: 200 kB\nSReclaimable: 30 kB\nHugePages_Total: 0\n";
        let m = parse_meminfo(text).unwrap();
        assert_eq!(m.total, 1_024_000);
        assert_eq!(m.available, 614_400);
        assert_eq!(m.free, 102_400);
        assert_eq!(m.cached, 230 * 1024);
        assert_eq!(m.used, 400 * 1024);
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 200 kB\n";
        let m = parse_meminfo(old).unwrap();
        assert_eq!(m.available, 350 * 1024);
        assert_eq!(m.used, 650 * 1024);
        assert!(
            parse_meminfo("MemFree: 1 kB\n")
                .unwrap_err()
                .contains("MemTotal")
        );
    }

    #[test]
    fn mountinfo_fixture() {
        let text = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
28 27 254:0 /srv /mnt/with\\040space rw master:2 - ext4 /dev/vda rw
29 27 254:1 / /data\\040dir rw - xfs /dev/vdb rw
30 27 0:30 / /run rw - tmpfs tmpfs rw
31 27 0:31 / /boot/efi rw - vfat /dev/vdc1 rw
bad line
";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 6);
        assert_eq!(entries[2].mount_point_str(), "/mnt/with space");
        assert_eq!(entries[1].fs_type, "ext4");
        assert_eq!(entries[1].source, "/dev/vda");
        let selected: Vec<String> = select_mounts(entries)
            .iter()
            .map(|e| e.mount_point_str())
            .collect();
        assert_eq!(selected, ["/", "/data dir", "/boot/efi"]);
        // Overlay counts only as the root filesystem (containers).
        let text = "32 1 0:40 / / rw - overlay overlay rw\n33 32 0:41 / /var/lib/docker/x rw - overlay overlay rw\n";
        let selected = select_mounts(parse_mountinfo(text));
        assert_eq!(selected.len(), 1);
        assert_eq!(selected[0].mount_point_str(), "/");
        assert_eq!(unescape_mount("a\\134b\\011c\\"), b"a\\b\tc\\");
    }

    #[test]
    fn disks_match_statfs() {
        let disks = disks().unwrap();
        let root = disks
            .iter()
            .find(|d| d.name == "/")
            .expect("root filesystem");
        assert!(root.total > 0);
        assert!(root.total >= root.used);
        assert!(root.total >= root.free);
        assert!(!root.device.is_empty());
        assert!(!root.fs_type.is_empty());
        let stat = nix::sys::statvfs::statvfs("/").unwrap();
        assert_eq!(
            root.total,
            to_u64(stat.blocks()) * to_u64(stat.fragment_size())
        );
        let mut names: Vec<&str> = disks.iter().map(|d| d.device.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), disks.len(), "one entry per device");
    }

    #[test]
    fn status_combines_everything() {
        let status = status();
        assert_eq!(status.hostname, os_hostname().unwrap());
        assert!(status.os_info.is_some());
        assert!(status.uptime_seconds > 0);
        assert!(status.memory.as_ref().is_some_and(|m| m.total > 0));
        assert!(status.load.is_some());
        assert!(status.disks.iter().any(|d| d.name == "/"));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["changed"], false);
    }

    #[test]
    fn unreadable_os_release_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be read as a file: the error names the path.
        let err = os_info_from(&[dir.path()]).unwrap_err();
        assert!(
            err.0.starts_with("failed to get OS info: cannot read"),
            "{err}"
        );
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "ID=alpine\nVERSION_ID=3.20.1").unwrap();
        assert_eq!(os_info_from(&[f.path()]).unwrap().version, "3.20.1");
    }
}
