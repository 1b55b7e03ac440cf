//! Our OpenAPI document, generated from the handlers' annotations and the
//! wire types, served at `/openapi.json`.

use axum::Json;
use osapi_api::ops::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{agent, audit, file, health, job, node};

struct BearerAuth;

/// Adds the synchronous routes, generated from the operation catalogue
/// with their permissions ([`node::document`]), and lists the permission
/// table in the description of the job routes.
struct OperationPermissions;

impl Modify for OperationPermissions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        node::document(openapi);
        let table: String = Operation::ALL
            .iter()
            .map(|op| format!("\n| `{op}` | `{}` |", op.permission()))
            .collect();
        let note = format!(
            "\n\nBesides `job:write`, the caller needs the permission of the operation \
             the job runs, the same one its synchronous `/node/…` route needs:\n\n\
             | operation | permission |\n|---|---|{table}"
        );
        for path in ["/job", "/job/{id}/retry"] {
            if let Some(post) = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
            {
                let description = post.description.get_or_insert_with(String::new);
                description.push_str(&note);
            }
        }
    }
}

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
        audit::list, audit::export, audit::get,
    ),
    modifiers(&BearerAuth, &OperationPermissions),
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
