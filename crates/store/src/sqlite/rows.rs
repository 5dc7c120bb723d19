//! Decoding rows into domain values: one function per aggregate, shared by every port that
//! reads that aggregate. A value that no longer decodes is reported as corrupt, never guessed.

use latchkey_domain::admin_token::AdminToken;
use latchkey_domain::application::{Application, ClientKind, GroupsClaim, SigningAlg};
use latchkey_domain::authenticator::{Activation, Approval, Device};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::TemporaryAccessPass;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{
    ActivationId, AdminTokenId, ApprovalId, ClientId, DeviceId, GrantId, GroupId, KeyId, SessionId,
    UserId,
};
use latchkey_domain::keys::SigningKey;
use latchkey_domain::oidc::{AuthorizationCode, Grant, RefreshToken};
use latchkey_domain::risk::{RiskState, UserRisk};
use latchkey_domain::secret::TokenHash;
use latchkey_domain::session::{AuthMethod, Session};
use latchkey_domain::store::StoreResult;
use latchkey_domain::strength::AuthStrength;
use latchkey_domain::user::{Group, Upn, User};
use latchkey_protocol::PublicKey;
use rusqlite::Row;
use serde_json::Value;

use super::corrupt;
pub(super) use super::db::get;

pub(super) fn timestamp(row: &Row<'_>, column: &str) -> StoreResult<Timestamp> {
    get::<i64>(row, column).map(Timestamp)
}

pub(super) fn optional_timestamp(row: &Row<'_>, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, column)?.map(Timestamp))
}

/// Enums are stored as their serde names, so the text in the database matches the JSON the
/// domain would produce and survives variant reordering.
pub(super) fn method_text(method: AuthMethod) -> StoreResult<String> {
    match serde_json::to_value(method) {
        Ok(Value::String(text)) => Ok(text),
        _ => Err(StoreError::Backend(
            "cannot encode the authentication method".into(),
        )),
    }
}

pub(super) fn method_from(row: &Row<'_>) -> StoreResult<AuthMethod> {
    serde_json::from_value(Value::String(get(row, "method")?))
        .map_err(|_| corrupt("authentication method"))
}

/// Stored UPNs were validated on the way in; decoding them without re-validating keeps old rows
/// readable even if the domain's UPN rules tighten later.
pub(super) fn upn_from(row: &Row<'_>) -> StoreResult<Upn> {
    serde_json::from_value(Value::String(get(row, "upn")?))
        .map_err(|_| corrupt("user principal name"))
}

pub(super) fn string_list(row: &Row<'_>, column: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(&get::<String>(row, column)?).map_err(|_| corrupt(column))
}

pub(super) fn user_from(row: &Row<'_>) -> StoreResult<User> {
    Ok(User {
        id: UserId::from_string(get::<String>(row, "id")?),
        upn: upn_from(row)?,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        enabled: get(row, "enabled")?,
        created_at: timestamp(row, "created_at")?,
    })
}

pub(super) fn group_from(row: &Row<'_>) -> StoreResult<Group> {
    Ok(Group {
        id: GroupId::from_string(get::<String>(row, "id")?),
        display_name: get(row, "display_name")?,
        description: get(row, "description")?,
        created_at: timestamp(row, "created_at")?,
    })
}

pub(super) fn application_from(row: &Row<'_>) -> StoreResult<Application> {
    let kind: ClientKind =
        serde_json::from_str(&get::<String>(row, "kind")?).map_err(|_| corrupt("client kind"))?;
    let alg = SigningAlg::parse(&get::<String>(row, "id_token_alg")?)
        .map_err(|_| corrupt("ID token algorithm"))?;
    Ok(Application {
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        display_name: get(row, "display_name")?,
        redirect_uris: string_list(row, "redirect_uris")?,
        post_logout_redirect_uris: string_list(row, "post_logout_redirect_uris")?,
        kind,
        id_token_alg: alg,
        home_url: get(row, "home_url")?,
        required_strength: match get::<Option<String>>(row, "required_strength")? {
            None => None,
            Some(id) => Some(AuthStrength::parse(&id).ok_or_else(|| corrupt("required strength"))?),
        },
        created_at: timestamp(row, "created_at")?,
        allowed_origins: string_list(row, "allowed_origins")?,
        groups_claim: GroupsClaim::parse(&get::<String>(row, "groups_claim")?)
            .map_err(|_| corrupt("groups claim"))?,
        assignment_required: get(row, "assignment_required")?,
        backchannel_logout_uri: get(row, "backchannel_logout_uri")?,
    })
}

pub(super) fn pass_from(row: &Row<'_>) -> StoreResult<TemporaryAccessPass> {
    Ok(TemporaryAccessPass {
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        created_at: timestamp(row, "created_at")?,
        starts_at: timestamp(row, "starts_at")?,
        lifetime_minutes: get(row, "lifetime_minutes")?,
        usable_once: get(row, "usable_once")?,
        used_at: optional_timestamp(row, "used_at")?,
    })
}

