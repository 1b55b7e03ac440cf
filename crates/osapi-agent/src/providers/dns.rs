//! DNS providers (`network.dns.get`, `network.dns.update`).
//!
//! Two backends: `resolvectl` where systemd-resolved runs, or a resolver
//! file (`/etc/resolv.conf` by default, configurable so tests never touch
//! the real one). [`ResolvectlMode::Auto`] uses `resolvectl` only when it is
//! on `PATH` and `resolvectl status <interface>` succeeds.
//!
//! File updates are atomic (temporary file in the same directory, then
//! rename), keep the file's mode and owner, and keep comments and `options`
//! lines. A symbolic link at the configured path is followed, so the link
//! itself stays in place.

use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use osapi_api::ops::{DnsGetParams, DnsUpdateParams, is_valid_hostname};
use osapi_api::results::{DnsConfigResult, DnsUpdateResult};
use tokio::process::Command;

use super::{DEFAULT_RESOLV_CONF, ProviderConfig, ProviderError, ResolvectlMode, find_in_path};

/// The stub address systemd-resolved puts into `/etc/resolv.conf`.
pub const SYSTEMD_STUB: &str = "127.0.0.53";
/// The file listing the real upstream servers when the stub is in use.
pub const SYSTEMD_UPSTREAM_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";
/// Longest time one `resolvectl` call may take.
const RESOLVECTL_TIMEOUT: Duration = Duration::from_secs(10);

/// Name servers and search domains, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsSettings {
    /// Name servers in order.
    pub servers: Vec<String>,
    /// Search domains in order (none: empty).
    pub domains: Vec<String>,
}

/// Where DNS settings are read and written.
enum Backend {
    /// `resolvectl` at this path, with the `status` output already read.
    Resolvectl { bin: PathBuf, status: String },
    /// The configured resolver file.
    File,
}

/// `network.dns.get`.
pub async fn get(
    params: &DnsGetParams,
    config: &ProviderConfig,
) -> Result<DnsConfigResult, ProviderError> {
    let wrap = |e: String| ProviderError(format!("failed to get DNS config: {e}"));
    let (settings, source) = match backend(config.resolvectl, &params.interface)
        .await
        .map_err(wrap)?
    {
        Backend::Resolvectl { status, .. } => {
            (parse_resolvectl_status(&status), "resolvectl".to_string())
        }
        Backend::File => {
            let path = config.resolv_conf.clone();
            let fallback = (path == Path::new(DEFAULT_RESOLV_CONF))
                .then(|| PathBuf::from(SYSTEMD_UPSTREAM_RESOLV_CONF));
            let (source, settings) =
                super::blocking(move || read_file_settings(&path, fallback.as_deref()))
                    .await?
                    .map_err(wrap)?;
            (settings, source.display().to_string())
        }
    };
    let search_domains = if settings.domains.is_empty() {
        vec![".".to_string()]
    } else {
        settings.domains
    };
    Ok(DnsConfigResult {
        dns_servers: settings.servers,
        search_domains,
        source,
        changed: false,
    })
}

