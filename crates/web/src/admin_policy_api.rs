//! Admin API for the authentication methods policy, effective policy, and the logs.
//! Mounted inside the admin API's token-protected router.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use latchkey_api as api;
use latchkey_domain::clock::{Timestamp, parse_time};
use latchkey_domain::log::{Actor, LogQuery, StatusFilter};
use latchkey_domain::policy::{AuthenticationMethodsPolicy, MethodKind};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::admin_api_wire as wire;
use crate::error::{ApiError, ApiJson};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_policy))
        .routes(routes!(
            get_configuration,
            put_configuration,
            patch_configuration,
            reset_configuration
        ))
        .routes(routes!(
            get_registration_enforcement,
            put_registration_enforcement,
            patch_registration_enforcement,
            reset_registration_enforcement
        ))
        .routes(routes!(effective_policy))
        .routes(routes!(sign_ins))
        .routes(routes!(directory_audits))
}

type ApiResult = Result<Response, ApiError>;

/// A method's configuration as the policy holds it, with its `id`.
fn configuration(
    policy: &AuthenticationMethodsPolicy,
    method: MethodKind,
) -> Result<api::AuthenticationMethodConfiguration, ApiError> {
    wire::method_configuration(method, &policy.configuration(method))
        .map_err(|e| ApiError::from(latchkey_domain::DomainError::Internal(e.to_string())))
}

fn configuration_json(
    policy: &AuthenticationMethodsPolicy,
    method: MethodKind,
) -> Result<Response, ApiError> {
    Ok(Json(configuration(policy, method)?).into_response())
}

/// The method a configuration path names.
#[derive(utoipa::IntoParams)]
#[into_params(names("method"), parameter_in = Path)]
#[allow(dead_code)] // Documentation only: the handlers read the path as a string.
struct MethodParameter(
    /// `authenticator`, `fido2`, `temporaryAccessPass`, `x509Certificate` or `password`.
    String,
);

/// The policy version a change applies to.
#[derive(utoipa::IntoParams)]
#[into_params(names("If-Match"), parameter_in = Header)]
#[allow(dead_code)] // Documentation only: `if_match` reads the header.
struct IfMatchParameter(
    /// The `ETag` of a read (`"3"`, `W/"3"` or `3`); `*` or none: any version.
    Option<String>,
);

/// Read the whole policy.
#[utoipa::path(get, path = "/policies/authenticationMethodsPolicy", tag = "policy",
    responses((status = 200, body = api::AuthenticationMethodsPolicy)))]
async fn get_policy(
    State(state): State<AppState>,
) -> Result<Json<api::AuthenticationMethodsPolicy>, ApiError> {
    let policy = state.latchkey.governance.policy().await?;
    Ok(Json(api::AuthenticationMethodsPolicy {
        authentication_method_configurations: MethodKind::ALL
            .into_iter()
            .map(|m| configuration(&policy, m))
            .collect::<Result<_, _>>()?,
        registration_enforcement: Some(registration_enforcement(&policy)?),
        version: policy.version,
    }))
}

/// Read one method's configuration; the `ETag` is the policy's version.
#[utoipa::path(get, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{method}",
    tag = "policy", params(MethodParameter),
    responses((status = 200, body = api::AuthenticationMethodConfiguration,
        headers(("ETag" = String, description = "The policy's version"))),
        (status = 404, body = api::Error)))]
async fn get_configuration(State(state): State<AppState>, Path(method): Path<String>) -> ApiResult {
    let method = MethodKind::parse(&method)?;
    let policy = state.latchkey.governance.policy().await?;
    Ok(with_etag(&policy, configuration_json(&policy, method)?))
}

/// The policy version as an entity tag, so a client can send it back in `If-Match`.
fn with_etag(policy: &AuthenticationMethodsPolicy, mut response: Response) -> Response {
    if let Ok(value) = format!("\"{}\"", policy.version).parse() {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The version an `If-Match` header names (`"3"`, `W/"3"` or `3`); `*` or no header: any.
fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| invalid_input("If-Match must be the policy version from the ETag"))
}

/// A 400 `invalid_input` error.
fn invalid_input(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
}

/// A JSON merge patch (RFC 7396) here must be an object: any other value would replace the
/// whole resource.
fn require_object(patch: &Value) -> Result<(), ApiError> {
    if patch.is_object() {
        Ok(())
    } else {
        Err(invalid_input("a merge patch must be a JSON object"))
    }
}

/// A conflict on a conditional request is a failed precondition.
fn precondition(expected: Option<u64>, error: latchkey_domain::DomainError) -> ApiError {
    match (expected, &error) {
        (Some(_), latchkey_domain::DomainError::Conflict(message)) => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            message.clone(),
        ),
        _ => error.into(),
    }
}

