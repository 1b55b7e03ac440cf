//! Client errors: one variant per kind of failure, each carrying the server's message
//! and, where one exists, the error that caused it.

use std::sync::Arc;

/// The error beneath a [`ClientError`] (shared, so the error stays `Clone`).
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync>;

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// 400: the request was invalid.
    #[error("api error (status {status}): {message}")]
    Validation {
        /// HTTP status.
        status: u16,
        /// Server message.
        message: String,
    },
    /// 401 or 403: missing, invalid or insufficient token.
    #[error("api error (status {status}): {message}")]
    Auth {
        /// HTTP status.
        status: u16,
        /// Server message.
        message: String,
    },
    /// 404.
    #[error("api error (status 404): {message}")]
    NotFound {
        /// Server message.
        message: String,
    },
    /// 409.
    #[error("api error (status 409): {message}")]
    Conflict {
        /// Server message.
        message: String,
    },
    /// 500 or 503.
    #[error("api error (status {status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Server message.
        message: String,
    },
    /// Any other status, or a success without the expected body.
    #[error("api error (status {status}): {message}")]
    UnexpectedStatus {
        /// HTTP status.
        status: u16,
        /// Server message or what was wrong with the body.
        message: String,
    },
    /// The server could not be reached or the connection failed.
    #[error("transport error: {message}")]
    Transport {
        /// What failed, with the chain of causes.
        message: String,
        /// The HTTP client's error.
        #[source]
        source: Option<ErrorSource>,
    },
    /// A wait ran out.
    #[error("timed out: {message}")]
    Timeout {
        /// What was being waited for.
        message: String,
    },
    /// The caller passed something unusable (bad URL, bad id …).
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What to fix.
        message: String,
    },
    /// A success whose body is not what the API promises.
    #[error("api error (status {status}): {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What was wrong with the body.
        message: String,
        /// The JSON decoder's error.
        #[source]
        source: ErrorSource,
    },
}

impl ClientError {
    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Validation { status, .. }
            | ClientError::Auth { status, .. }
            | ClientError::Server { status, .. }
            | ClientError::UnexpectedStatus { status, .. }
            | ClientError::Decode { status, .. } => Some(*status),
            ClientError::NotFound { .. } => Some(404),
            ClientError::Conflict { .. } => Some(409),
            _ => None,
        }
    }

    /// The server's (or our) message alone.
    pub fn message(&self) -> &str {
        match self {
            ClientError::Validation { message, .. }
            | ClientError::Auth { message, .. }
            | ClientError::NotFound { message }
            | ClientError::Conflict { message }
            | ClientError::Server { message, .. }
            | ClientError::UnexpectedStatus { message, .. }
            | ClientError::Decode { message, .. }
            | ClientError::Transport { message, .. }
            | ClientError::Timeout { message }
            | ClientError::InvalidInput { message } => message,
        }
    }

    /// Maps a status and message to the matching variant.
    pub fn from_status(status: u16, message: String) -> ClientError {
        match status {
            400 | 413 | 415 | 422 => ClientError::Validation { status, message },
            401 | 403 => ClientError::Auth { status, message },
            404 => ClientError::NotFound { message },
            409 => ClientError::Conflict { message },
            500..=599 => ClientError::Server { status, message },
            _ => ClientError::UnexpectedStatus { status, message },
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        // Include the whole source chain: "error sending request" alone helps nobody.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        if e.is_timeout() {
            ClientError::Timeout { message }
        } else {
            ClientError::Transport {
                message,
                source: Some(Arc::new(e)),
            }
        }
    }
}