/// `network.dns.update`.
pub async fn update(
    params: &DnsUpdateParams,
    config: &ProviderConfig,
) -> Result<DnsUpdateResult, ProviderError> {
    let wrap = |e: String| ProviderError(format!("failed to set DNS config: {e}"));
    let servers = params.servers.clone().filter(|s| !s.is_empty());
    let domains = params.search_domains.clone().filter(|d| !d.is_empty());
    if servers.is_none() && domains.is_none() {
        return Err(wrap(
            "no DNS servers or search domains provided; nothing to update".into(),
        ));
    }
    for server in servers.iter().flatten() {
        if server.parse::<IpAddr>().is_err() {
            return Err(wrap(format!(
                "invalid DNS server {server:?}: not an IP address"
            )));
        }
    }
    for domain in domains.iter().flatten() {
        if domain != "." && !is_valid_hostname(domain) {
            return Err(wrap(format!(
                "invalid search domain {domain:?}: not a valid RFC 1123 hostname"
            )));
        }
    }
    let domains = domains.map(|d| normalize_domains(&d));

    let changed = match backend(config.resolvectl, &params.interface)
        .await
        .map_err(wrap)?
    {
        Backend::Resolvectl { bin, status } => {
            if params.interface.is_empty() {
                return Err(wrap(
                    "an interface name is required to change DNS settings through resolvectl"
                        .into(),
                ));
            }
            let current = parse_resolvectl_status(&status);
            let new_servers = servers.unwrap_or_else(|| current.servers.clone());
            let new_domains = domains.unwrap_or_else(|| current.domains.clone());
            if params.dry_run {
                new_servers != current.servers || new_domains != current.domains
            } else {
                let mut changed = false;
                if new_servers != current.servers {
                    let mut args = vec!["dns".to_string(), params.interface.clone()];
                    args.extend(new_servers.iter().cloned());
                    run_resolvectl(&bin, &args, &params.interface)
                        .await
                        .map_err(wrap)?;
                    changed = true;
                }
                if new_domains != current.domains {
                    let mut args = vec!["domain".to_string(), params.interface.clone()];
                    if new_domains.is_empty() {
                        args.push(String::new());
                    }
                    args.extend(new_domains.iter().cloned());
                    run_resolvectl(&bin, &args, &params.interface)
                        .await
                        .map_err(wrap)?;
                    changed = true;
                }
                changed
            }
        }
        Backend::File => {
            let path = config.resolv_conf.clone();
            let dry_run = params.dry_run;
            super::blocking(move || update_file(&path, servers, domains, dry_run))
                .await?
                .map_err(wrap)?
        }
    };
    let message = match (changed, params.dry_run) {
        (true, false) => "DNS configuration updated successfully",
        (true, true) => "DNS configuration would be updated (check mode)",
        (false, _) => "DNS configuration already up to date",
    };
    Ok(DnsUpdateResult {
        success: true,
        changed,
        message: message.into(),
        dry_run: params.dry_run,
    })
}

/// Decides between `resolvectl` and the resolver file.
async fn backend(mode: ResolvectlMode, interface: &str) -> Result<Backend, String> {
    if !interface.is_empty() {
        validate_interface(interface)?;
    }
    match mode {
        ResolvectlMode::Never => Ok(Backend::File),
        ResolvectlMode::Always => {
            let bin = find_in_path("resolvectl").ok_or_else(|| {
                "resolvectl is not installed (not found on PATH); set the DNS mode to use the resolver file instead".to_string()
            })?;
            let status = resolvectl_status(&bin, interface).await?;
            Ok(Backend::Resolvectl { bin, status })
        }
        ResolvectlMode::Auto => {
            let Some(bin) = find_in_path("resolvectl") else {
                return Ok(Backend::File);
            };
            match resolvectl_status(&bin, interface).await {
                Ok(status) => Ok(Backend::Resolvectl { bin, status }),
                // resolvectl knows the interface is not there: say so rather
                // than quietly answering from the file.
                Err(e) if e.contains("does not exist") => Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "resolvectl unusable, using the resolver file");
                    Ok(Backend::File)
                }
            }
        }
    }
}

/// Interface names are passed as command arguments: keep them plain.
fn validate_interface(interface: &str) -> Result<(), String> {
    let ok = interface.len() <= 15
        && !interface.starts_with('-')
        && interface
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid interface name {interface:?}"))
    }
}

async fn resolvectl_status(bin: &Path, interface: &str) -> Result<String, String> {
    let mut args = vec!["status".to_string()];
    if !interface.is_empty() {
        args.push(interface.to_string());
    }
    run_resolvectl(bin, &args, interface).await
}

