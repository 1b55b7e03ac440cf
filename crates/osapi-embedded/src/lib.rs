//! The embedded control plane: a controller on a loopback port and one or
//! more in-process agents on an in-memory bus, with a fresh signing key and an
//! admin token. What `cargo run --example basic` and the tests use.
//!
//! Its agents are sandboxed unless [`EmbeddedBuilder::real_host`] says
//! otherwise: DNS updates change a copy of `resolv.conf` and deploys land in
//! a file root, both in a temp dir ([`Embedded::sandbox_dir`]). A client in
//! the same process can skip the socket ([`Embedded::client`],
//! [`Embedded::local_transport`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), osapi_embedded::EmbeddedError> {
//! use osapi_embedded::{AgentConfig, Embedded};
//! let stack = Embedded::builder()
//!     .agent(AgentConfig::named("web-01").label("role", "web"))
//!     .agent(AgentConfig::named("db-01").label("role", "db"))
//!     .start()
//!     .await?;
//! println!("controller at {} (token {})", stack.url(), stack.token());
//! stack.shutdown().await;
//! # Ok(()) }
//! ```

mod local;
mod sandbox;

pub use osapi_agent::AgentConfig;
pub use osapi_agent::providers::{ProviderConfig, ResolvectlMode};

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osapi_agent::{Agent, AgentError, AgentHandle};
use osapi_api::signing::{JobSigner, PublicKey};
use osapi_bus::Bus;
use osapi_bus::memory::{MemoryBus, MemoryBusConfig};
use osapi_client::LocalTransport;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use osapi_server::auth::{TokenSigner, random_signing_key};
use osapi_server::{Controller, ServerConfig, ServerError};

/// A poisoned lock still guards usable data here (the agents' handles).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Lifetime of the admin token the embedded stack mints.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Why the embedded stack could not start or change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// The controller failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// An agent failed.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// Two agents with one name.
    #[error("an agent named {0:?} is already running")]
    DuplicateAgent(String),
    /// Token minting failed.
    #[error("token: {0}")]
    Token(String),
    /// The agents' sandbox could not be made.
    #[error("cannot prepare the agents' sandbox: {0}")]
    Sandbox(String),
}

/// Settings of an embedded stack.
pub struct EmbeddedBuilder {
    agents: Vec<AgentConfig>,
    server: ServerConfig,
    bus: MemoryBusConfig,
    heartbeat: Option<Duration>,
    verify: bool,
    real_host: bool,
}

impl EmbeddedBuilder {
    /// Lets the agents read and change the real machine: `/etc/resolv.conf`
    /// (through `resolvectl` where it answers), deploy paths as given. By
    /// default each agent works in a sandbox under a temp dir instead
    /// ([`Embedded::sandbox_dir`]) for every setting left at its default.
    /// `osapi start` uses this; an example or a test should not.
    pub fn real_host(mut self) -> Self {
        self.real_host = true;
        self
    }

    /// Adds an in-process agent. Without any, one agent named after this host runs.
    pub fn agent(mut self, config: AgentConfig) -> Self {
        self.agents.push(config);
        self
    }

