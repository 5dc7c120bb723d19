//! The audit trail every administrative change writes to.

use std::sync::Arc;

use serde_json::Value;

use crate::clock::Clock;
use crate::error::DomainError;
use crate::log::{Actor, AuditCategory, AuditEvent};
use crate::store::GovernanceStore;

pub(crate) struct AuditTrail {
    pub(crate) store: Arc<dyn GovernanceStore>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl AuditTrail {
    /// Records an administrative change. Failures to audit fail the request: a change that
    /// cannot be audited should be retried, not silently lost from the record.
    pub(crate) async fn record(
        &self,
        actor: &Actor,
        category: AuditCategory,
        activity: &str,
        target: impl Into<String>,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Result<(), DomainError> {
        let event = AuditEvent::new(
            self.clock.now(),
            actor,
            category,
            activity,
            target,
            before,
            after,
        );
        Ok(self.store.append_audit(&event).await?)
    }
}
