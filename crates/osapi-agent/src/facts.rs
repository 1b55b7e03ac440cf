//! Facts about the host, collected at start and then periodically:
//! architecture, kernel, CPUs, hostname, service and package manager,
//! network interfaces and IPv4 routes (from `/proc/net/route`), plus the
//! custom facts of the agent's configuration.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use nix::net::if_::InterfaceFlags;
use osapi_api::agent::{NetworkInterface, Route};
use osapi_api::records::Facts;
use serde_json::Value;

use crate::providers::find_in_path;

/// Package managers looked for on `PATH`, in order of preference.
const PACKAGE_MANAGERS: [&str; 6] = ["apt", "dnf", "yum", "apk", "pacman", "zypper"];

/// Collects the facts of this host. Parts that cannot be read are left empty.
pub fn collect(custom: &BTreeMap<String, Value>) -> Facts {
    collect_counted(custom).0
}

/// [`collect`], and how many sources could not be read (each logged).
pub fn collect_counted(custom: &BTreeMap<String, Value>) -> (Facts, u32) {
    let mut problems = 0;
    let (architecture, kernel_version) = match nix::sys::utsname::uname() {
        Ok(u) => (
            u.machine().to_string_lossy().into_owned(),
            u.release().to_string_lossy().into_owned(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "facts: uname failed");
            problems += 1;
            (String::new(), String::new())
        }
    };
    let cpu_count = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "facts: cannot count CPUs");
            problems += 1;
            0
        });
    let fqdn = crate::providers::node::os_hostname().unwrap_or_default();
    let service_mgr = if Path::new("/run/systemd/system").is_dir() {
        "systemd"
    } else {
        "unknown"
    };
    let package_mgr = PACKAGE_MANAGERS
        .into_iter()
        .find(|pm| find_in_path(pm).is_some())
        .unwrap_or("unknown");
    let routes = match std::fs::read_to_string("/proc/net/route") {
        Ok(text) => parse_proc_net_route(&text),
        Err(e) => {
            tracing::warn!(error = %e, "facts: cannot read /proc/net/route");
            problems += 1;
            Vec::new()
        }
    };
    let interfaces = match read_interfaces() {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "facts: getifaddrs failed");
            problems += 1;
            Vec::new()
        }
    };
    let facts = Facts {
        architecture,
        kernel_version,
        cpu_count,
        fqdn,
        service_mgr: service_mgr.to_string(),
        package_mgr: package_mgr.to_string(),
        interfaces,
        primary_interface: primary_interface(&routes).unwrap_or_default(),
        routes,
        facts: custom.clone(),
    };
    (facts, problems)
}

/// Interfaces that are up and not loopback, in the kernel's order: name,
/// MAC, first IPv4 and first IPv6 address (link-local allowed), family.
pub fn interfaces() -> Vec<NetworkInterface> {
    read_interfaces().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "facts: getifaddrs failed");
        Vec::new()
    })
}