/// Runs `resolvectl` and returns its combined output.
async fn run_resolvectl(bin: &Path, args: &[String], interface: &str) -> Result<String, String> {
    let shown = format!("resolvectl {}", args.join(" "));
    let run = Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(RESOLVECTL_TIMEOUT, run)
        .await
        .map_err(|_| {
            format!(
                "{shown} did not answer within {}s",
                RESOLVECTL_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("failed to run {shown}: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if text.contains("No such device") {
        return Err(format!("interface {interface:?} does not exist"));
    }
    if !out.status.success() {
        return Err(format!("{shown} failed ({}): {}", out.status, text.trim()));
    }
    Ok(text)
}

/// Parses `resolvectl status` output.
///
/// Servers are the addresses after the first `DNS Servers:` label (or, when
/// there is none, the first `Current DNS Server:`), including indented
/// continuation lines; a `#name` suffix (DNS-over-TLS server name) is
/// dropped. Domains are those after the first `DNS Domain:` label;
/// routing-only domains (`~…`) are not search domains and are skipped.
pub fn parse_resolvectl_status(output: &str) -> DnsSettings {
    let servers = labelled_values(output, "DNS Servers")
        .or_else(|| labelled_values(output, "Current DNS Server"))
        .unwrap_or_default()
        .into_iter()
        .map(|s| match s.split_once('#') {
            Some((addr, _)) => addr.to_string(),
            None => s,
        })
        .filter(|s| !s.is_empty())
        .collect();
    let domains = labelled_values(output, "DNS Domain")
        .unwrap_or_default()
        .into_iter()
        .filter(|d| !d.starts_with('~') && d != ".")
        .collect();
    DnsSettings { servers, domains }
}

/// The whitespace-separated values after the first `label:` line and its
/// indented continuation lines.
fn labelled_values(output: &str, label: &str) -> Option<Vec<String>> {
    let mut lines = output.lines();
    let first = lines.by_ref().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == label).then_some(value)
    })?;
    let mut values: Vec<String> = first.split_whitespace().map(String::from).collect();
    for line in lines {
        let indented = line.starts_with(char::is_whitespace);
        if !indented || line.trim().is_empty() || is_label_line(line) {
            break;
        }
        values.extend(line.split_whitespace().map(String::from));
    }
    Some(values)
}

/// True for `Some Label: …` lines (as opposed to continuation values such as
/// `fd00::1`, whose text before the first colon is not a word followed by
/// whitespace).
fn is_label_line(line: &str) -> bool {
    let Some((key, rest)) = line.split_once(':') else {
        return false;
    };
    let key = key.trim();
    !key.is_empty()
        && key.chars().any(|c| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphabetic() || matches!(c, ' ' | '.' | '-' | '/' | '(' | ')'))
        && (rest.is_empty() || rest.starts_with(char::is_whitespace))
}

/// Parses resolver-file text: `nameserver` lines in order; the last
/// `search` or `domain` line wins, as in the C library.
pub fn parse_resolv_conf(text: &str) -> DnsSettings {
    let mut settings = DnsSettings::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => {
                if let Some(server) = fields.next() {
                    settings.servers.push(server.to_string());
                }
            }
            Some("search") | Some("domain") => {
                settings.domains = fields.map(String::from).collect();
            }
            _ => {}
        }
    }
    settings.domains = normalize_domains(&settings.domains);
    settings
}

/// Reads the resolver file; when it only names the systemd stub and
/// `stub_fallback` exists, the latter (the real upstream servers) is read.
fn read_file_settings(
    path: &Path,
    stub_fallback: Option<&Path>,
) -> Result<(PathBuf, DnsSettings), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let settings = parse_resolv_conf(&text);
    if settings.servers == [SYSTEMD_STUB]
        && let Some(fallback) = stub_fallback
        && let Ok(text) = std::fs::read_to_string(fallback)
    {
        return Ok((fallback.to_path_buf(), parse_resolv_conf(&text)));
    }
    Ok((path.to_path_buf(), settings))
}

