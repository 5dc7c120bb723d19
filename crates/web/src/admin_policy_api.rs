//! Admin API for the authentication methods policy, effective policy, and the logs.
//! Mounted inside the admin API's token-protected router.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use latchkey_domain::clock::{Timestamp, parse_time};
use latchkey_domain::log::{Actor, LogQuery, SignInRecord, StatusFilter};
use latchkey_domain::policy::{AuthenticationMethodsPolicy, MethodKind};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiJson};

const CONFIGURATIONS: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{method}";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/policies/authenticationMethodsPolicy", get(get_policy))
        .route(
            CONFIGURATIONS,
            get(get_configuration)
                .put(put_configuration)
                .patch(patch_configuration)
                .delete(reset_configuration),
        )
        .route("/users/{id}/effectivePolicy", get(effective_policy))
        .route("/auditLogs/signIns", get(sign_ins))
        .route("/auditLogs/directoryAudits", get(directory_audits))
}

type ApiResult = Result<Response, ApiError>;

fn configuration_json(policy: &AuthenticationMethodsPolicy, method: MethodKind) -> Value {
    let mut value = serde_json::to_value(policy.configuration(method)).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("id".into(), json!(method.id()));
    }
    value
}

async fn get_policy(State(state): State<AppState>) -> ApiResult {
    let policy = state.latchkey.governance.policy().await?;
    let configurations: Vec<Value> = MethodKind::ALL
        .into_iter()
        .map(|m| configuration_json(&policy, m))
        .collect();
    Ok(Json(
        json!({"version": policy.version, "authenticationMethodConfigurations": configurations}),
    )
    .into_response())
}

async fn get_configuration(State(state): State<AppState>, Path(method): Path<String>) -> ApiResult {
    let method = MethodKind::parse(&method)?;
    let policy = state.latchkey.governance.policy().await?;
    Ok(with_etag(
        &policy,
        Json(configuration_json(&policy, method)).into_response(),
    ))
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
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "If-Match must be the policy version from the ETag",
            )
        })
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
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "id does not match the method in the path",
        ));
    }
    Ok(body)
}

/// Replaces the whole configuration.
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
    Ok(with_etag(
        &policy,
        Json(configuration_json(&policy, method)).into_response(),
    ))
}

/// Applies a JSON merge patch (RFC 7396) to the current configuration.
async fn patch_configuration(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(method): Path<String>,
    headers: axum::http::HeaderMap,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult {
    let method = MethodKind::parse(&method)?;
    if !patch.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "a merge patch must be a JSON object",
        ));
    }
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
    Ok(with_etag(
        &policy,
        Json(configuration_json(&policy, method)).into_response(),
    ))
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
    Ok(Json(configuration_json(&policy, method)).into_response())
}

async fn effective_policy(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let user = state.latchkey.directory.find_user(&id).await?;
    let evaluations = state.latchkey.governance.effective_policy(&user.id).await?;
    Ok(Json(json!({"userPrincipalName": user.upn, "value": evaluations})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogParams {
    since: Option<String>,
    until: Option<String>,
    user: Option<String>,
    app: Option<String>,
    status: Option<String>,
    method: Option<String>,
    category: Option<String>,
    top: Option<u32>,
    skip: Option<u32>,
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Json,
    JsonLines,
    Csv,
}

fn log_query(params: LogParams, now: Timestamp) -> Result<(LogQuery, Format), ApiError> {
    let invalid = |field: &str, why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!("{field}: {why}"),
        )
    };
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
type CsvColumn = (&'static str, fn(&Value) -> String);

fn csv_field(value: &str) -> String {
    // Quote everything; neutralise spreadsheet formulas (CSV injection).
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    format!("\"{}\"", value.replace('"', "\"\""))
}

fn export(format: Format, rows: Vec<Value>, csv_columns: &[CsvColumn]) -> Response {
    match format {
        Format::Json => Json(json!({"value": rows})).into_response(),
        Format::JsonLines => {
            let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
            ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
        }
        Format::Csv => {
            let mut body = csv_columns
                .iter()
                .map(|(name, _)| csv_field(name))
                .collect::<Vec<_>>()
                .join(",");
            body.push('\n');
            for row in &rows {
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

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn sign_in_json(record: &SignInRecord) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    value["createdDateTime"] = json!(record.created_date_time.to_rfc3339());
    value
}

async fn sign_ins(
    State(state): State<AppState>,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(params) = params
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", e.body_text()))?;
    let (query, format) = log_query(params, state.latchkey.now())?;
    let rows: Vec<Value> = state
        .latchkey
        .governance
        .sign_in_log(query)
        .await?
        .iter()
        .map(sign_in_json)
        .collect();
    Ok(export(
        format,
        rows,
        &[
            ("createdDateTime", |r| text(&r["createdDateTime"])),
            ("userPrincipalName", |r| text(&r["userPrincipalName"])),
            ("appDisplayName", |r| text(&r["appDisplayName"])),
            ("ipAddress", |r| text(&r["ipAddress"])),
            ("city", |r| text(&r["location"]["city"])),
            ("countryOrRegion", |r| {
                text(&r["location"]["countryOrRegion"])
            }),
            ("authenticationMethod", |r| text(&r["authenticationMethod"])),
            ("errorCode", |r| text(&r["status"]["errorCode"])),
            ("failureReason", |r| text(&r["status"]["failureReason"])),
        ],
    ))
}

async fn directory_audits(
    State(state): State<AppState>,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(params) = params
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", e.body_text()))?;
    let (query, format) = log_query(params, state.latchkey.now())?;
    let rows: Vec<Value> = state
        .latchkey
        .governance
        .audit_log(query)
        .await?
        .iter()
        .map(|event| {
            let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
            value["activityDateTime"] = json!(event.activity_date_time.to_rfc3339());
            value
        })
        .collect();
    Ok(export(
        format,
        rows,
        &[
            ("activityDateTime", |r| text(&r["activityDateTime"])),
            ("actor", |r| text(&r["actor"])),
            ("category", |r| text(&r["category"])),
            ("activity", |r| text(&r["activity"])),
            ("target", |r| text(&r["target"])),
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
