//! `GET /agent`, `GET /agent/{hostname}`, drain and undrain.

use axum::Json;
use axum::extract::{Path, State};
use osapi_api::agent::{
    AgentActionResponse, AgentInfo, AgentState, ListAgentsResponse, TimelineEvent,
};
use time::OffsetDateTime;

use crate::auth::{Authorized, perm};
use crate::directory::AgentView;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Every live agent.
#[utoipa::path(get, path = "/agent", tag = "Agent",
    security(("BearerAuth" = ["agent:read"])),
    responses((status = 200, body = ListAgentsResponse),
        (status = 401, body = osapi_api::error::ErrorResponse),
        (status = 403, body = osapi_api::error::ErrorResponse)))]
pub async fn list(
    _auth: Authorized<perm::AgentRead>,
    State(state): State<AppState>,
) -> ApiResult<Json<ListAgentsResponse>> {
    let fleet = state.directory.fresh().await?;
    let agents: Vec<AgentInfo> = fleet.agents.iter().map(AgentView::to_info).collect();
    Ok(Json(ListAgentsResponse {
        total: agents.len(),
        agents,
    }))
}

async fn find(state: &AppState, hostname: &str) -> ApiResult<AgentView> {
    state
        .directory
        .agent(hostname)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent not found: {hostname}")))
}

/// One agent with its timeline.
#[utoipa::path(get, path = "/agent/{hostname}", tag = "Agent",
    params(("hostname" = String, Path, description = "Agent hostname")),
    security(("BearerAuth" = ["agent:read"])),
    responses((status = 200, body = AgentInfo),
        (status = 404, body = osapi_api::error::ErrorResponse)))]
pub async fn get(
    _auth: Authorized<perm::AgentRead>,
    State(state): State<AppState>,
    Path(hostname): Path<String>,
) -> ApiResult<Json<AgentInfo>> {
    let agent = find(&state, &hostname).await?;
    let mut info = agent.to_info();
    info.timeline = state.bus.state.timeline(agent.hostname()).await?;
    Ok(Json(info))
}

async fn timeline(state: &AppState, hostname: &str, event: &str, message: &str) -> ApiResult<()> {
    state
        .bus
        .state
        .append_timeline(TimelineEvent {
            timestamp: OffsetDateTime::now_utc(),
            event: event.into(),
            hostname: hostname.into(),
            message: message.into(),
            error: None,
        })
        .await?;
    Ok(())
}

/// Stop sending new jobs to an agent; running ones finish.
#[utoipa::path(post, path = "/agent/{hostname}/drain", tag = "Agent",
    params(("hostname" = String, Path, description = "Agent hostname")),
    security(("BearerAuth" = ["agent:write"])),
    responses((status = 200, body = AgentActionResponse),
        (status = 404, body = osapi_api::error::ErrorResponse),
        (status = 409, body = osapi_api::error::ErrorResponse)))]
pub async fn drain(
    _auth: Authorized<perm::AgentWrite>,
    State(state): State<AppState>,
    Path(hostname): Path<String>,
) -> ApiResult<Json<AgentActionResponse>> {
    let agent = find(&state, &hostname).await?;
    let current = agent.state();
    if agent.drained || current != AgentState::Ready {
        return Err(ApiError::conflict(format!(
            "agent {hostname} is already in {} state",
            current.as_str()
        )));
    }
    state.bus.state.set_drain(agent.hostname()).await?;
    state.directory.invalidate();
    timeline(&state, agent.hostname(), "drain", "Drain initiated via API").await?;
    Ok(Json(AgentActionResponse {
        message: format!("drain initiated for agent {hostname}"),
    }))
}

/// Resume sending jobs to a drained agent.
#[utoipa::path(post, path = "/agent/{hostname}/undrain", tag = "Agent",
    params(("hostname" = String, Path, description = "Agent hostname")),
    security(("BearerAuth" = ["agent:write"])),
    responses((status = 200, body = AgentActionResponse),
        (status = 404, body = osapi_api::error::ErrorResponse),
        (status = 409, body = osapi_api::error::ErrorResponse)))]
pub async fn undrain(
    _auth: Authorized<perm::AgentWrite>,
    State(state): State<AppState>,
    Path(hostname): Path<String>,
) -> ApiResult<Json<AgentActionResponse>> {
    let agent = find(&state, &hostname).await?;
    if !agent.drained {
        return Err(ApiError::conflict(format!(
            "agent {hostname} is not in draining or cordoned state (current: {})",
            agent.state().as_str()
        )));
    }
    state.bus.state.clear_drain(agent.hostname()).await?;
    state.directory.invalidate();
    timeline(
        &state,
        agent.hostname(),
        "undrain",
        "Undrain initiated via API",
    )
    .await?;
    Ok(Json(AgentActionResponse {
        message: format!("undrain initiated for agent {hostname}"),
    }))
}
