//! Request decoding with errors in our `{"error": …}` envelope and messages
//! that say what to fix: JSON bodies, optional bodies, path ids, query values.

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// A JSON body; bad JSON is a 400, a non-JSON content type a 415.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request body must be JSON (Content-Type: application/json)",
        ),
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("malformed JSON body: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => {
            ApiError::bad_request(format!("invalid request body: {}", e.body_text()))
        }
        other => ApiError::new(other.status(), other.body_text()),
    }
}

/// Parses an optional JSON body: empty means `T::default()`.
pub fn optional_json<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request body must be JSON (Content-Type: application/json)",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

/// Parses a UUID path segment.
pub fn uuid(what: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request(format!("invalid {what} {raw:?}: must be a UUID")))
}

/// Query parameters as text.
pub type QueryMap = HashMap<String, String>;

/// Parses an optional query value.
pub fn query_value<T: FromStr>(query: &QueryMap, name: &str) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    query
        .get(name)
        .map(|raw| {
            raw.parse::<T>().map_err(|e| {
                ApiError::bad_request(format!(
                    "invalid value {raw:?} for query parameter {name}: {e}"
                ))
            })
        })
        .transpose()
}

/// Parses a boolean the way Go's `strconv.ParseBool` does.
pub fn go_bool(query: &QueryMap, name: &str) -> Result<bool, ApiError> {
    match query.get(name).map(String::as_str) {
        None => Ok(false),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False" | "") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid value {other:?} for query parameter {name}: expected true or false"
        ))),
    }
}
