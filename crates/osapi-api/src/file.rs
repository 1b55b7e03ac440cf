//! REST bodies of the file (object store) API.

use serde::{Deserialize, Serialize};

use crate::serde_util::null_as_default;

/// Metadata of a stored file (`GET /file/{name}`, items of `GET /file`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileInfo {
    /// Object name.
    pub name: String,
    /// SHA-256, lowercase hex.
    #[serde(default)]
    pub sha256: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// `raw` or `template` (empty when unknown).
    #[serde(default)]
    pub content_type: String,
}

/// Body of the 201 reply to `POST /file`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileUploadResponse {
    /// Object name.
    pub name: String,
    /// SHA-256, lowercase hex.
    #[serde(default)]
    pub sha256: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// False when an object with the same content already existed.
    #[serde(default)]
    pub changed: bool,
    /// `raw` or `template`.
    #[serde(default)]
    pub content_type: String,
}

/// Body of `GET /file`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileListResponse {
    /// Stored files, by name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub files: Vec<FileInfo>,
    /// Number of files.
    #[serde(default)]
    pub total: usize,
}

/// Body of `DELETE /file/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileDeleteResponse {
    /// Object name.
    pub name: String,
    /// Always true.
    pub deleted: bool,
}
