//! Real processes for distributed-mode tests: a `nats-server` with JetStream
//! on a random loopback port and a temp store, `osapi api server start` and
//! `osapi agent start` processes with their own config files. Everything is
//! killed when the test ends; nothing outside temp dirs is touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use osapi_client::Client;
use tempfile::TempDir;

use crate::pki::Pki;

#[path = "../support/ports.rs"]
mod ports;
pub use ports::free_port;

pub const BIN: &str = env!("CARGO_BIN_EXE_osapi");
/// The agent-only binary: fleets' agents run it (a restart runs
/// `osapi agent start` instead, so both are exercised).
pub const AGENT_BIN: &str = env!("CARGO_BIN_EXE_osapi-agent");
pub const KEY: &str = "distributed-test-signing-key";
/// `nats.objects.max_bytes` of the tests' controllers: JetStream reserves a
/// bucket's limit up front, and the default (10 GiB) fails on a machine
/// with less than about 14 GB of free disk.
const OBJECT_BYTES: &str = "64MiB";

/// The nats-server binary: `OSAPI_NATS_SERVER`, else what scripts/setup-nats.sh finds or installs.
pub fn nats_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup-nats.sh");
            let out = Command::new(&script)
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "scripts/setup-nats.sh could not provide nats-server >= 2.10"
            );
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// A child process killed (SIGKILL) on drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (clean shutdown).
    pub fn terminate(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The controllers' NATS user and password.
pub const CONTROLLER_USER: &str = "osapi-controller";
pub const CONTROLLER_PASSWORD: &str = "controller-test-password";

/// An agent's NATS user and password.
pub fn agent_user(name: &str) -> (String, String) {
    (format!("agent-{name}"), format!("{name}-test-password"))
}

/// How an agent proves who it is to the tests' NATS server.
#[derive(Clone)]
pub enum AgentCredentials {
    /// [`agent_user`].
    Password,
    /// An nkey: the public key goes into the server's config, the seed file
    /// to the agent.
    Nkey { public: String, seed_file: PathBuf },
}

/// A JetStream server on a random port with a temp store, secured as
/// `docs/nats-server.conf` says (rendered by scripts/nats-server-conf.sh):
/// TLS with client certificates, user/password or nkey users, and
/// least-privilege agent permissions. Agents are added to its users (and
/// the server reloads) as tests add them.
pub struct Nats {
    pub port: u16,
    /// nats-server's monitoring port (`/varz`).
    pub monitor_port: u16,
    pub pki: Pki,
    pub namespace: String,
    store: TempDir,
    proc: Option<Proc>,
    agents: Vec<(String, AgentCredentials)>,
    /// Lines left out of docs/nats-server.conf (containing any of these).
    dropped: Vec<String>,
}

impl Nats {
    pub async fn start() -> Nats {
        let store = tempfile::tempdir().unwrap();
        let mut n = Nats {
            port: free_port(),
            monitor_port: free_port(),
            pki: Pki::create(store.path()),
            namespace: "test".into(),
            store,
            proc: None,
            agents: Vec::new(),
            dropped: Vec::new(),
        };
        // The free ports were free when picked; another process (any of
        // the outgoing connections of tests running beside) may take one
        // before nats-server binds it: then pick others.
        for attempt in 1.. {
            match n.try_run().await {
                Ok(()) => break,
                Err(log) if attempt < 3 => {
                    eprintln!("nats-server did not start (attempt {attempt}), new ports: {log}");
                    n.port = free_port();
                    n.monitor_port = free_port();
                }
                Err(log) => panic!("nats-server did not start: {log}"),
            }
        }
        n
    }

    fn conf_path(&self) -> PathBuf {
        self.store.path().join("nats-server.conf")
    }

    /// Renders the server's configuration from docs/nats-server.conf.
    fn render(&self) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/nats-server-conf.sh");
        let mut cmd = Command::new(&script);
        cmd.args(["--ns", &self.namespace, "--listen", "127.0.0.1"])
            .args(["--port", &self.port.to_string()])
            .arg("--store-dir")
            .arg(self.store.path().join("js"))
            .arg("--cert")
            .arg(&self.pki.server_cert)
            .arg("--key")
            .arg(&self.pki.server_key)
            .arg("--ca")
            .arg(&self.pki.ca)
            .arg("--controller")
            .arg(format!(
                "user: \"{CONTROLLER_USER}\", password: \"{CONTROLLER_PASSWORD}\""
            ));
        for (name, creds) in &self.agents {
            let auth = match creds {
                AgentCredentials::Password => {
                    let (user, password) = agent_user(name);
                    format!("user: \"{user}\", password: \"{password}\"")
                }
                AgentCredentials::Nkey { public, .. } => format!("nkey: \"{public}\""),
            };
            cmd.arg("--agent").arg(format!("{name}={auth}"));
        }
        let out = cmd.output().expect("scripts/nats-server-conf.sh runs");
        assert!(
            out.status.success(),
            "rendering docs/nats-server.conf: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| !self.dropped.iter().any(|d| l.contains(d.as_str())))
            .flat_map(|l| [l, "\n"])
            .collect();
        std::fs::write(self.conf_path(), kept).unwrap();
    }

    /// Leaves every line containing `text` out of the server's
    /// configuration (as one written before a permission was added), and
    /// waits until the server has loaded it.
    pub async fn drop_lines(&mut self, text: &str) {
        self.dropped.push(text.to_string());
        self.render();
        let loaded = self.varz().await["config_load_time"].clone();
        if let Some(p) = &self.proc {
            let pid = nix::unistd::Pid::from_raw(p.child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
        }
        wait_for(Duration::from_secs(10), "nats-server to reload", || async {
            self.varz().await["config_load_time"] != loaded
        })
        .await;
    }

    /// The server's `/varz` page.
    async fn varz(&self) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/varz", self.monitor_port);
        reqwest::get(&url).await.unwrap().json().await.unwrap()
    }

    /// Starts (again) on the same port and store.
    pub async fn run(&mut self) {
        if let Err(log) = self.try_run().await {
            panic!("nats-server did not start: {log}");
        }
    }

    /// Starts nats-server and waits until it accepts connections; its log
    /// when it exits first or does not answer within 10 s.
    async fn try_run(&mut self) -> Result<(), String> {
        self.render();
        let log_path = self.store.path().join("nats-server.log");
        // Appended to: a restarted server's log follows the first's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let child = Command::new(nats_binary())
            .arg("-c")
            .arg(self.conf_path())
            .args(["-m", &self.monitor_port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        let mut proc = Proc { child };
        let controller = (CONTROLLER_USER.to_string(), CONTROLLER_PASSWORD.to_string());
        let end = Instant::now() + Duration::from_secs(10);
        let told = |why: String| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            format!("{why}; its log:\n{log}")
        };
        loop {
            if self.connect_as(&controller).await.is_ok() {
                self.proc = Some(proc);
                return Ok(());
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(told(format!("it exited ({status})")));
            }
            if Instant::now() >= end {
                proc.kill();
                return Err(told("no connection accepted within 10 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Adds agents' users with one reload of the server's configuration;
    /// returns when the last agent's credentials are accepted.
    pub async fn add_agent_users(&mut self, users: &[(String, AgentCredentials)]) {
        let new: Vec<(String, AgentCredentials)> = users
            .iter()
            .filter(|(name, _)| !self.agents.iter().any(|(n, _)| n == name))
            .cloned()
            .collect();
        let Some((last, creds)) = new.last().cloned() else {
            return;
        };
        self.agents.extend(new);
        self.render();
        if let Some(p) = &self.proc {
            let pid = nix::unistd::Pid::from_raw(p.child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
        }
        wait_for(Duration::from_secs(10), "nats-server to reload", || async {
            self.connect_agent(&last, &creds).await.is_ok()
        })
        .await;
    }

    /// A client with a user's credentials (TLS, client certificate).
    pub async fn connect_as(
        &self,
        user: &(String, String),
    ) -> Result<async_nats::Client, async_nats::ConnectError> {
        self.options()
            .user_and_password(user.0.clone(), user.1.clone())
            .connect(self.url())
            .await
    }

    /// A client with the controllers' credentials (the tests' stand-in for
    /// someone in control of the bus).
    pub async fn controller_client(&self) -> async_nats::Client {
        self.connect_as(&(CONTROLLER_USER.to_string(), CONTROLLER_PASSWORD.to_string()))
            .await
            .expect("controller credentials accepted")
    }

    /// A client with an agent's credentials and inbox prefix.
    pub async fn connect_agent(
        &self,
        name: &str,
        creds: &AgentCredentials,
    ) -> Result<async_nats::Client, async_nats::ConnectError> {
        let options = self
            .options()
            .custom_inbox_prefix(format!("_INBOX_{}", osapi_api::target::sanitize_key(name)));
        let options = match creds {
            AgentCredentials::Password => {
                let (user, password) = agent_user(name);
                options.user_and_password(user, password)
            }
            AgentCredentials::Nkey { seed_file, .. } => {
                let seed = std::fs::read_to_string(seed_file).unwrap();
                options.nkey(seed.trim().to_string())
            }
        };
        options.connect(self.url()).await
    }

    fn options(&self) -> async_nats::ConnectOptions {
        async_nats::ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(self.pki.ca.clone())
            .add_client_certificate(self.pki.client_cert.clone(), self.pki.client_key.clone())
            .connection_timeout(Duration::from_secs(2))
    }

    /// Messages the server has received and sent so far (its `/varz`
    /// `in_msgs` + `out_msgs`): what a request costs on the bus.
    pub async fn messages(&self) -> u64 {
        let varz = self.varz().await;
        varz["in_msgs"].as_u64().unwrap() + varz["out_msgs"].as_u64().unwrap()
    }

    pub fn url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    /// The server's process id (the benchmark measures its CPU).
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }
}

/// Polls `check` until it is true (events here are other processes' state,
/// observable only by asking).
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_watching(limit, &mut [], what, check).await
}

/// Waits until the controller `client` talks to reports agent `host` as
/// cordoned (drained and idle: it takes nothing more from its queue).
pub async fn wait_cordoned(client: &osapi_client::Client, host: &str, limit: Duration) {
    wait_for(limit, &format!("{host} to report Cordoned"), || {
        let client = client.clone();
        let host = host.to_string();
        async move {
            client
                .agent(&host)
                .await
                .is_ok_and(|a| a.state == Some(osapi_api::agent::AgentState::Cordoned))
        }
    })
    .await
}

/// [`wait_for`] while processes start: fails at once, with its log, when
/// one of them exits instead (a startup error), and after 30 s otherwise.
pub async fn wait_while_running<F, Fut>(procs: &mut [(&mut Proc, PathBuf)], what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_watching(Duration::from_secs(30), procs, what, check).await
}

/// Polls `check` until it is true, failing after `limit`, or at once with
/// its log when one of `procs` has exited.
async fn wait_watching<F, Fut>(
    limit: Duration,
    procs: &mut [(&mut Proc, PathBuf)],
    what: &str,
    mut check: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        for (proc, log) in procs.iter_mut() {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!(
                    "waiting for {what}: a process exited ({status}); its log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Settings of one agent process.
#[derive(Clone, Default)]
pub struct AgentSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub facts: BTreeMap<String, String>,
    /// Leave `agent.heartbeat_interval` unset (the agent derives it from the TTL).
    pub default_heartbeat: bool,
    /// Authenticate with an nkey instead of a password.
    pub nkey: Option<AgentCredentials>,
    /// More YAML lines under `agent:` (indented two spaces).
    pub extra: String,
    /// The `nats.registry.ttl` of this agent's own file, when not the
    /// cluster's (the controllers' bucket decides).
    pub registry_ttl: Option<Duration>,
}

impl AgentSpec {
    pub fn new(name: &str) -> Self {
        AgentSpec {
            name: name.into(),
            ..Default::default()
        }
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }
    pub fn fact(mut self, k: &str, v: &str) -> Self {
        self.facts.insert(k.into(), v.into());
        self
    }
    /// Serves the agent's metrics on a free port; returns the spec and the
    /// page's URL.
    pub fn serving_metrics(mut self) -> (Self, String) {
        let port = free_port();
        self.extra
            .push_str(&format!("  metrics: {{listen: 127.0.0.1:{port}}}\n"));
        (self, format!("http://127.0.0.1:{port}/metrics"))
    }
    pub fn default_heartbeat(mut self) -> Self {
        self.default_heartbeat = true;
        self
    }
    /// Writes `ttl` as `nats.registry.ttl` in this agent's file.
    pub fn registry_ttl_in_file(mut self, ttl: Duration) -> Self {
        self.registry_ttl = Some(ttl);
        self
    }
    /// Authenticates with a fresh nkey (written under `dir`).
    pub fn with_nkey(mut self, dir: &Path) -> Self {
        let pair = nkeys::KeyPair::new_user();
        let seed_file = dir.join(format!("{}.nk", self.name));
        std::fs::write(&seed_file, format!("{}\n", pair.seed().unwrap())).unwrap();
        self.nkey = Some(AgentCredentials::Nkey {
            public: pair.public_key(),
            seed_file,
        });
        self
    }
}

/// NATS, controllers and agents of one test.
pub struct Cluster {
    pub token: String,
    pub nats: Nats,
    pub dir: TempDir,
    pub controllers: Vec<(u16, Proc)>,
    pub agents: BTreeMap<String, Proc>,
    pub ttl: Duration,
    /// More YAML lines under `nats:` (indented two spaces) for every process.
    pub nats_extra: String,
    /// Lines added to controllers' `api.server` section (indented by 4).
    pub server_extra: String,
    /// The controllers' job-signing key file, and its public key (agents trust it).
    pub job_key: (PathBuf, String),
    /// `nats.objects.max_bytes` of every process.
    pub object_bytes: String,
    /// More top-level YAML of every process (e.g. `telemetry:`).
    pub file_extra: String,
    /// Environment of every process started from now on (after
    /// `OSAPI_LOG=warn`, so it may override it).
    pub env: Vec<(String, String)>,
    /// More arguments of every `osapi` process (controllers) started from
    /// now on.
    pub osapi_args: Vec<String>,
}

fn yaml_map(m: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {v:?}")).collect();
    format!("{{{}}}", items.join(", "))
}

impl Cluster {
    pub async fn start(ttl: Duration) -> Cluster {
        let out = Command::new(BIN)
            .args(["token", "generate", "-r", "admin", "-u", "tester"])
            .env("OSAPI_API_SERVER_SECURITY_SIGNING_KEY", KEY)
            .output()
            .unwrap();
        assert!(out.status.success(), "token generate");
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("job-signing");
        let key = Command::new(BIN)
            .args(["key", "generate", "-o"])
            .arg(&prefix)
            .output()
            .unwrap();
        assert!(key.status.success(), "key generate");
        Cluster {
            token: String::from_utf8(out.stdout).unwrap().trim().to_string(),
            nats: Nats::start().await,
            job_key: (
                prefix.with_extension("key"),
                String::from_utf8(key.stdout).unwrap().trim().to_string(),
            ),
            dir,
            controllers: Vec::new(),
            agents: BTreeMap::new(),
            ttl,
            nats_extra: String::new(),
            server_extra: String::new(),
            object_bytes: OBJECT_BYTES.into(),
            file_extra: String::new(),
            env: Vec::new(),
            osapi_args: Vec::new(),
        }
    }

    /// Writes the configuration file of process `name` (an agent when
    /// `agent` is given) and returns its path.
    pub fn config(&self, name: &str, api_port: u16, agent: Option<&AgentSpec>) -> PathBuf {
        let resolv = self.dir.path().join(format!("resolv-{name}.conf"));
        std::fs::write(&resolv, "nameserver 10.0.0.53\n").unwrap();
        let heartbeat = Duration::from_millis((self.ttl.as_millis() / 4).max(50) as u64);
        let (hostname, labels, facts, agent_extra) = match agent {
            Some(a) => (
                a.name.clone(),
                yaml_map(&a.labels),
                yaml_map(&a.facts),
                a.extra.clone(),
            ),
            None => (name.to_string(), "{}".into(), "{}".into(), String::new()),
        };
        let heartbeat = if agent.is_some_and(|a| a.default_heartbeat) {
            String::new()
        } else {
            format!("heartbeat_interval: {}ms", heartbeat.as_millis())
        };
        let text = format!(
            "api:
  server:
    port: {api_port}
    bind: 127.0.0.1
{server_extra}    nats:
      host: tls://127.0.0.1
      port: {nats}
      namespace: test
      auth: {{type: user_pass, username: {controller_user}, password_file: {controller_password_file}}}
      tls: {{ca_file: {ca}, cert_file: {cert}, key_file: {key}}}
    security:
      signing_key: {KEY}
      job_signing_key_file: {job_key}
agent:
  hostname: {hostname}
  state_dir: {state}
  security: {{job_verify_keys: [{job_pub}]}}
  labels: {labels}
  facts: {facts}
  {heartbeat}
  nats:
    host: 127.0.0.1
    port: {nats}
    namespace: test
    auth: {agent_auth}
    tls: {{ca_file: {ca}, cert_file: {cert}, key_file: {key}}}
  dns: {{resolv_conf: {resolv}, resolvectl: never}}
  consumer: {{ack_wait: 5s}}
{agent_extra}nats:
  registry: {{ttl: {ttl}ms}}
  objects: {{max_bytes: {objects}}}
{extra}{file_extra}",
            file_extra = self.file_extra,
            objects = self.object_bytes,
            extra = self.nats_extra,
            server_extra = self.server_extra,
            controller_user = CONTROLLER_USER,
            controller_password_file = self.controller_password_file().display(),
            agent_auth = self.agent_auth(agent),
            ca = self.nats.pki.ca.display(),
            cert = self.nats.pki.client_cert.display(),
            key = self.nats.pki.client_key.display(),
            job_key = self.job_key.0.display(),
            job_pub = self.job_key.1,
            state = self.dir.path().join(format!("state-{name}")).display(),
            nats = self.nats.port,
            ttl = agent.and_then(|a| a.registry_ttl).unwrap_or(self.ttl).as_millis(),
            resolv = resolv.display(),
        );
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn spawn(&self, name: &str, config: &Path, args: &[&str]) -> Proc {
        let mut args = args.to_vec();
        args.extend(self.osapi_args.iter().map(String::as_str));
        self.spawn_bin(BIN, name, config, &args)
    }

    fn spawn_bin(&self, bin: &str, name: &str, config: &Path, args: &[&str]) -> Proc {
        let log = std::fs::File::create(self.log_path(name)).unwrap();
        let out = std::fs::File::create(self.dir.path().join(format!("{name}.out"))).unwrap();
        let child = Command::new(bin)
            .arg("-f")
            .arg(config)
            .args(args)
            .env("OSAPI_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(out)
            .stderr(log)
            .spawn()
            .expect("osapi starts");
        Proc { child }
    }

    /// The log of a process, for assertion messages.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// What a process printed on its standard output.
    pub fn out(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.out"))).unwrap_or_default()
    }

    /// The name of controller `i` (for [`Cluster::log`]).
    pub fn controller_name(&self, i: usize) -> String {
        format!("controller-{}", self.controllers[i].0)
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// Starts a controller; waits until it is ready. Returns its index.
    pub async fn add_controller(&mut self) -> usize {
        let port = free_port();
        self.start_controller_on(port).await;
        self.controllers.len() - 1
    }

    pub async fn start_controller_on(&mut self, port: u16) {
        let name = format!("controller-{port}");
        let config = self.config(&name, port, None);
        let mut proc = self.spawn(&name, &config, &["api", "server", "start"]);
        let client = self.client_on(port);
        let log = self.log_path(&name);
        wait_while_running(
            &mut [(&mut proc, log)],
            &format!("controller {name} to be ready"),
            || {
                let c = client.clone();
                async move { c.ready().await.is_ok_and(|r| r.status == "ready") }
            },
        )
        .await;
        self.controllers.push((port, proc));
    }

    /// Starts a controller that is expected to fail at start; returns its
    /// exit status and log once it has exited (within 30 s).
    pub async fn failed_controller(&mut self) -> (std::process::ExitStatus, String) {
        let port = free_port();
        let name = format!("controller-{port}");
        let config = self.config(&name, port, None);
        let proc = self.spawn(&name, &config, &["api", "server", "start"]);
        self.exited(proc, &name).await
    }

    /// A cluster (registry TTL 10 s) with one controller and one agent
    /// `name` serving its metrics: the cluster, the agent's settings and
    /// its metrics URL.
    pub async fn with_metered_agent(name: &str) -> (Cluster, AgentSpec, String) {
        let (spec, metrics) = AgentSpec::new(name).serving_metrics();
        let c = Cluster::with_agent(Duration::from_secs(10), &spec).await;
        (c, spec, metrics)
    }

    /// A cluster (registry TTL `ttl`) with one controller and the agent
    /// `spec`, registered.
    pub async fn with_agent(ttl: Duration, spec: &AgentSpec) -> Cluster {
        let mut c = Cluster::start(ttl).await;
        c.add_controller().await;
        c.add_agents(std::slice::from_ref(spec)).await;
        c
    }

    /// Starts an agent that is expected to fail at start; returns its exit
    /// status and log once it has exited (within 30 s).
    pub async fn failed_agent(&mut self, spec: &AgentSpec) -> (std::process::ExitStatus, String) {
        let credentials = spec.nkey.clone().unwrap_or(AgentCredentials::Password);
        self.nats
            .add_agent_users(&[(spec.name.clone(), credentials)])
            .await;
        let config = self.config(&spec.name, 0, Some(spec));
        let proc = self.spawn_bin(AGENT_BIN, &spec.name, &config, &[]);
        self.exited(proc, &spec.name).await
    }

    /// Waits (up to 30 s) for a process expected to exit; its status and log.
    async fn exited(&self, mut proc: Proc, name: &str) -> (std::process::ExitStatus, String) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                return (status, self.log(name));
            }
            assert!(
                Instant::now() < end,
                "{name} did not exit; its log:\n{}",
                self.log(name)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.controllers[i].0)
    }

    pub fn client_on(&self, port: u16) -> Client {
        Client::new(&format!("http://127.0.0.1:{port}"), &self.token()).unwrap()
    }

    pub fn client(&self, i: usize) -> Client {
        self.client_on(self.controllers[i].0)
    }

    pub fn token(&self) -> String {
        self.token.clone()
    }

    fn controller_password_file(&self) -> PathBuf {
        let path = self.dir.path().join("controller-password");
        if !path.exists() {
            std::fs::write(&path, format!("{CONTROLLER_PASSWORD}\n")).unwrap();
        }
        path
    }

    /// The `agent.nats.auth` block of an agent (controllers' files carry one
    /// too, unused).
    fn agent_auth(&self, agent: Option<&AgentSpec>) -> String {
        let name = agent.map(|a| a.name.as_str()).unwrap_or("none");
        match agent.and_then(|a| a.nkey.as_ref()) {
            Some(AgentCredentials::Nkey { seed_file, .. }) => {
                format!("{{type: nkey, nkey_file: {}}}", seed_file.display())
            }
            _ => {
                let (user, password) = agent_user(name);
                format!("{{type: user_pass, username: {user}, password: {password}}}")
            }
        }
    }

    /// A token of `roles` with explicit `permissions` (none: the roles').
    pub fn token_for(&self, subject: &str, roles: &str, permissions: &str) -> String {
        let mut args = vec!["-r", roles, "-u", subject];
        if !permissions.is_empty() {
            args.extend(["-p", permissions]);
        }
        self.token_with(&args)
    }

    /// A token from `osapi token generate <args>`.
    pub fn token_with(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(["token", "generate"])
            .args(args)
            .env("OSAPI_API_SERVER_SECURITY_SIGNING_KEY", KEY)
            .output()
            .unwrap();
        assert!(out.status.success(), "token generate");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Starts an agent process again (after `kill`), with the same config
    /// and state directory, as `osapi agent start`; waits until it is
    /// registered anew.
    pub async fn restart_agent(&mut self, spec: &AgentSpec) {
        let before = self
            .client(0)
            .agent(&spec.name)
            .await
            .ok()
            .and_then(|a| a.started_at);
        if let Some(mut old) = self.agents.remove(&spec.name) {
            old.kill();
        }
        let config = self.config(&spec.name, 0, Some(spec));
        let mut proc = self.spawn(&spec.name, &config, &["agent", "start"]);
        let client = self.client(0);
        let name = spec.name.clone();
        let log = self.log_path(&name);
        wait_while_running(
            &mut [(&mut proc, log)],
            "the agent to register again",
            || {
                let (c, name) = (client.clone(), name.clone());
                async move {
                    c.agent(&name)
                        .await
                        .is_ok_and(|a| a.started_at.is_some() && a.started_at != before)
                }
            },
        )
        .await;
        self.agents.insert(spec.name.clone(), proc);
    }

    /// Starts a second agent process under `spec`'s hostname, with its own
    /// config file, state directory and log, all named `process` (as a
    /// second host named alike would have); does not wait for it.
    pub fn add_namesake(&mut self, spec: &AgentSpec, process: &str) {
        let config = self.config(process, 0, Some(spec));
        let proc = self.spawn_bin(AGENT_BIN, process, &config, &[]);
        self.agents.insert(process.to_string(), proc);
    }

    /// An agent's bus as the agent process of `spec` would open it, from
    /// the config file the cluster writes for it.
    pub async fn agent_bus(&self, spec: &AgentSpec) -> osapi_bus::Bus {
        let config = self.config(&spec.name, 0, Some(spec));
        let file = osapi_cli::config::OsapiFile::load(Some(&config), &BTreeMap::new()).unwrap();
        let nats = file.nats_config(&file.agent.nats, "agent").unwrap();
        osapi_bus::nats::NatsBus::connect_agent(nats, &spec.name, Duration::from_secs(10))
            .await
            .unwrap()
    }

    /// Starts agent processes and waits until the first controller lists them.
    pub async fn add_agents(&mut self, specs: &[AgentSpec]) {
        let users: Vec<(String, AgentCredentials)> = specs
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.nkey.clone().unwrap_or(AgentCredentials::Password),
                )
            })
            .collect();
        self.nats.add_agent_users(&users).await;
        let mut procs = Vec::new();
        for spec in specs {
            let config = self.config(&spec.name, 0, Some(spec));
            let proc = self.spawn_bin(AGENT_BIN, &spec.name, &config, &[]);
            procs.push((proc, self.log_path(&spec.name)));
        }
        let client = self.client(0);
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let mut watched: Vec<(&mut Proc, PathBuf)> =
            procs.iter_mut().map(|(p, log)| (p, log.clone())).collect();
        wait_while_running(&mut watched, "agents to register", || {
            let (c, names) = (client.clone(), names.clone());
            async move {
                c.agents().await.is_ok_and(|l| {
                    names
                        .iter()
                        .all(|n| l.agents.iter().any(|a| &a.hostname == n))
                })
            }
        })
        .await;
        for (spec, (proc, _)) in specs.iter().zip(procs) {
            self.agents.insert(spec.name.clone(), proc);
        }
    }
}
