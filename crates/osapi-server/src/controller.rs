//! The controller: builds the shared state and serves the router.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use osapi_bus::Bus;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::directory::AgentDirectory;
use crate::jobs::{JobIndex, JobService, Waiters};
use crate::metrics::ControllerMetrics;
use crate::routes;
use crate::state::{AppState, Shared};

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Invalid configuration.
    #[error("invalid controller configuration: {0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("controller I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A controller over one bus.
pub struct Controller {
    state: AppState,
}

impl Controller {
    /// Checks the configuration and prepares the state. Must be called
    /// inside a tokio runtime (it starts the job-change feed).
    pub fn new(config: ServerConfig, bus: Bus) -> Result<Controller, ServerError> {
        config.validate().map_err(ServerError::Config)?;
        crate::listener::max_connections(&config.limits).map_err(ServerError::Config)?;
        let auth = Authenticator::new(&config.signing_key, config.roles.clone())
            .map_err(ServerError::Config)?
            .allow_tokens_without_expiry(config.allow_tokens_without_expiry);
        let metrics = Arc::new(ControllerMetrics::new(&config.version));
        let directory = Arc::new(AgentDirectory::new(
            bus.clone(),
            config.directory_cache,
            config.min_agent_version.clone(),
        ));
        let waiters = Waiters::start(&bus, directory.clone(), metrics.clone());
        let index = JobIndex::start(&bus, metrics.clone());
        let jobs = JobService::new(
            bus.clone(),
            directory.clone(),
            waiters,
            index,
            config.job_timeout,
            config.job_signer.clone(),
            config.trace_parent,
        );
        let state = AppState::new(Shared {
            bus,
            config,
            auth,
            directory,
            jobs,
            started: Instant::now(),
            metrics,
        });
        // Jobs end at their deadline even when nobody reads them.
        let weak = state.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(shared) = weak.upgrade() else { return };
                shared.jobs.settle_overdue().await;
            }
        });
        Ok(Controller { state })
    }

    /// The router, for serving or for in-process requests.
    pub fn router(&self) -> Router {
        routes::router(self.state.clone())
    }

    /// Binds the configured address and port.
    pub async fn bind(&self) -> Result<TcpListener, ServerError> {
        let addr = SocketAddr::new(self.state.config.bind, self.state.config.port);
        TcpListener::bind(addr)
            .await
            .map_err(|e| ServerError::Config(format!("cannot listen on {addr}: {e}")))
    }

    /// Serves on `listener` with the configured connection limits until
    /// `shutdown` resolves. Then it takes no new connections, answers
    /// long-polls at once with the job as it stands (a synchronous node
    /// request with 503 naming its job), and lets other requests finish for
    /// up to `api.server.shutdown_grace` (5 s) before closing what is left.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let state = self.state.clone();
        let stopping = async move {
            shutdown.await;
            tracing::info!("controller stopping: answering long-polls, finishing requests");
            state.jobs.stop();
        };
        crate::listener::serve(listener, self.router(), self.state.config.limits, stopping).await?;
        Ok(())
    }
}
