//! The file API: upload (multipart), list, info, delete.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use osapi_api::file::{FileDeleteResponse, FileInfo, FileListResponse, FileUploadResponse};
use osapi_api::records::ObjectInfo;
use sha2::{Digest, Sha256};

use crate::auth::{Authorized, perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{QueryMap, go_bool};
use crate::state::AppState;

fn info(o: ObjectInfo) -> FileInfo {
    FileInfo {
        name: o.name,
        sha256: o.sha256,
        size: o.size,
        content_type: o.content_type,
    }
}

fn check_name(name: &str) -> ApiResult<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::bad_request(
            "name is required and must be 1-255 characters",
        ));
    }
    Ok(())
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "file is larger than the upload limit")
    } else {
        ApiError::new(
            status,
            format!("failed to read multipart: {}", e.body_text()),
        )
    }
}

/// The content of a multipart field, refused with 413 as soon as it is
/// longer than `limit` bytes (the body limit leaves room for the multipart
/// framing, so the file itself is measured here).
async fn read_limited(
    mut field: axum::extract::multipart::Field<'_>,
    limit: usize,
) -> ApiResult<Bytes> {
    let mut data = bytes::BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if data.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("file is larger than the upload limit of {limit} bytes"),
            ));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data.freeze())
}

/// Upload a file (multipart: `name`, `content_type`, `file`).
#[utoipa::path(post, path = "/file", tag = "File",
    params(("force" = Option<bool>, Query, description = "Replace an object with different content")),
    request_body(content_type = "multipart/form-data", description = "Parts: name, content_type (raw|template), file"),
    security(("BearerAuth" = ["file:write"])),
    responses((status = 201, body = FileUploadResponse),
        (status = 400, body = osapi_api::error::ErrorResponse),
        (status = 409, body = osapi_api::error::ErrorResponse),
        (status = 413, body = osapi_api::error::ErrorResponse),
        (status = 507, description = "The file store is full (its byte limit)", body = osapi_api::error::ErrorResponse)))]
pub async fn upload(
    auth: Authorized<perm::FileWrite>,
    State(state): State<AppState>,
    Query(query): Query<QueryMap>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<FileUploadResponse>)> {
    let force = go_bool(&query, "force")?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!(
            "request must be multipart/form-data with parts name, content_type and file: {}",
            e.body_text()
        ))
    })?;
    let (mut name, mut content_type, mut data): (Option<String>, Option<String>, Option<Bytes>) =
        (None, None, None);
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("name") => name = Some(field.text().await.map_err(multipart_error)?),
            Some("content_type") => {
                content_type = Some(field.text().await.map_err(multipart_error)?)
            }
            Some("file") => data = Some(read_limited(field, state.config.max_upload_bytes).await?),
            _ => {}
        }
    }
    let name = name.unwrap_or_default();
    auth.note(|a| a.file = Some(name.clone()));
    check_name(&name)?;
    let data = data
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ApiError::bad_request("file is required (and must not be empty)"))?;
    let content_type = content_type
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "raw".into());
    if content_type != "raw" && content_type != "template" {
        return Err(ApiError::bad_request(
            "content_type must be raw or template",
        ));
    }
    if !force && let Some(existing) = state.bus.objects.info(&name).await? {
        // Hashed here only: the store hashes what it keeps.
        let sha256 = hex::encode(Sha256::digest(&data));
        if existing.sha256 == sha256 {
            return Ok((
                StatusCode::CREATED,
                Json(FileUploadResponse {
                    name,
                    sha256,
                    size: existing.size,
                    changed: false,
                    content_type,
                }),
            ));
        }
        return Err(ApiError::conflict(format!(
            "file {name} already exists with different content; use force to overwrite"
        )));
    }
    let stored = state
        .bus
        .objects
        .put(&name, &content_type, data)
        .await
        .map_err(|e| match e {
            osapi_bus::BusError::Full(why) => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("failed to store file {name}: {why}"),
            ),
            e => ApiError::internal(format!("failed to store file {name}: {e}")),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(FileUploadResponse {
            name: stored.name,
            sha256: stored.sha256,
            size: stored.size,
            changed: true,
            content_type,
        }),
    ))
}

/// Stored files.
#[utoipa::path(get, path = "/file", tag = "File",
    security(("BearerAuth" = ["file:read"])),
    responses((status = 200, body = FileListResponse)))]
pub async fn list(
    _auth: Authorized<perm::FileRead>,
    State(state): State<AppState>,
) -> ApiResult<Json<FileListResponse>> {
    let files: Vec<FileInfo> = state
        .bus
        .objects
        .list()
        .await?
        .into_iter()
        .map(info)
        .collect();
    Ok(Json(FileListResponse {
        total: files.len(),
        files,
    }))
}

/// One file's metadata.
#[utoipa::path(get, path = "/file/{name}", tag = "File",
    params(("name" = String, Path, description = "Object name")),
    security(("BearerAuth" = ["file:read"])),
    responses((status = 200, body = FileInfo),
        (status = 404, body = osapi_api::error::ErrorResponse)))]
pub async fn get(
    _auth: Authorized<perm::FileRead>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<FileInfo>> {
    check_name(&name)?;
    let o = state
        .bus
        .objects
        .info(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("file not found: {name}")))?;
    Ok(Json(info(o)))
}

/// Delete a file (deployed copies stay).
#[utoipa::path(delete, path = "/file/{name}", tag = "File",
    params(("name" = String, Path, description = "Object name")),
    security(("BearerAuth" = ["file:write"])),
    responses((status = 200, body = FileDeleteResponse),
        (status = 404, body = osapi_api::error::ErrorResponse)))]
pub async fn delete(
    auth: Authorized<perm::FileWrite>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<FileDeleteResponse>> {
    auth.note(|a| a.file = Some(name.clone()));
    check_name(&name)?;
    if !state.bus.objects.delete(&name).await? {
        return Err(ApiError::not_found(format!("file not found: {name}")));
    }
    Ok(Json(FileDeleteResponse {
        name,
        deleted: true,
    }))
}