/// The body may carry the method's `id`; it must then name the method in the path.
fn without_id(method: MethodKind, mut body: Value) -> Result<Value, ApiError> {
    if let Value::Object(map) = &mut body
        && let Some(id) = map.remove("id")
        && id.as_str() != Some(method.id())
    {
        return Err(invalid_input("id does not match the method in the path"));
    }
    Ok(body)
}

/// Replace a method's whole configuration. With `If-Match`, only at that policy version.
#[utoipa::path(put, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{method}",
    tag = "policy", params(MethodParameter, IfMatchParameter),
    request_body = api::AuthenticationMethodConfiguration,
    responses((status = 200, body = api::AuthenticationMethodConfiguration),
        (status = 400, body = api::Error), (status = 404, body = api::Error),
        (status = 409, body = api::Error), (status = 412, body = api::Error)))]
async fn put_configuration(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(method): Path<String>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult {
    let method = MethodKind::parse(&method)?;
    let expected = if_match(&headers)?;
    let policy = state
        .latchkey
        .governance
        .set_method_configuration_at(&actor, method, without_id(method, body)?, expected)
        .await
        .map_err(|e| precondition(expected, e))?;
    Ok(with_etag(&policy, configuration_json(&policy, method)?))
}

/// Apply a JSON merge patch (RFC 7396) to a method's configuration.
#[utoipa::path(patch, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{method}",
    tag = "policy", params(MethodParameter, IfMatchParameter),
    request_body = api::AuthenticationMethodConfigurationPatch,
    responses((status = 200, body = api::AuthenticationMethodConfiguration),
        (status = 400, body = api::Error), (status = 404, body = api::Error),
        (status = 409, body = api::Error), (status = 412, body = api::Error)))]
async fn patch_configuration(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(method): Path<String>,
    headers: axum::http::HeaderMap,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult {
    let method = MethodKind::parse(&method)?;
    require_object(&patch)?;
    let current = state.latchkey.governance.policy().await?;
    // The patch applies to the version read here: a change in between is a conflict, not lost.
    let expected = if_match(&headers)?;
    let mut merged = serde_json::to_value(current.configuration(method)).unwrap_or(Value::Null);
    merge_patch(&mut merged, without_id(method, patch)?);
    let policy = state
        .latchkey
        .governance
        .set_method_configuration_at(
            &actor,
            method,
            merged,
            Some(expected.unwrap_or(current.version)),
        )
        .await
        .map_err(|e| precondition(expected, e))?;
    Ok(with_etag(&policy, configuration_json(&policy, method)?))
}

fn merge_patch(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(entries) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().expect("object");
            for (key, value) in entries {
                if value.is_null() {
                    map.remove(&key);
                } else {
                    merge_patch(map.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other,
    }
}

/// Put a method's configuration back to its defaults.
#[utoipa::path(delete, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{method}",
    tag = "policy", params(MethodParameter),
    responses((status = 200, body = api::AuthenticationMethodConfiguration),
        (status = 404, body = api::Error)))]
async fn reset_configuration(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(method): Path<String>,
) -> ApiResult {
    let method = MethodKind::parse(&method)?;
    let policy = state
        .latchkey
        .governance
        .reset_method_configuration(&actor, method)
        .await?;
    configuration_json(&policy, method)
}

fn registration_enforcement(
    policy: &AuthenticationMethodsPolicy,
) -> Result<api::RegistrationEnforcement, ApiError> {
    serde_json::to_value(&policy.registration_enforcement)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::from(latchkey_domain::DomainError::Internal(e.to_string())))
}

fn enforcement_response(policy: &AuthenticationMethodsPolicy) -> ApiResult {
    Ok(with_etag(
        policy,
        Json(registration_enforcement(policy)?).into_response(),
    ))
}

/// The campaign from a `registrationEnforcement` body (the only member it may have).
fn campaign_of(body: Value) -> Result<Value, ApiError> {
    match body {
        Value::Object(mut map) => {
            let campaign = map
                .remove("authenticationMethodsRegistrationCampaign")
                .unwrap_or(Value::Null);
            if let Some(other) = map.keys().next() {
                return Err(invalid_input(format!(
                    "registrationEnforcement: unknown field `{other}`"
                )));
            }
            if campaign.is_null() {
                return Err(invalid_input(
                    "registrationEnforcement: missing field `authenticationMethodsRegistrationCampaign`",
                ));
            }
            Ok(campaign)
        }
        _ => Err(invalid_input(
            "registrationEnforcement must be a JSON object",
        )),
    }
}

