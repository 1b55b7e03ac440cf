//! State shared by every request handler.

use std::sync::Arc;
use std::time::Instant;

use osapi_bus::Bus;

use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::directory::AgentDirectory;
use crate::jobs::JobService;

/// Handler state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The bus.
    pub bus: Bus,
    /// Settings.
    pub config: Arc<ServerConfig>,
    /// Token checks.
    pub auth: Arc<Authenticator>,
    /// Fleet view.
    pub directory: Arc<AgentDirectory>,
    /// Jobs.
    pub jobs: Arc<JobService>,
    /// When the controller started.
    pub started: Instant,
}
