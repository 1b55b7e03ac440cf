//! The REST error envelope.

use serde::{Deserialize, Serialize};

/// Every error body: `{"error": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    /// What went wrong, for a person to act on.
    #[serde(default)]
    pub error: String,
    /// Extra detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Machine-readable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// Framework errors of upstream servers use `message` instead of `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ErrorResponse {
    /// An envelope with just the error text.
    pub fn new(error: impl Into<String>) -> ErrorResponse {
        ErrorResponse {
            error: error.into(),
            ..Default::default()
        }
    }

    /// The best message available (`error`, else `message`).
    pub fn text(&self) -> &str {
        if self.error.is_empty() {
            self.message.as_deref().unwrap_or("")
        } else {
            &self.error
        }
    }
}
