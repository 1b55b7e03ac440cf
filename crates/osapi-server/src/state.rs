//! State shared by every request handler.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use osapi_bus::Bus;

use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::directory::AgentDirectory;
use crate::jobs::JobService;
use crate::metrics::ControllerMetrics;

/// Handler state: one pointer, cheap to clone per request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }

    /// A handle that does not keep the state alive (for background tasks).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.0)
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What handlers share.
pub struct Shared {
    /// The bus.
    pub bus: Bus,
    /// Settings.
    pub config: ServerConfig,
    /// Token checks.
    pub auth: Authenticator,
    /// Fleet view.
    pub directory: Arc<AgentDirectory>,
    /// Jobs.
    pub jobs: JobService,
    /// When the controller started.
    pub started: Instant,
    /// Prometheus metrics.
    pub metrics: Arc<ControllerMetrics>,
}
