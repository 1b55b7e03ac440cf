//! The controller's error type and its `{"error": "…"}` responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use osapi_api::error::ErrorResponse;
use osapi_bus::BusError;

use crate::metrics::AuthFailure;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Message for the `error` field.
    pub message: String,
    /// Why authentication or authorisation refused the request (401, 403).
    pub auth_failure: Option<AuthFailure>,
}

impl ApiError {
    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            auth_failure: None,
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 401: a token that does not verify.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::refused(StatusCode::UNAUTHORIZED, AuthFailure::InvalidToken, message)
    }
    /// 401 or 403 for `why`.
    pub fn refused(status: StatusCode, why: AuthFailure, message: impl Into<String>) -> Self {
        ApiError {
            auth_failure: Some(why),
            ..Self::new(status, message)
        }
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::refused(StatusCode::FORBIDDEN, AuthFailure::Forbidden, message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl From<BusError> for ApiError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::NotFound(what) => ApiError::not_found(format!("not found: {what}")),
            BusError::Unavailable(why) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("bus unavailable: {why}"),
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(ErrorResponse::new(self.message))).into_response();
        if let Some(why) = self.auth_failure {
            // Read by the metrics layer.
            response.extensions_mut().insert(why);
        }
        response
    }
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