/// Read the registration campaign (Graph's `registrationEnforcement`); the `ETag` is the
/// policy's version.
#[utoipa::path(get, path = "/policies/authenticationMethodsPolicy/registrationEnforcement",
    tag = "policy",
    responses((status = 200, body = api::RegistrationEnforcement,
        headers(("ETag" = String, description = "The policy's version")))))]
async fn get_registration_enforcement(State(state): State<AppState>) -> ApiResult {
    let policy = state.latchkey.governance.policy().await?;
    enforcement_response(&policy)
}

/// Replace the registration campaign. With `If-Match`, only at that policy version.
#[utoipa::path(put, path = "/policies/authenticationMethodsPolicy/registrationEnforcement",
    tag = "policy", params(IfMatchParameter), request_body = api::RegistrationEnforcement,
    responses((status = 200, body = api::RegistrationEnforcement),
        (status = 400, body = api::Error), (status = 409, body = api::Error),
        (status = 412, body = api::Error)))]
async fn put_registration_enforcement(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult {
    let expected = if_match(&headers)?;
    let policy = state
        .latchkey
        .governance
        .set_registration_campaign(&actor, campaign_of(body)?, expected)
        .await
        .map_err(|e| precondition(expected, e))?;
    enforcement_response(&policy)
}

/// Apply a JSON merge patch (RFC 7396) to the registration campaign.
#[utoipa::path(patch, path = "/policies/authenticationMethodsPolicy/registrationEnforcement",
    tag = "policy", params(IfMatchParameter), request_body = api::RegistrationEnforcementPatch,
    responses((status = 200, body = api::RegistrationEnforcement),
        (status = 400, body = api::Error), (status = 409, body = api::Error),
        (status = 412, body = api::Error)))]
async fn patch_registration_enforcement(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    headers: axum::http::HeaderMap,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult {
    require_object(&patch)?;
    let current = state.latchkey.governance.policy().await?;
    let expected = if_match(&headers)?;
    let mut merged = serde_json::to_value(&current.registration_enforcement).unwrap_or(Value::Null);
    merge_patch(&mut merged, patch);
    let policy = state
        .latchkey
        .governance
        .set_registration_campaign(
            &actor,
            campaign_of(merged)?,
            Some(expected.unwrap_or(current.version)),
        )
        .await
        .map_err(|e| precondition(expected, e))?;
    enforcement_response(&policy)
}

/// Put the registration campaign back to its default (off).
#[utoipa::path(delete, path = "/policies/authenticationMethodsPolicy/registrationEnforcement",
    tag = "policy", responses((status = 200, body = api::RegistrationEnforcement)))]
async fn reset_registration_enforcement(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> ApiResult {
    let policy = state
        .latchkey
        .governance
        .reset_registration_campaign(&actor)
        .await?;
    enforcement_response(&policy)
}

/// Which methods a user may use, in which mode, with which features, and why.
#[utoipa::path(get, path = "/users/{id}/effectivePolicy", tag = "policy",
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 200, body = api::EffectivePolicy), (status = 404, body = api::Error)))]
async fn effective_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<api::EffectivePolicy>, ApiError> {
    let user = state.latchkey.directory.find_user(&id).await?;
    let evaluations = state.latchkey.governance.effective_policy(&user.id).await?;
    Ok(Json(api::EffectivePolicy {
        user_principal_name: user.upn.to_string(),
        value: evaluations.iter().map(wire::evaluation).collect(),
    }))
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Json,
    JsonLines,
    Csv,
}

fn log_query(params: api::LogParameters, now: Timestamp) -> Result<(LogQuery, Format), ApiError> {
    let invalid = |field: &str, why: &str| invalid_input(format!("{field}: {why}"));
    let time = |field: &str, value: Option<String>| match value {
        None => Ok(None),
        Some(v) => parse_time(&v, now).map(Some).ok_or_else(|| {
            invalid(
                field,
                "use RFC 3339 (2026-11-29T10:00:00Z), Unix seconds, or a span such as 1h or 7d",
            )
        }),
    };
    let status = match params.status.as_deref() {
        None => None,
        Some("success") => Some(StatusFilter::Success),
        Some("failure") => Some(StatusFilter::Failure),
        Some(_) => return Err(invalid("status", "use success or failure")),
    };
    let format = match params.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("jsonl") => Format::JsonLines,
        Some("csv") => Format::Csv,
        Some(_) => return Err(invalid("format", "use json, jsonl or csv")),
    };
    if params.top.is_some_and(|t| t > LogQuery::MAX_LIMIT) {
        return Err(invalid("top", "at most 1000"));
    }
    let query = LogQuery {
        since: time("since", params.since)?,
        until: time("until", params.until)?,
        user: params.user,
        app: params.app,
        status,
        method: params.method,
        category: params.category,
        limit: params.top.unwrap_or(100),
        skip: params.skip.unwrap_or(0),
    };
    Ok((query, format))
}

