//! PostgreSQL: the GovernanceStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::anomaly::SignInHistory;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::UserId;
use latchkey_domain::log::AuditEvent;
use latchkey_domain::log::LogQuery;
use latchkey_domain::log::SignInRecord;
use latchkey_domain::policy::AuthenticationMethodsPolicy;
use latchkey_domain::risk::RiskDetection;
use latchkey_domain::risk::UserRisk;
use latchkey_domain::store::{GovernanceStore, StoreResult};

use super::PostgresStore;

#[async_trait]
impl GovernanceStore for PostgresStore {
    #[allow(unused_variables)]
    async fn policy(&self) -> StoreResult<Option<AuthenticationMethodsPolicy>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn save_policy(
        &self,
        policy: &AuthenticationMethodsPolicy,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn sign_in_records(&self, query: &LogQuery) -> StoreResult<Vec<SignInRecord>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn audit_events(&self, query: &LogQuery) -> StoreResult<Vec<AuditEvent>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn purge_logs(&self, before: Timestamp) -> StoreResult<u64> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn record_risk(&self, detection: &RiskDetection) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn user_risk(&self, user: &UserId) -> StoreResult<Option<UserRisk>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn risky_users(&self) -> StoreResult<Vec<UserRisk>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn risk_detections(&self, user: &UserId) -> StoreResult<Vec<RiskDetection>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn dismiss_risk(&self, user: &UserId, at: Timestamp) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn remember_sign_in_country(
        &self,
        user: &UserId,
        country: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn remember_refusal(&self, user: &UserId, at: Timestamp) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn sign_in_history(&self, user: &UserId) -> StoreResult<SignInHistory> {
        todo!()
    }
}
