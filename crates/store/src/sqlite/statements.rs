//! Statements shared by more than one write. Each is built in one place so that a method doing
//! several things in one transaction (such as `complete_sign_in`) has exactly the semantics of
//! the single-purpose methods it combines.

use latchkey_domain::authenticator::{Approval, Device, app_text};
use latchkey_domain::ids::{ClientId, UserId};
use latchkey_domain::log::{AuditEvent, LogQuery, SignInRecord};
use latchkey_domain::session::Session;
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::store::StoreResult;
use latchkey_protocol::PublicKey;

use super::db::{SqlBuilder, Stmt, stmt};
use super::rows::method_text;
use super::to_json;

pub(super) fn insert_device(device: &Device) -> Stmt {
    stmt(
        "INSERT INTO devices (id, user_id, name, device_key, passwordless_key, created_at, confirmed_at, \
         phone_sign_in_at, app, webauthn_credential_id, webauthn_passkey, webauthn_counter) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(device.id.as_str())
    .bind(device.user_id.as_str())
    .bind(device.name.as_str())
    .bind(device.key.as_str())
    .bind(device.passwordless_key.as_ref().map(PublicKey::as_str))
    .bind(device.created_at.0)
    .bind(device.confirmed_at.map(|t| t.0))
    .bind(device.phone_sign_in_at.map(|t| t.0))
    .bind(app_text(device.app))
    .bind(device.webauthn.as_ref().map(|w| w.credential_id.clone()))
    .bind(device.webauthn.as_ref().map(|w| w.passkey.clone()))
    .bind(device.webauthn.as_ref().map(|w| i64::from(w.counter)))
}

pub(super) fn insert_approval(approval: &Approval) -> StoreResult<Stmt> {
    bind_approval(
        "INSERT INTO approvals (id, user_id, state, created_at, expires_at, body) VALUES (?, ?, ?, ?, ?, ?)",
        approval,
    )
}

/// Binds an approval's six columns, in table order, as the first parameters of `sql`.
pub(super) fn bind_approval(sql: &'static str, approval: &Approval) -> StoreResult<Stmt> {
    let body = to_json("approval", serde_json::to_string(approval))?;
    Ok(stmt(sql)
        .bind(approval.id.as_str())
        .bind(approval.user_id.as_str())
        .bind(approval.state.as_str())
        .bind(approval.view.created_at)
        .bind(approval.view.expires_at)
        .bind(body))
}

pub(super) fn insert_session(session: &Session) -> StoreResult<Stmt> {
    Ok(stmt(
        "INSERT INTO sessions (id, token_hash, user_id, method, auth_time, created_at, expires_at, revoked) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(session.id.as_str())
    .bind(session.token_hash.as_str())
    .bind(session.user_id.as_str())
    .bind(method_text(session.method)?)
    .bind(session.auth_time.0)
    .bind(session.created_at.0)
    .bind(session.expires_at.0)
    .bind(session.revoked))
}

/// The sign-in moves through stages by being put again, hence the upsert.
pub(super) fn upsert_sign_in(sign_in: &PendingSignIn) -> StoreResult<Stmt> {
    let body = to_json("sign-in", serde_json::to_string(sign_in))?;
    Ok(stmt(
        "INSERT INTO sign_ins (id, body, expires_at) VALUES (?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
    )
    .bind(sign_in.id.as_str())
    .bind(body)
    .bind(sign_in.expires_at.0))
}

pub(super) const SESSION_CONFLICT: &str = "a session with this id or token";

/// The filtered and ordered columns are copies of fields of the record, taken here, so they
/// can never disagree with the JSON that is read back.
pub(super) fn insert_sign_in_record(record: &SignInRecord) -> StoreResult<Stmt> {
    Ok(stmt(
        "INSERT INTO sign_in_log (id, created_at, user_id, user_principal_name, app_id, app_display_name, \
         error_code, authentication_method, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(record.id.as_str())
    .bind(record.created_date_time.0)
    .bind(record.user_id.as_ref().map(UserId::as_str))
    .bind(record.user_principal_name.as_str())
    .bind(record.app_id.as_ref().map(ClientId::as_str))
    .bind(record.app_display_name.as_deref())
    .bind(i64::from(record.status.error_code))
    .bind(record.authentication_method.as_str())
    .bind(to_json("sign-in record", serde_json::to_string(record))?))
}

pub(super) const SIGN_IN_RECORD_CONFLICT: &str = "a sign-in record with this id";

pub(super) fn insert_audit_event(event: &AuditEvent) -> StoreResult<Stmt> {
    Ok(stmt(
        "INSERT INTO audit_log (id, created_at, actor, target, category, event) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(event.id.as_str())
    .bind(event.activity_date_time.0)
    .bind(event.actor.0.as_str())
    .bind(event.target.as_str())
    .bind(event.category.as_str())
    .bind(to_json("audit event", serde_json::to_string(event))?))
}

pub(super) const AUDIT_EVENT_CONFLICT: &str = "an audit event with this id";

/// The time range, order and page shared by both logs. Only fixed SQL text is pushed; every
/// value travels as a bound parameter.
pub(super) fn push_time_range_and_page(sql: &mut SqlBuilder, query: &LogQuery) {
    if let Some(since) = query.since {
        sql.push(" AND created_at >= ").push_bind(since.0);
    }
    if let Some(until) = query.until {
        sql.push(" AND created_at < ").push_bind(until.0);
    }
    // Within one second, the most recently written first (rowid grows with every insert).
    sql.push(" ORDER BY created_at DESC, rowid DESC LIMIT ")
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(i64::from(query.skip));
}
