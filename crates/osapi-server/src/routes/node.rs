//! The synchronous `/node/{hostname}/…` endpoints: one generic handler
//! serves the route every operation declares ([`NodeRoute`], in
//! `osapi_api::routes`): it creates the job, waits for it, and answers with
//! what the route makes of the hosts' answers. Unicast targets (`_any`, a
//! hostname) turn an agent failure into a 500; broadcast targets report
//! failed hosts in the response. The router and the routes' OpenAPI paths
//! are generated from the catalogue here.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use axum::{Json, Router};
use osapi_api::format::go_duration;
use osapi_api::job::JobStatus;
use osapi_api::ops::Operation;
use osapi_api::routes::{HostAnswer, NodeRoute, PathArgs, RouteMethod};
use osapi_api::target::Target;
use serde_json::{Value, json};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{
    ContentBuilder, Object, OpenApi, Ref, RefOr, Required, ResponseBuilder, Type,
};
use uuid::Uuid;

use crate::auth::{AuditNotes, Authorized, OperationPermission};
use crate::error::{ApiError, ApiResult};
use crate::extract;
use crate::state::AppState;

/// Applies `$apply!(Variant)` to every operation of the catalogue.
macro_rules! every_route {
    ($($op:ident),*) => {
        /// The synchronous route of every operation.
        pub fn router() -> Router<AppState> {
            Router::new()$(.route(
                <osapi_api::ops::op::$op as NodeRoute>::PATH,
                on(filter(<osapi_api::ops::op::$op as NodeRoute>::METHOD),
                    handle::<osapi_api::ops::op::$op>),
            ))*
        }

        /// Adds every synchronous route to the OpenAPI document.
        pub fn document(openapi: &mut OpenApi) {
            $(describe::<osapi_api::ops::op::$op>(openapi);)*
        }
    };
}

osapi_api::with_operations!(every_route);

fn filter(method: RouteMethod) -> MethodFilter {
    match method {
        RouteMethod::Get => MethodFilter::GET,
        RouteMethod::Post => MethodFilter::POST,
        RouteMethod::Put => MethodFilter::PUT,
    }
}

/// Serves `O`'s route.
async fn handle<O: NodeRoute>(
    auth: Authorized<OperationPermission<O>>,
    State(state): State<AppState>,
    Path(path): Path<PathArgs>,
    request: Request,
) -> ApiResult<Response> {
    let body: O::Body = match O::METHOD {
        RouteMethod::Get => serde_json::from_value(json!({}))
            .map_err(|e| ApiError::internal(format!("route without a body: {e}")))?,
        RouteMethod::Post | RouteMethod::Put => {
            extract::Json::<O::Body>::from_request(request, &state)
                .await?
                .0
        }
    };
    let params = O::params(&path, body).map_err(ApiError::bad_request)?;
    let data = serde_json::to_value(&params)
        .map_err(|e| ApiError::internal(format!("cannot encode the job's data: {e}")))?;
    let target = path.get("hostname").map(String::as_str).unwrap_or_default();
    let wait = state.config.sync_timeout.max(O::min_wait(&params));
    let (id, answers) = run(&state, &auth.audit, target, O::OPERATION, data, wait).await?;
    let response = O::respond(id, &answers).map_err(ApiError::internal)?;
    let status = if O::ACCEPTED {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(response)).into_response())
}