/// Rewrites the resolver file if the settings differ; returns whether it did.
/// Rewrites the resolver file when the settings differ (only compares
/// when `dry_run`); true when they differ.
fn update_file(
    path: &Path,
    servers: Option<Vec<String>>,
    domains: Option<Vec<String>>,
    dry_run: bool,
) -> Result<bool, String> {
    let target =
        std::fs::canonicalize(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = std::fs::read_to_string(&target)
        .map_err(|e| format!("cannot read {}: {e}", target.display()))?;
    let meta =
        std::fs::metadata(&target).map_err(|e| format!("cannot read {}: {e}", target.display()))?;
    let current = parse_resolv_conf(&text);
    let new = DnsSettings {
        servers: servers.unwrap_or_else(|| current.servers.clone()),
        domains: domains.unwrap_or_else(|| current.domains.clone()),
    };
    if new == current {
        return Ok(false);
    }
    if dry_run {
        return Ok(true);
    }
    let rendered = render_resolv_conf(&text, &new);
    super::file::write_atomically(
        &target,
        rendered.as_bytes(),
        meta.mode() & 0o7777,
        Some(meta.uid()),
        Some(meta.gid()),
        None,
    )
    .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    Ok(true)
}

/// Replaces every `nameserver`, `search` and `domain` line of `original`
/// with `settings`, placed where the first of them was (at the end when
/// there was none). Comments, `options` and other lines are kept.
pub fn render_resolv_conf(original: &str, settings: &DnsSettings) -> String {
    let mut block = String::new();
    for server in &settings.servers {
        block.push_str(&format!("nameserver {server}\n"));
    }
    if !settings.domains.is_empty() {
        block.push_str(&format!("search {}\n", settings.domains.join(" ")));
    }
    let mut out = String::with_capacity(original.len() + block.len());
    let mut placed = false;
    for line in original.lines() {
        let directive = line.split_whitespace().next();
        if matches!(directive, Some("nameserver" | "search" | "domain")) {
            if !placed {
                out.push_str(&block);
                placed = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !placed {
        out.push_str(&block);
    }
    out
}

/// Drops the `.` placeholder (no search domain).
fn normalize_domains(domains: &[String]) -> Vec<String> {
    domains.iter().filter(|d| *d != ".").cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const ORIGINAL: &str = "\
# Generated by hand
options edns0 trust-ad
nameserver 10.0.0.2
; old comment
nameserver 10.0.0.3
domain old.example
search corp.example lab.example
options timeout:2
";

    fn config_for(path: &Path) -> ProviderConfig {
        ProviderConfig {
            resolv_conf: path.to_path_buf(),
            resolvectl: ResolvectlMode::Never,
            ..Default::default()
        }
    }

    fn update_params(servers: Option<&[&str]>, domains: Option<&[&str]>) -> DnsUpdateParams {
        DnsUpdateParams {
            interface: "eth0".into(),
            servers: servers.map(|s| s.iter().map(|x| x.to_string()).collect()),
            search_domains: domains.map(|s| s.iter().map(|x| x.to_string()).collect()),
            dry_run: false,
        }
    }

    #[tokio::test]
    async fn check_mode_compares_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, ORIGINAL).unwrap();
        let config = config_for(&path);
        let mut params = update_params(Some(&["192.0.2.53"]), None);
        params.dry_run = true;
        let r = update(&params, &config).await.unwrap();
        assert!(r.success && r.changed && r.dry_run, "{r:?}");
        assert_eq!(r.message, "DNS configuration would be updated (check mode)");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL);
        // The servers already there: nothing would change.
        let mut same = update_params(Some(&["10.0.0.2", "10.0.0.3"]), None);
        same.dry_run = true;
        let r = update(&same, &config).await.unwrap();
        assert!(!r.changed && r.dry_run);
    }

    #[test]
    fn resolv_conf_parsing() {
        let s = parse_resolv_conf(ORIGINAL);
        assert_eq!(s.servers, ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(s.domains, ["corp.example", "lab.example"]);
        let s = parse_resolv_conf("search a.example\ndomain b.example\nnameserver ::1\n");
        assert_eq!(s.domains, ["b.example"]);
        assert_eq!(s.servers, ["::1"]);
    }

    #[tokio::test]
    async fn get_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, ORIGINAL).unwrap();
        let r = get(&DnsGetParams::default(), &config_for(&path))
            .await
            .unwrap();
        assert_eq!(r.dns_servers, ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(r.search_domains, ["corp.example", "lab.example"]);
        assert_eq!(r.source, path.display().to_string());
        assert!(!r.changed);

        std::fs::write(&path, "nameserver 1.1.1.1\n").unwrap();
        let r = get(&DnsGetParams::default(), &config_for(&path))
            .await
            .unwrap();
        assert_eq!(r.search_domains, ["."]);

        let err = get(
            &DnsGetParams::default(),
            &config_for(&dir.path().join("nope")),
        )
        .await
        .unwrap_err();
        assert!(
            err.0.starts_with("failed to get DNS config: cannot read "),
            "{err}"
        );
    }

    #[test]
    fn systemd_stub_falls_back_to_upstream_file() {
        let dir = tempfile::tempdir().unwrap();
        let stub = dir.path().join("resolv.conf");
        let upstream = dir.path().join("upstream.conf");
        std::fs::write(&stub, "nameserver 127.0.0.53\noptions edns0\nsearch lan\n").unwrap();
        std::fs::write(
            &upstream,
            "nameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch lan\n",
        )
        .unwrap();
        let (source, s) = read_file_settings(&stub, Some(&upstream)).unwrap();
        assert_eq!(source, upstream);
        assert_eq!(s.servers, ["192.0.2.1", "192.0.2.2"]);
        // Without the fallback file (or when not the default path) the stub is reported.
        let (source, s) = read_file_settings(&stub, Some(&dir.path().join("missing"))).unwrap();
        assert_eq!(source, stub);
        assert_eq!(s.servers, [SYSTEMD_STUB]);
        let (_, s) = read_file_settings(&stub, None).unwrap();
        assert_eq!(s.servers, [SYSTEMD_STUB]);
    }

    #[tokio::test]
    async fn update_file_twice_keeps_comments_and_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, ORIGINAL).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let config = config_for(&path);
        let params = update_params(
            Some(&["192.0.2.53", "2001:db8::53"]),
            Some(&["example.com"]),
        );

        let r = update(&params, &config).await.unwrap();
        assert!(r.success && r.changed);
        assert_eq!(r.message, "DNS configuration updated successfully");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# Generated by hand\noptions edns0 trust-ad\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.com\n; old comment\noptions timeout:2\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let r = update(&params, &config).await.unwrap();
        assert!(r.success && !r.changed);
        assert_eq!(r.message, "DNS configuration already up to date");

        // Only servers given: the search domains are kept.
        let r = update(&update_params(Some(&["192.0.2.1"]), None), &config)
            .await
            .unwrap();
        assert!(r.changed);
        let got = get(&DnsGetParams::default(), &config).await.unwrap();
        assert_eq!(got.dns_servers, ["192.0.2.1"]);
        assert_eq!(got.search_domains, ["example.com"]);

        // "." clears the search domains.
        let r = update(&update_params(None, Some(&["."])), &config)
            .await
            .unwrap();
        assert!(r.changed);
        let got = get(&DnsGetParams::default(), &config).await.unwrap();
        assert_eq!(got.dns_servers, ["192.0.2.1"]);
        assert_eq!(got.search_domains, ["."]);
    }

    #[tokio::test]
    async fn update_follows_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.conf");
        let link = dir.path().join("resolv.conf");
        std::fs::write(&real, "nameserver 10.0.0.1\n").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let r = update(
            &update_params(Some(&["10.0.0.9"]), None),
            &config_for(&link),
        )
        .await
        .unwrap();
        assert!(r.changed);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            "nameserver 10.0.0.9\n"
        );
    }

    #[tokio::test]
    async fn update_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, ORIGINAL).unwrap();
        let config = config_for(&path);

        let err = update(&update_params(None, None), &config)
            .await
            .unwrap_err();
        assert_eq!(
            err.0,
            "failed to set DNS config: no DNS servers or search domains provided; nothing to update"
        );
        let err = update(&update_params(Some(&[]), Some(&[])), &config)
            .await
            .unwrap_err();
        assert!(err.0.contains("nothing to update"));
        let err = update(
            &update_params(Some(&["8.8.8.8", "dns.google"]), None),
            &config,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.0,
            "failed to set DNS config: invalid DNS server \"dns.google\": not an IP address"
        );
        let err = update(&update_params(None, Some(&["bad_domain!"])), &config)
            .await
            .unwrap_err();
        assert_eq!(
            err.0,
            "failed to set DNS config: invalid search domain \"bad_domain!\": not a valid RFC 1123 hostname"
        );
        let mut params = update_params(Some(&["1.1.1.1"]), None);
        params.interface = "--help".into();
        let err = update(&params, &config).await.unwrap_err();
        assert!(err.0.contains("invalid interface name"), "{err}");
        // Nothing was written.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL);
    }

    #[test]
    fn render_without_existing_directives() {
        let s = DnsSettings {
            servers: vec!["192.0.2.1".into()],
            domains: vec!["a.example".into(), "b.example".into()],
        };
        assert_eq!(
            render_resolv_conf("# empty\noptions ndots:2", &s),
            "# empty\noptions ndots:2\nnameserver 192.0.2.1\nsearch a.example b.example\n"
        );
    }

    #[test]
    fn resolvectl_link_output() {
        let out = "\
Link 2 (eth0)
    Current Scopes: DNS
         Protocols: +DefaultRoute -LLMNR -mDNS -DNSOverTLS DNSSEC=no/unsupported
Current DNS Server: 10.0.0.2
       DNS Servers: 10.0.0.2 10.0.0.3
                    fd00::1
                    1.1.1.1#cloudflare-dns.com
        DNS Domain: example.com ~corp.example
                    lab.example
     Default Route: yes
";
        let s = parse_resolvectl_status(out);
        assert_eq!(s.servers, ["10.0.0.2", "10.0.0.3", "fd00::1", "1.1.1.1"]);
        assert_eq!(s.domains, ["example.com", "lab.example"]);
    }

    #[test]
    fn resolvectl_global_output() {
        let out = "\
Global
           Protocols: -LLMNR -mDNS -DNSOverTLS DNSSEC=no/unsupported
    resolv.conf mode: stub
  Current DNS Server: 192.0.2.1

Link 2 (ens3)
Current Scopes: DNS
  DNS Servers: 192.0.2.1 192.0.2.2
   DNS Domain: ~.
";
        let s = parse_resolvectl_status(out);
        assert_eq!(s.servers, ["192.0.2.1", "192.0.2.2"]);
        assert!(s.domains.is_empty());
        let s = parse_resolvectl_status("Link 3 (wlan0)\nCurrent DNS Server: fe80::1%3\n");
        assert_eq!(s.servers, ["fe80::1%3"]);
        assert_eq!(
            parse_resolvectl_status("Link 4 (x)\n Current Scopes: none\n"),
            DnsSettings::default()
        );
    }

    #[test]
    fn label_detection() {
        assert!(is_label_line("       DNS Servers: 1.1.1.1"));
        assert!(is_label_line("    resolv.conf mode: stub"));
        assert!(!is_label_line("                    fd00::1"));
        assert!(!is_label_line("                    fe::1"));
        assert!(!is_label_line("                    10.0.0.3"));
    }

    #[test]
    fn hostnames() {
        for ok in ["example.com", "a", "x-1.example", "123.example"] {
            assert!(is_valid_hostname(ok), "{ok}");
        }
        for bad in [
            "",
            "-a.com",
            "a-.com",
            "a..com",
            "a_b.com",
            "a.com.",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_hostname(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn always_mode_without_resolvectl() {
        if find_in_path("resolvectl").is_some() {
            return;
        }
        let config = ProviderConfig {
            resolvectl: ResolvectlMode::Always,
            ..Default::default()
        };
        let err = get(&DnsGetParams::default(), &config).await.unwrap_err();
        assert!(
            err.0
                .starts_with("failed to get DNS config: resolvectl is not installed"),
            "{err}"
        );
    }
}