pub(super) fn session_from(row: &Row<'_>) -> StoreResult<Session> {
    Ok(Session {
        id: SessionId::from_string(get::<String>(row, "id")?),
        token_hash: TokenHash::from_stored(get::<String>(row, "token_hash")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        method: method_from(row)?,
        auth_time: timestamp(row, "auth_time")?,
        created_at: timestamp(row, "created_at")?,
        expires_at: timestamp(row, "expires_at")?,
        revoked: get(row, "revoked")?,
    })
}

pub(super) fn grant_from(row: &Row<'_>) -> StoreResult<Grant> {
    Ok(Grant {
        id: GrantId::from_string(get::<String>(row, "id")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        session_id: SessionId::from_string(get::<String>(row, "session_id")?),
        scopes: string_list(row, "scopes")?,
        nonce: get(row, "nonce")?,
        auth_time: timestamp(row, "auth_time")?,
        method: method_from(row)?,
        created_at: timestamp(row, "created_at")?,
        revoked: get(row, "revoked")?,
    })
}

pub(super) fn code_from(row: &Row<'_>) -> StoreResult<AuthorizationCode> {
    Ok(AuthorizationCode {
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        grant_id: GrantId::from_string(get::<String>(row, "grant_id")?),
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        redirect_uri: get(row, "redirect_uri")?,
        code_challenge: get(row, "code_challenge")?,
        expires_at: timestamp(row, "expires_at")?,
    })
}

pub(super) fn refresh_token_from(row: &Row<'_>) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        grant_id: GrantId::from_string(get::<String>(row, "grant_id")?),
        expires_at: timestamp(row, "expires_at")?,
    })
}

pub(super) fn activation_from(row: &Row<'_>) -> StoreResult<Activation> {
    Ok(Activation {
        id: ActivationId::from_string(get::<String>(row, "id")?),
        code_hash: TokenHash::from_stored(get::<String>(row, "code_hash")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        created_at: timestamp(row, "created_at")?,
        expires_at: timestamp(row, "expires_at")?,
        device_id: get::<Option<String>>(row, "device_id")?.map(DeviceId::from_string),
        test_approval: get::<Option<String>>(row, "test_approval")?.map(ApprovalId::from_string),
    })
}

pub(super) fn public_key(text: String) -> StoreResult<PublicKey> {
    PublicKey::parse(&text).map_err(|_| corrupt("device key"))
}

pub(super) fn device_from(row: &Row<'_>) -> StoreResult<Device> {
    Ok(Device {
        id: DeviceId::from_string(get::<String>(row, "id")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        name: get(row, "name")?,
        key: public_key(get(row, "device_key")?)?,
        passwordless_key: get::<Option<String>>(row, "passwordless_key")?
            .map(public_key)
            .transpose()?,
        created_at: timestamp(row, "created_at")?,
        confirmed_at: optional_timestamp(row, "confirmed_at")?,
        phone_sign_in_at: optional_timestamp(row, "phone_sign_in_at")?,
        app: latchkey_domain::authenticator::app_from_text(&get::<String>(row, "app")?)
            .ok_or_else(|| corrupt("device app"))?,
        webauthn: match (
            get::<Option<String>>(row, "webauthn_credential_id")?,
            get::<Option<String>>(row, "webauthn_passkey")?,
            get::<Option<i64>>(row, "webauthn_counter")?,
        ) {
            (Some(credential_id), Some(passkey), Some(counter)) => {
                Some(latchkey_domain::authenticator::DeviceCredential {
                    credential_id,
                    passkey,
                    counter: u32::try_from(counter).map_err(|_| corrupt("device counter"))?,
                })
            }
            (None, None, None) => None,
            _ => return Err(corrupt("device WebAuthn credential")),
        },
    })
}

pub(super) fn approval_from(row: &Row<'_>) -> StoreResult<Approval> {
    let body: String = get(row, "body")?;
    serde_json::from_str(&body).map_err(|_| corrupt("approval"))
}

pub(super) fn user_risk_from(row: &Row<'_>) -> StoreResult<UserRisk> {
    let state = match get::<String>(row, "state")?.as_str() {
        "atRisk" => RiskState::AtRisk,
        "dismissed" => RiskState::Dismissed,
        _ => return Err(corrupt("user risk")),
    };
    Ok(UserRisk {
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        state,
        detail: get(row, "detail")?,
        last_updated: timestamp(row, "last_updated")?,
    })
}

pub(super) fn signing_key_from(row: &Row<'_>) -> StoreResult<SigningKey> {
    Ok(SigningKey {
        kid: KeyId::from_string(get::<String>(row, "kid")?),
        alg: SigningAlg::parse(&get::<String>(row, "alg")?)
            .map_err(|_| corrupt("signing key algorithm"))?,
        private_pkcs8: get(row, "private_pkcs8")?,
        created_at: timestamp(row, "created_at")?,
        retired_at: optional_timestamp(row, "retired_at")?,
    })
}

pub(super) fn admin_token_from(row: &Row<'_>) -> StoreResult<AdminToken> {
    Ok(AdminToken {
        id: AdminTokenId::from_string(get::<String>(row, "id")?),
        name: get(row, "name")?,
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        legacy_sha256: get(row, "legacy_sha256")?,
        created_at: timestamp(row, "created_at")?,
        created_by: get(row, "created_by")?,
        expires_at: optional_timestamp(row, "expires_at")?,
        last_used_at: optional_timestamp(row, "last_used_at")?,
        revoked_at: optional_timestamp(row, "revoked_at")?,
        revoked_by: get(row, "revoked_by")?,
    })
}