/// Creates the job (noting it in the audit entry), waits, and collects the answers.
async fn run(
    state: &AppState,
    audit: &AuditNotes,
    target: &str,
    op: Operation,
    data: Value,
    wait: Duration,
) -> ApiResult<(Uuid, Vec<HostAnswer>)> {
    let broadcast = Target::parse(target).is_ok_and(|t| t.is_broadcast());
    let operation = json!({"type": op.as_str(), "data": data});
    audit.note(|a| {
        a.note_operation(&operation);
        a.target = Some(target.to_string());
    });
    let created = state.jobs.create(operation, target, None, None).await?;
    let id = created.record.id;
    audit.note(|a| a.job_id = Some(id));
    let detail = state.jobs.wait(id, wait).await?;
    let terminal = detail.status.is_some_and(JobStatus::is_terminal);
    let answers: Vec<HostAnswer> = if broadcast {
        detail
            .responses
            .unwrap_or_default()
            .into_values()
            .map(|r| HostAnswer {
                hostname: r.hostname,
                changed: r.changed.unwrap_or(false),
                data: r.data,
                error: r.error,
            })
            .collect()
    } else if terminal {
        vec![HostAnswer {
            hostname: detail.hostname.unwrap_or_default(),
            data: detail.result,
            changed: detail.changed.unwrap_or(false),
            error: (detail.status == Some(JobStatus::Failed))
                .then(|| detail.error.unwrap_or_else(|| "job failed".into())),
        }]
    } else {
        Vec::new()
    };
    if answers.is_empty() && !terminal && state.jobs.is_stopping() {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the controller is shutting down; job {id} goes on: read it with GET /job/{id}"
            ),
        ));
    }
    if answers.is_empty() && !terminal {
        return Err(ApiError::internal(format!(
            "timeout waiting for job response: no agent answered within {} (job {id})",
            go_duration(wait)
        )));
    }
    if !broadcast && let Some(err) = answers.first().and_then(|a| a.error.clone()) {
        return Err(ApiError::internal(format!("job failed: {err}")));
    }
    Ok((id, answers))
}

/// A reference to `T`'s schema, registering it (and what it refers to) in
/// the document's components.
fn schema_ref<T: utoipa::ToSchema>(openapi: &mut OpenApi) -> RefOr<utoipa::openapi::Schema> {
    let components = openapi.components.get_or_insert_with(Default::default);
    let mut referenced = Vec::new();
    T::schemas(&mut referenced);
    for (name, schema) in referenced {
        components.schemas.entry(name).or_insert(schema);
    }
    let name = T::name().to_string();
    components
        .schemas
        .entry(name.clone())
        .or_insert(T::schema());
    RefOr::Ref(Ref::from_schema_name(name))
}

/// The path parameters of a route, in order (`{name}` segments).
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// Adds `O`'s route to the document: parameters, body, responses and the
/// permission from the catalogue.
fn describe<O: NodeRoute>(openapi: &mut OpenApi) {
    let docs: BTreeMap<&str, &str> = O::PATH_DOCS.iter().copied().collect();
    let mut operation = OperationBuilder::new()
        .tag("Node")
        .summary(Some(O::SUMMARY))
        .operation_id(Some(O::OPERATION.as_str()))
        .security(SecurityRequirement::new(
            "BearerAuth",
            [O::OPERATION.permission().as_str()],
        ));
    for name in path_parameters(O::PATH) {
        let description = match name {
            "hostname" => "_any, _all, a hostname or key:value",
            other => docs.get(other).copied().unwrap_or(""),
        };
        operation = operation.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(Object::with_type(Type::String))),
        );
    }
    if O::METHOD != RouteMethod::Get {
        let body = schema_ref::<O::Body>(openapi);
        operation = operation.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(body)).build(),
                )
                .required(Some(Required::True))
                .build(),
        ));
    }
    let response = schema_ref::<O::Response>(openapi);
    let error = schema_ref::<osapi_api::error::ErrorResponse>(openapi);
    let status = if O::ACCEPTED { "202" } else { "200" };
    operation = operation
        .response(
            status,
            ResponseBuilder::new()
                .description("One answer per host")
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(response)).build(),
                ),
        )
        .response(
            "400",
            ResponseBuilder::new()
                .description("Invalid target or request")
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(error.clone())).build(),
                ),
        )
        .response(
            "500",
            ResponseBuilder::new()
                .description("The job failed or no agent answered in time")
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(error)).build(),
                ),
        );
    let method = match O::METHOD {
        RouteMethod::Get => HttpMethod::Get,
        RouteMethod::Post => HttpMethod::Post,
        RouteMethod::Put => HttpMethod::Put,
    };
    openapi
        .paths
        .add_path_operation(O::PATH, vec![method], operation.build());
}