    /// Loopback port for the controller (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.server.port = port;
        self
    }

    /// Signing key (default: a fresh random one).
    pub fn signing_key(mut self, key: impl Into<String>) -> Self {
        self.server.signing_key = key.into();
        self
    }

    /// Registry TTL: how fast a dead agent is noticed (default 30 s).
    pub fn registry_ttl(mut self, ttl: Duration) -> Self {
        self.bus.registry_ttl = ttl;
        self
    }

    /// Heartbeat interval of every agent (default: a third of the TTL, at most 10 s).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat = Some(interval);
        self
    }

    /// Adjusts any other controller setting.
    pub fn server_config(mut self, f: impl FnOnce(&mut ServerConfig)) -> Self {
        f(&mut self.server);
        self
    }

    /// Makes the in-process agents check every job's signature (default
    /// off: jobs are signed, but on a bus that lives inside this process
    /// only this controller can publish, so the check would cost ~50 µs a
    /// job for nothing). Agents started with `trust(…)` keys always check.
    pub fn verify_signatures(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }

    /// Adjusts any other bus setting.
    pub fn bus_config(mut self, f: impl FnOnce(&mut MemoryBusConfig)) -> Self {
        f(&mut self.bus);
        self
    }

    /// Starts the controller and the agents; returns when all agents are registered.
    pub async fn start(self) -> Result<Embedded, EmbeddedError> {
        let EmbeddedBuilder {
            agents,
            mut server,
            bus,
            heartbeat,
            verify,
            real_host,
        } = self;
        let sandbox = if real_host {
            None
        } else {
            Some(
                tempfile::Builder::new()
                    .prefix("osapi-embedded-")
                    .tempdir()
                    .map_err(|e| EmbeddedError::Sandbox(e.to_string()))?,
            )
        };
        if server.signing_key.is_empty() {
            server.signing_key = random_signing_key()
                .map_err(|e| EmbeddedError::Token(format!("no random signing key: {e}")))?;
        }
        // Jobs are signed here too, with a key of this stack (its agents
        // check it when asked to, see `verify_signatures`).
        let job_signer = match &server.job_signer {
            Some(s) => s.clone(),
            None => {
                Arc::new(JobSigner::generate().map_err(|e| EmbeddedError::Token(e.to_string()))?)
            }
        };
        server.job_signer = Some(job_signer.clone());
        let heartbeat =
            heartbeat.unwrap_or_else(|| (bus.registry_ttl / 3).min(Duration::from_secs(10)));
        let bus = MemoryBus::start(bus);
        let signer = TokenSigner::new(&server.signing_key).map_err(EmbeddedError::Token)?;
        let token = signer
            .sign("embedded-admin", &["admin".to_string()], &[], TOKEN_TTL)
            .map_err(EmbeddedError::Token)?;
        let signing_key = server.signing_key.clone();
        let controller = Controller::new(server, bus.clone())?;
        let local: Arc<dyn LocalTransport> = Arc::new(local::RouterTransport {
            router: controller.router(),
        });
        let listener = controller.bind().await?;
        let addr = listener.local_addr().map_err(ServerError::Io)?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server_task = tokio::spawn(async move {
            if let Err(e) = controller
                .serve(listener, async move { stop.cancelled().await })
                .await
            {
                tracing::error!(error = %e, "embedded controller stopped");
            }
        });
        let stack = Embedded {
            url: format!("http://{addr}"),
            addr,
            token,
            signing_key,
            signer,
            job_key: job_signer.public_key(),
            local,
            verify,
            sandbox,
            bus,
            heartbeat,
            agents: Mutex::new(BTreeMap::new()),
            server_task,
            shutdown,
        };
        let agents = if agents.is_empty() {
            vec![AgentConfig::default()]
        } else {
            agents
        };
        for config in agents {
            stack.add_agent(config).await?;
        }
        Ok(stack)
    }
}

/// A running embedded control plane.
pub struct Embedded {
    url: String,
    addr: SocketAddr,
    token: String,
    signing_key: String,
    signer: TokenSigner,
    job_key: PublicKey,
    local: Arc<dyn LocalTransport>,
    verify: bool,
    sandbox: Option<tempfile::TempDir>,
    bus: Bus,
    heartbeat: Duration,
    agents: Mutex<BTreeMap<String, AgentHandle>>,
    server_task: JoinHandle<()>,
    shutdown: CancellationToken,
}

impl Embedded {
    /// Settings with one default agent, loopback, random port and key.
    pub fn builder() -> EmbeddedBuilder {
        EmbeddedBuilder {
            agents: Vec::new(),
            server: ServerConfig {
                bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 0,
                ..Default::default()
            },
            bus: MemoryBusConfig::default(),
            heartbeat: None,
            verify: false,
            real_host: false,
        }
    }

