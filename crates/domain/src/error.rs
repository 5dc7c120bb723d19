//! Errors the domain reports. Each variant carries a sentence a person can act on; the web edge
//! maps variants to stable API error codes and page messages.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("storage failure: {0}")]
    Backend(String),
}

#[derive(Debug, Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Rejected(String),
    /// The application requires assignment and the user is not assigned to it; the message
    /// says so in words for the user.
    #[error("{0}")]
    NotAssigned(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A stable, machine-readable code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Invalid { .. } => "invalid_input",
            DomainError::NotFound(_) | DomainError::Store(StoreError::NotFound) => "not_found",
            DomainError::Conflict(_) | DomainError::Store(StoreError::Conflict(_)) => "conflict",
            DomainError::Rejected(_) => "rejected",
            DomainError::NotAssigned(_) => "not_assigned",
            DomainError::Store(StoreError::Backend(_)) | DomainError::Internal(_) => "internal",
        }
    }
}
