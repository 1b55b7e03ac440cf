//! Our OpenAPI document, generated from the handlers' annotations and the
//! wire types, served at `/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{agent, audit, file, health, job, node};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        components.add_security_scheme("BearerAuth", SecurityScheme::Http(http));
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "OSAPI control plane (Rust)",
        description = "REST API of the OSAPI controller. Every path is also served under /api/.",
        version = env!("CARGO_PKG_VERSION")
    ),
    paths(
        health::health, health::ready, health::status,
        agent::list, agent::get, agent::drain, agent::undrain,
        job::create, job::list, job::stats, job::get, job::delete, job::retry,
        file::upload, file::list, file::get, file::delete,
        node::status, node::hostname, node::disk, node::memory, node::load, node::os, node::uptime,
        node::ping, node::dns_get, node::dns_update, node::command_exec, node::command_shell,
        node::file_deploy, node::file_status,
        audit::list, audit::export, audit::get,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "Health", description = "Liveness, readiness and status"),
        (name = "Agent", description = "Agents of the fleet"),
        (name = "Job", description = "Asynchronous jobs"),
        (name = "File", description = "The file store"),
        (name = "Node", description = "Synchronous operations on hosts"),
        (name = "Audit", description = "Audit log"),
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
