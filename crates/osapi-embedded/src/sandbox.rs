//! The embedded stack's sandbox: agents started by an embedded stack change
//! nothing on the machine outside one temp dir unless asked to
//! ([`crate::EmbeddedBuilder::real_host`]). Each agent gets, for every
//! setting left at its real-machine default, a stand-in under
//! `<sandbox>/<agent>/`: a copy of `/etc/resolv.conf` that DNS updates
//! change (and no `resolvectl`), and a file root where deploys land
//! (`/etc/app.conf` → `<sandbox>/<agent>/root/etc/app.conf`). Commands
//! still run on this machine, as the user running the program.

use std::path::Path;

use osapi_agent::AgentConfig;
use osapi_agent::providers::{DEFAULT_RESOLV_CONF, ResolvectlMode};
use osapi_api::target::sanitize_host;

/// Points `config`'s real-machine defaults into `dir`.
pub(crate) fn confine(mut config: AgentConfig, dir: &Path) -> std::io::Result<AgentConfig> {
    let name = config
        .resolved_hostname()
        .unwrap_or_else(|_| "agent".to_string());
    let home = dir.join(sanitize_host(&name));
    std::fs::create_dir_all(&home)?;
    let p = &mut config.providers;
    if p.resolv_conf == Path::new(DEFAULT_RESOLV_CONF) {
        let copy = home.join("resolv.conf");
        let current = std::fs::read_to_string(DEFAULT_RESOLV_CONF)
            .unwrap_or_else(|_| "nameserver 127.0.0.1\n".to_string());
        std::fs::write(&copy, current)?;
        p.resolv_conf = copy;
    }
    if p.resolvectl == ResolvectlMode::Auto {
        p.resolvectl = ResolvectlMode::Never;
    }
    if p.file_root.is_none() {
        let root = home.join("root");
        std::fs::create_dir_all(&root)?;
        p.file_root = Some(root);
    }
    Ok(config)
}
