use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error from the admin API has this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Error {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`invalid_input`, `invalid_json`, `unauthorized`,
    /// `not_found`, `conflict`, `precondition_failed`, …). Match on this, not on the message.
    pub code: String,
    /// A sentence for people; for `invalid_input` it starts with the field's name.
    pub message: String,
}
