//! PostgreSQL: the DeviceStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::authenticator::Activation;
use latchkey_domain::authenticator::Approval;
use latchkey_domain::authenticator::ApprovalState;
use latchkey_domain::authenticator::Device;
use latchkey_domain::authenticator::PinCheck;
use latchkey_domain::authenticator::PinLock;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::ActivationId;
use latchkey_domain::ids::ApprovalId;
use latchkey_domain::ids::DeviceId;
use latchkey_domain::ids::UserId;
use latchkey_domain::log::SignInRecord;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::store::{DeviceStore, StoreResult};

use super::PostgresStore;

#[async_trait]
impl DeviceStore for PostgresStore {
    #[allow(unused_variables)]
    async fn put_activation(&self, activation: &Activation) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn put_activation_within(
        &self,
        activation: &Activation,
        now: Timestamp,
        max_outstanding: u32,
    ) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn activation(&self, id: &ActivationId) -> StoreResult<Option<Activation>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn activation_by_code(&self, code_hash: &TokenHash) -> StoreResult<Option<Activation>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn redeem_activation(
        &self,
        code_hash: &TokenHash,
        now: Timestamp,
        device: &Device,
        test: &Approval,
        max_devices: u32,
    ) -> StoreResult<Option<Activation>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn device(&self, id: &DeviceId) -> StoreResult<Option<Device>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn devices_of_user(&self, user: &UserId) -> StoreResult<Vec<Device>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn update_device(&self, device: &Device) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn delete_device(&self, id: &DeviceId) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn use_device_nonce(
        &self,
        device: &DeviceId,
        nonce: &str,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn put_approval(&self, approval: &Approval) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn put_approval_if_none_waiting(
        &self,
        approval: &Approval,
        now: Timestamp,
    ) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn approval(&self, id: &ApprovalId) -> StoreResult<Option<Approval>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn pending_approvals(&self, user: &UserId) -> StoreResult<Vec<Approval>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn overdue_approvals(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Approval>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn settle_approval(
        &self,
        id: &ApprovalId,
        state: ApprovalState,
        answered_by: Option<&DeviceId>,
        at: Timestamp,
        record: Option<&SignInRecord>,
    ) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn set_phone_sign_in(
        &self,
        device: &Device,
        verifier_mac: Option<&str>,
    ) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn pin_lock(&self, device: &DeviceId) -> StoreResult<Option<PinLock>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn record_pin_check(
        &self,
        device: &DeviceId,
        right: bool,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<PinCheck> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn allow_phone_sign_in_again(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        todo!()
    }
}