/// A CSV column: its header and how to read it from a row.
type CsvColumn<T> = (&'static str, fn(&T) -> String);

fn csv_field(value: &str) -> String {
    // Quote everything; neutralise spreadsheet formulas (CSV injection).
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// A page of a log in Graph's collection shape.
#[derive(Serialize)]
struct Page<'a, T> {
    value: &'a [T],
}

fn export<T: Serialize>(format: Format, rows: &[T], csv_columns: &[CsvColumn<T>]) -> Response {
    match format {
        Format::Json => Json(Page { value: rows }).into_response(),
        Format::JsonLines => {
            let body: String = rows
                .iter()
                .filter_map(|r| serde_json::to_string(r).ok())
                .map(|line| line + "\n")
                .collect();
            ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
        }
        Format::Csv => {
            let mut body = csv_columns
                .iter()
                .map(|(name, _)| csv_field(name))
                .collect::<Vec<_>>()
                .join(",");
            body.push('\n');
            for row in rows {
                body.push_str(
                    &csv_columns
                        .iter()
                        .map(|(_, get)| csv_field(&get(row)))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                body.push('\n');
            }
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
        }
    }
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn place(record: &api::SignInRecord, part: fn(&api::SignInLocation) -> &Option<String>) -> String {
    record
        .location
        .as_ref()
        .map(|l| text(part(l)))
        .unwrap_or_default()
}

fn query_parameters(
    params: Result<Query<api::LogParameters>, axum::extract::rejection::QueryRejection>,
) -> Result<api::LogParameters, ApiError> {
    params
        .map(|Query(params)| params)
        .map_err(|e| invalid_input(e.body_text()))
}

/// Read the sign-in log, newest first, as JSON, JSON lines or CSV.
#[utoipa::path(get, path = "/auditLogs/signIns", tag = "auditLogs", params(api::LogParameters),
    responses((status = 200, content(
        (api::SignInList = "application/json"),
        (String = "application/x-ndjson"),
        (String = "text/csv"))),
        (status = 400, body = api::Error)))]
async fn sign_ins(
    State(state): State<AppState>,
    params: Result<Query<api::LogParameters>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let (query, format) = log_query(query_parameters(params)?, state.latchkey.now())?;
    let rows: Vec<api::SignInRecord> = state
        .latchkey
        .governance
        .sign_in_log(query)
        .await?
        .iter()
        .map(wire::sign_in)
        .collect();
    Ok(export(
        format,
        &rows,
        &[
            ("createdDateTime", |r| r.created_date_time.clone()),
            ("userPrincipalName", |r| r.user_principal_name.clone()),
            ("appDisplayName", |r| text(&r.app_display_name)),
            ("ipAddress", |r| text(&r.ip_address)),
            ("city", |r| place(r, |l| &l.city)),
            ("countryOrRegion", |r| place(r, |l| &l.country_or_region)),
            ("authenticationMethod", |r| r.authentication_method.clone()),
            ("errorCode", |r| r.status.error_code.to_string()),
            ("failureReason", |r| text(&r.status.failure_reason)),
        ],
    ))
}

/// Read the audit log of administrative changes, newest first, as JSON, JSON lines or CSV.
#[utoipa::path(get, path = "/auditLogs/directoryAudits", tag = "auditLogs",
    params(api::LogParameters),
    responses((status = 200, content(
        (api::AuditEventList = "application/json"),
        (String = "application/x-ndjson"),
        (String = "text/csv"))),
        (status = 400, body = api::Error)))]
async fn directory_audits(
    State(state): State<AppState>,
    params: Result<Query<api::LogParameters>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let (query, format) = log_query(query_parameters(params)?, state.latchkey.now())?;
    let rows: Vec<api::AuditEvent> = state
        .latchkey
        .governance
        .audit_log(query)
        .await?
        .iter()
        .map(wire::audit_event)
        .collect();
    Ok(export(
        format,
        &rows,
        &[
            ("activityDateTime", |r| r.activity_date_time.clone()),
            ("actor", |r| r.actor.clone()),
            ("category", |r| r.category.clone()),
            ("activity", |r| r.activity.clone()),
            ("target", |r| r.target.clone()),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        merge_patch(&mut target, json!({"a": null, "b": {"c": 5}, "e": [2, 3]}));
        assert_eq!(target, json!({"b": {"c": 5, "d": 3}, "e": [2, 3]}));
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
    }
}