fn read_interfaces() -> nix::Result<Vec<NetworkInterface>> {
    let addrs = nix::ifaddrs::getifaddrs()?;
    let mut out: Vec<NetworkInterface> = Vec::new();
    for ifa in addrs {
        if !ifa.flags.contains(InterfaceFlags::IFF_UP)
            || ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK)
        {
            continue;
        }
        let pos = match out.iter().position(|i| i.name == ifa.interface_name) {
            Some(pos) => pos,
            None => {
                out.push(NetworkInterface {
                    name: ifa.interface_name.clone(),
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let iface = &mut out[pos];
        let Some(addr) = ifa.address else { continue };
        if let Some(v4) = addr.as_sockaddr_in() {
            iface.ipv4.get_or_insert_with(|| v4.ip().to_string());
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            iface.ipv6.get_or_insert_with(|| v6.ip().to_string());
        } else if let Some(link) = addr.as_link_addr()
            && link.halen() == 6
            && let Some(mac) = link.addr()
        {
            iface.mac.get_or_insert_with(|| {
                mac.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            });
        }
    }
    for iface in &mut out {
        iface.family = match (iface.ipv4.is_some(), iface.ipv6.is_some()) {
            (true, true) => Some("dual".into()),
            (true, false) => Some("inet".into()),
            (false, true) => Some("inet6".into()),
            (false, false) => None,
        };
    }
    Ok(out)
}

/// Parses `/proc/net/route`: the header is skipped, lines with fewer than 8
/// fields or unparseable numbers are ignored. Destination, gateway and mask
/// are little-endian hex; the mask becomes `/<prefix length>`.
pub fn parse_proc_net_route(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            let destination = Ipv4Addr::from(hex(f[1])?.to_le_bytes());
            let gateway = Ipv4Addr::from(hex(f[2])?.to_le_bytes());
            let mask = hex(f[7])?;
            Some(Route {
                destination: destination.to_string(),
                gateway: gateway.to_string(),
                interface: f[0].to_string(),
                mask: Some(format!("/{}", mask.count_ones())),
                metric: Some(f[6].parse().ok()?),
                flags: Some(f[3].to_string()),
            })
        })
        .collect()
}

/// The interface of the first default route (destination `0.0.0.0`).
pub fn primary_interface(routes: &[Route]) -> Option<String> {
    routes
        .iter()
        .find(|r| r.destination == "0.0.0.0")
        .map(|r| r.interface.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE_FIXTURE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
wg0\t00000000\t00000000\t0001\t0\t0\t200\t00000000\t0\t0\t0
short\t00000000
bad\tZZZZZZZZ\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0
";

    #[test]
    fn route_fixture() {
        let routes = parse_proc_net_route(ROUTE_FIXTURE);
        assert_eq!(routes.len(), 4);
        assert_eq!(
            routes[1],
            Route {
                destination: "0.0.0.0".into(),
                gateway: "192.168.1.1".into(),
                interface: "eth0".into(),
                mask: Some("/0".into()),
                metric: Some(100),
                flags: Some("0003".into()),
            }
        );
        assert_eq!(routes[0].destination, "192.168.2.0");
        assert_eq!(routes[0].mask.as_deref(), Some("/24"));
        assert_eq!(primary_interface(&routes).as_deref(), Some("eth0"));
        assert_eq!(primary_interface(&routes[..1]), None);
        assert!(parse_proc_net_route("").is_empty());
    }

    #[test]
    fn facts_of_this_machine() {
        let custom = BTreeMap::from([("rack".to_string(), Value::from("r1"))]);
        let facts = collect(&custom);
        assert!(facts.cpu_count >= 1);
        let uname_m = std::process::Command::new("uname")
            .arg("-m")
            .output()
            .unwrap();
        assert_eq!(
            facts.architecture,
            String::from_utf8_lossy(&uname_m.stdout).trim()
        );
        let uname_r = std::process::Command::new("uname")
            .arg("-r")
            .output()
            .unwrap();
        assert_eq!(
            facts.kernel_version,
            String::from_utf8_lossy(&uname_r.stdout).trim()
        );
        assert_eq!(facts.fqdn, crate::providers::node::os_hostname().unwrap());
        assert!(["systemd", "unknown"].contains(&facts.service_mgr.as_str()));
        assert!(
            PACKAGE_MANAGERS.contains(&facts.package_mgr.as_str())
                || facts.package_mgr == "unknown"
        );
        assert_eq!(facts.facts["rack"], "r1");
        assert!(facts.interfaces.iter().all(|i| i.name != "lo"));
        for iface in &facts.interfaces {
            if let Some(mac) = &iface.mac {
                assert_eq!(mac.len(), 17, "{mac}");
            }
            if let Some(v4) = &iface.ipv4 {
                assert!(v4.parse::<Ipv4Addr>().is_ok());
            }
        }
        let from_proc = parse_proc_net_route(&std::fs::read_to_string("/proc/net/route").unwrap());
        assert_eq!(facts.routes, from_proc);
        assert_eq!(
            Some(facts.primary_interface.clone()).filter(|s| !s.is_empty()),
            primary_interface(&from_proc)
        );
        if !facts.primary_interface.is_empty() {
            assert!(
                facts
                    .interfaces
                    .iter()
                    .any(|i| i.name == facts.primary_interface)
            );
        }
    }
}
