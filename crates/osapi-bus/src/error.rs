//! The bus error type.

/// Why a bus operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The backend cannot be reached right now.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The backend refused or failed the operation.
    #[error("bus error: {0}")]
    Backend(String),
    /// A store reached its byte limit; nothing was written.
    #[error("store full: {0}")]
    Full(String),
    /// Stored data could not be decoded.
    #[error("corrupt data in bus: {0}")]
    Corrupt(String),
}

/// Result of bus operations.
pub type BusResult<T> = Result<T, BusError>;