    /// Base URL of the controller, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Address the controller listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An admin token valid for a day.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The signing key.
    pub fn signing_key(&self) -> &str {
        &self.signing_key
    }

    /// The public key its agents check job signatures with.
    pub fn job_key(&self) -> PublicKey {
        self.job_key
    }

    /// Mints a token with other roles or explicit permissions.
    pub fn mint_token(
        &self,
        roles: &[&str],
        permissions: &[&str],
    ) -> Result<String, EmbeddedError> {
        let roles: Vec<String> = roles.iter().map(|s| s.to_string()).collect();
        let perms: Vec<String> = permissions.iter().map(|s| s.to_string()).collect();
        self.signer
            .sign("embedded-user", &roles, &perms, TOKEN_TTL)
            .map_err(EmbeddedError::Token)
    }

    /// The controller answered in this process, for
    /// [`osapi_client::ClientBuilder::local`]: the same routes, checks and
    /// audit as over HTTP, without the loopback connection.
    pub fn local_transport(&self) -> Arc<dyn LocalTransport> {
        self.local.clone()
    }

    /// A client of this stack with the admin token, in process.
    pub fn client(&self) -> Result<osapi_client::Client, osapi_client::ClientError> {
        osapi_client::Client::builder(&self.url, &self.token)
            .local(self.local_transport())
            .build()
    }

    /// Where the agents' sandbox lives (`<dir>/<agent>/resolv.conf`,
    /// `<dir>/<agent>/root/…` for deployed files); `None` with
    /// [`EmbeddedBuilder::real_host`]. Removed when the stack is dropped.
    pub fn sandbox_dir(&self) -> Option<&std::path::Path> {
        self.sandbox.as_ref().map(|d| d.path())
    }

    /// The in-memory bus (for tests that inspect state).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    fn agents(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, AgentHandle>> {
        lock(&self.agents)
    }

    /// Names of the running agents.
    pub fn agent_names(&self) -> Vec<String> {
        self.agents().keys().cloned().collect()
    }

    /// Starts another agent; returns its hostname once it is registered.
    pub async fn add_agent(&self, mut config: AgentConfig) -> Result<String, EmbeddedError> {
        if config.heartbeat_interval == AgentConfig::default().heartbeat_interval {
            config.heartbeat_interval = self.heartbeat;
        }
        if self.verify {
            config = config.trust(self.job_key);
        }
        if let Some(dir) = &self.sandbox {
            config = sandbox::confine(config, dir.path())
                .map_err(|e| EmbeddedError::Sandbox(e.to_string()))?;
        }
        let agent = Agent::new(config, self.bus.clone())?;
        let name = agent.hostname().to_string();
        if self.agents().contains_key(&name) {
            return Err(EmbeddedError::DuplicateAgent(name));
        }
        let handle = agent.start().await?;
        self.agents().insert(name.clone(), handle);
        Ok(name)
    }

    /// Stops an agent cleanly (running jobs finish, it deregisters).
    pub async fn stop_agent(&self, hostname: &str) -> bool {
        let handle = self.agents().remove(hostname);
        match handle {
            Some(h) => {
                h.shutdown().await;
                true
            }
            None => false,
        }
    }

    /// Stops an agent as a crash would: running jobs are abandoned and its
    /// registration expires after the TTL.
    pub fn kill_agent(&self, hostname: &str) -> bool {
        match self.agents().remove(hostname) {
            Some(h) => {
                h.abort();
                true
            }
            None => false,
        }
    }

    /// Stops the agents and the controller.
    pub async fn shutdown(self) {
        let agents: Vec<AgentHandle> = std::mem::take(&mut *self.agents()).into_values().collect();
        for a in agents {
            a.shutdown().await;
        }
        self.shutdown.cancel();
        let _ = self.server_task.await;
    }
}
