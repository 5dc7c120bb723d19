//! The sign-in log, with its chart of sign-ins over time, a sign-in's details, and the audit
//! log. Filters arrive in the query string; one that cannot be read is shown as a refusal
//! naming the field, above an empty table.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use latchkey_domain::clock::{Timestamp, parse_time};
use latchkey_domain::log::{AuditCategory, AuditEvent, LogQuery, SignInRecord, StatusFilter};
use latchkey_domain::policy::MethodKind;
use serde::Deserialize;
use serde_json::Value;

use super::{
    Admin, Banner, Choice, ConsoleResult, Frame, PathId, Refusable, Refused, Section, choices,
    not_found, time, url_id, with_blank,
};

/// Rows the log tables show; the chart counts everything fetched.
const LOG_TABLE_ROWS: usize = 100;

const DEFAULT_SIGN_IN_SPAN: &str = "24h";
const DEFAULT_AUDIT_SPAN: &str = "7d";

/// A filter's value, trimmed; blank is none.
fn filled(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The `since` filter as typed, or `default` when blank.
fn since_text(since: Option<&str>, default: &str) -> String {
    filled(since).unwrap_or_else(|| default.to_string())
}

/// Where a log's window starts: `since` as the domain reads times (`15m`, `1h`, `7d`, RFC 3339
/// in UTC, …), or `default` when blank.
fn window_start(since: Option<&str>, default: &str, now: Timestamp) -> Result<Timestamp, String> {
    parse_time(&since_text(since, default), now).ok_or_else(|| {
        "since: enter a time span such as 15m, 1h, 24h or 7d (minutes, hours or days).".into()
    })
}

#[derive(Deserialize, Default, Debug, Clone)]
pub(super) struct SignInFilter {
    since: Option<String>,
    user: Option<String>,
    app: Option<String>,
    status: Option<String>,
    method: Option<String>,
}

/// The filter as a log query and the start of its window. Blank `since` means the default.
fn sign_in_query(filter: &SignInFilter, now: Timestamp) -> Result<(LogQuery, Timestamp), String> {
    let since = window_start(filter.since.as_deref(), DEFAULT_SIGN_IN_SPAN, now)?;
    let status = match filled(filter.status.as_deref()).as_deref() {
        None => None,
        Some("success") => Some(StatusFilter::Success),
        Some("failure") => Some(StatusFilter::Failure),
        Some(_) => return Err("status: choose success or failure, or leave it empty.".into()),
    };
    let method = filled(filter.method.as_deref());
    if let Some(method) = &method
        && !MethodKind::ALL.iter().any(|m| m.id() == method)
    {
        return Err(format!(
            "method: choose one of {}, or leave it empty.",
            MethodKind::ALL.map(MethodKind::id).join(", ")
        ));
    }
    let query = LogQuery {
        since: Some(since),
        until: None,
        user: filled(filter.user.as_deref()),
        app: filled(filter.app.as_deref()),
        status,
        method,
        category: None,
        limit: LogQuery::MAX_LIMIT,
        skip: 0,
    };
    Ok((query, since))
}

/// Success and failure counts of one slice of the chart's window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bucket {
    start: Timestamp,
    succeeded: u32,
    failed: u32,
}

/// Splits `[start, end]` into `count` equal slices and counts sign-ins in each by result.
/// Sign-ins outside the window are left out.
fn bucket_sign_ins(
    sign_ins: impl IntoIterator<Item = (Timestamp, bool)>,
    start: Timestamp,
    end: Timestamp,
    count: usize,
) -> Vec<Bucket> {
    let count = count.max(1);
    let span = (end.0 - start.0).max(1);
    let width = (span + count as i64 - 1) / count as i64;
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start: start.plus_seconds(width * i as i64),
            succeeded: 0,
            failed: 0,
        })
        .collect();
    for (at, succeeded) in sign_ins {
        if at < start || at > end {
            continue;
        }
        let index = (((at.0 - start.0) / width) as usize).min(count - 1);
        let bucket = &mut buckets[index];
        if succeeded {
            bucket.succeeded += 1;
        } else {
            bucket.failed += 1;
        }
    }
    buckets
}

const CHART_BUCKETS: usize = 24;
const CHART_HEIGHT: u32 = 100;
const CHART_SLOT: u32 = 20;

/// One stacked bar of the chart, in SVG user units: successes at the bottom, failures on top.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bar {
    x: u32,
    width: u32,
    ok_y: u32,
    ok_height: u32,
    failed_y: u32,
    failed_height: u32,
    title: String,
}

struct Chart {
    width: u32,
    height: u32,
    bars: Vec<Bar>,
    start: String,
    end: String,
    succeeded: u32,
    failed: u32,
    description: String,
}

fn scale(value: u32, max: u32) -> u32 {
    if max == 0 {
        0
    } else {
        ((u64::from(value) * u64::from(CHART_HEIGHT) + u64::from(max) / 2) / u64::from(max)) as u32
    }
}

fn chart_bars(buckets: &[Bucket]) -> Vec<Bar> {
    let max = buckets
        .iter()
        .map(|b| b.succeeded + b.failed)
        .max()
        .unwrap_or(0);
    buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let total_height = scale(b.succeeded + b.failed, max);
            let failed_height = scale(b.failed, max).min(total_height);
            let ok_height = total_height - failed_height;
            let ok_y = CHART_HEIGHT - ok_height;
            Bar {
                x: i as u32 * CHART_SLOT + 2,
                width: CHART_SLOT - 4,
                ok_y,
                ok_height,
                failed_y: ok_y - failed_height,
                failed_height,
                title: format!(
                    "From {}: {} succeeded, {} failed",
                    time(b.start),
                    b.succeeded,
                    b.failed
                ),
            }
        })
        .collect()
}

fn chart(records: &[SignInRecord], start: Timestamp, end: Timestamp) -> Chart {
    let buckets = bucket_sign_ins(
        records.iter().map(|r| (r.created_date_time, r.succeeded())),
        start,
        end,
        CHART_BUCKETS,
    );
    let succeeded = buckets.iter().map(|b| b.succeeded).sum();
    let failed = buckets.iter().map(|b| b.failed).sum();
    Chart {
        width: CHART_BUCKETS as u32 * CHART_SLOT,
        height: CHART_HEIGHT,
        bars: chart_bars(&buckets),
        start: time(start),
        end: time(end),
        succeeded,
        failed,
        description: format!(
            "Sign-ins from {} to {} in {CHART_BUCKETS} slices: {succeeded} succeeded, {failed} failed.",
            time(start),
            time(end)
        ),
    }
}

fn method_label(id: &str) -> String {
    MethodKind::ALL
        .into_iter()
        .find(|m| m.id() == id)
        .map_or_else(|| id.to_string(), |m| m.label().to_string())
}

struct SignInRow {
    href: String,
    time: String,
    user: String,
    application: String,
    ip: String,
    location: String,
    method: String,
    succeeded: bool,
    result: String,
}

fn result_text(record: &SignInRecord) -> String {
    if record.succeeded() {
        "Success".into()
    } else {
        format!(
            "Failure {}: {}",
            record.status.error_code,
            record.status.failure_reason.as_deref().unwrap_or("")
        )
    }
}

fn sign_in_row(record: &SignInRecord) -> SignInRow {
    SignInRow {
        href: format!("/admin/logs/signins/{}", record.id),
        time: time(record.created_date_time),
        user: record.user_principal_name.clone(),
        application: record
            .app_display_name
            .clone()
            .or_else(|| record.app_id.as_ref().map(ToString::to_string))
            .unwrap_or_default(),
        ip: record.ip_address.clone().unwrap_or_default(),
        location: record
            .location
            .as_ref()
            .and_then(|l| l.display())
            .unwrap_or_default(),
        method: method_label(&record.authentication_method),
        succeeded: record.succeeded(),
        result: result_text(record),
    }
}

#[derive(Template)]
#[template(path = "console_signins.html")]
struct SignInsPage {
    frame: Frame,
    since: String,
    user: String,
    app: String,
    statuses: Vec<Choice>,
    methods: Vec<Choice>,
    rows: Vec<SignInRow>,
    total: usize,
    capped: bool,
    chart: Option<Chart>,
}

pub(super) async fn sign_ins(
    admin: Admin,
    query: Result<Query<SignInFilter>, QueryRejection>,
) -> ConsoleResult {
    let Query(filter) = query?;
    let now = admin.latchkey().now();
    let fetched = match sign_in_query(&filter, now) {
        Ok((query, since)) => admin
            .latchkey()
            .governance
            .sign_in_log(query)
            .await
            .refusable()?
            .map(|records| (records, since)),
        Err(message) => Err(Refused::bad(message)),
    };
    let (banner, records, chart_view) = match fetched {
        Ok((records, since)) => {
            let chart_view = chart(&records, since, now);
            (Banner::None, records, Some(chart_view))
        }
        Err(refused) => (refused.into(), Vec::new(), None),
    };
    let status_options = with_blank(
        "Any",
        [("success", "Success"), ("failure", "Failure")].map(|(v, l)| (v.into(), l.into())),
    );
    let method_options = with_blank(
        "Any",
        MethodKind::ALL.map(|m| (m.id().to_string(), m.label().to_string())),
    );
    let text = |v: &Option<String>| filled(v.as_deref()).unwrap_or_default();
    admin.page(Section::SignIns, banner, |frame| SignInsPage {
        frame,
        since: since_text(filter.since.as_deref(), DEFAULT_SIGN_IN_SPAN),
        user: text(&filter.user),
        app: text(&filter.app),
        statuses: choices(&status_options, &text(&filter.status)),
        methods: choices(&method_options, &text(&filter.method)),
        rows: records
            .iter()
            .take(LOG_TABLE_ROWS)
            .map(sign_in_row)
            .collect(),
        total: records.len(),
        capped: records.len() >= LogQuery::MAX_LIMIT as usize,
        chart: chart_view,
    })
}

/// What `/static/map.js` draws: coordinates as plain decimal numbers (the script refuses
/// anything else) and the place's name for the text alternative.
struct MapView {
    latitude: String,
    longitude: String,
    label: String,
}

struct StepRow {
    time: String,
    method: String,
    detail: String,
    result: String,
    succeeded: bool,
}

#[derive(Template)]
#[template(path = "console_signin.html")]
struct SignInPage {
    frame: Frame,
    row: SignInRow,
    id: String,
    user_href: Option<String>,
    user_display_name: String,
    app_id: String,
    coordinates: String,
    /// The offline world map with a dot, when the record carries coordinates.
    map: Option<MapView>,
    error_code: u32,
    /// Graph's `additionalDetails`, e.g. that the notification was not pushed; empty if none.
    additional_details: String,
    steps: Vec<StepRow>,
}

pub(super) async fn sign_in_detail(admin: Admin, path: PathId) -> ConsoleResult {
    let Path(id) = path?;
    let id = url_id(&id, "sign-in")?;
    let query = LogQuery {
        limit: LogQuery::MAX_LIMIT,
        ..Default::default()
    };
    let record = admin
        .latchkey()
        .governance
        .sign_in_log(query)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| not_found("sign-in"))?;
    let placed = record
        .location
        .as_ref()
        .and_then(|l| Some((l.latitude?, l.longitude?)))
        .filter(|(lat, lon)| (-90.0..=90.0).contains(lat) && (-180.0..=180.0).contains(lon));
    let coordinates = placed
        .map(|(lat, lon)| format!("{lat:.4}, {lon:.4}"))
        .unwrap_or_default();
    let map = placed.map(|(lat, lon)| MapView {
        latitude: format!("{lat:.4}"),
        longitude: format!("{lon:.4}"),
        label: record
            .location
            .as_ref()
            .and_then(|l| l.display())
            .unwrap_or_else(|| "Sign-in location".into()),
    });
    let steps = record
        .authentication_details
        .iter()
        .map(|s| StepRow {
            time: s.authentication_step_date_time.clone(),
            method: method_label(&s.authentication_method),
            detail: s.authentication_method_detail.clone().unwrap_or_default(),
            result: s.authentication_step_result_detail.clone(),
            succeeded: s.succeeded,
        })
        .collect();
    admin.page(Section::SignIns, Banner::None, |frame| SignInPage {
        frame,
        row: sign_in_row(&record),
        id: record.id.clone(),
        user_href: record.user_id.as_ref().map(|u| format!("/admin/users/{u}")),
        user_display_name: record.user_display_name.clone().unwrap_or_default(),
        app_id: record
            .app_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        coordinates,
        map,
        error_code: record.status.error_code,
        additional_details: record.status.additional_details.clone().unwrap_or_default(),
        steps,
    })
}

#[derive(Deserialize, Default, Debug, Clone)]
pub(super) struct AuditFilter {
    since: Option<String>,
    user: Option<String>,
    category: Option<String>,
}

const AUDIT_CATEGORIES: [AuditCategory; 7] = [
    AuditCategory::UserManagement,
    AuditCategory::GroupManagement,
    AuditCategory::ApplicationManagement,
    AuditCategory::Policy,
    AuditCategory::KeyManagement,
    AuditCategory::UserAuthenticationMethods,
    AuditCategory::IdentityProtection,
];

fn audit_query(filter: &AuditFilter, now: Timestamp) -> Result<LogQuery, String> {
    let since = window_start(filter.since.as_deref(), DEFAULT_AUDIT_SPAN, now)?;
    let category = filled(filter.category.as_deref());
    if let Some(category) = &category
        && !AUDIT_CATEGORIES.iter().any(|c| c.as_str() == category)
    {
        return Err(format!(
            "category: choose one of {}, or leave it empty.",
            AUDIT_CATEGORIES.map(AuditCategory::as_str).join(", ")
        ));
    }
    Ok(LogQuery {
        since: Some(since),
        user: filled(filter.user.as_deref()),
        category,
        limit: LOG_TABLE_ROWS as u32,
        ..Default::default()
    })
}

struct AuditRow {
    time: String,
    actor: String,
    category: &'static str,
    activity: String,
    target: String,
    before: Option<String>,
    after: Option<String>,
}

fn pretty(value: Option<&Value>) -> Option<String> {
    value.and_then(|v| serde_json::to_string_pretty(v).ok())
}

fn audit_row(event: &AuditEvent) -> AuditRow {
    AuditRow {
        time: time(event.activity_date_time),
        actor: event.actor.0.clone(),
        category: event.category.as_str(),
        activity: event.activity.clone(),
        target: event.target.clone(),
        before: pretty(event.before.as_ref()),
        after: pretty(event.after.as_ref()),
    }
}

#[derive(Template)]
#[template(path = "console_audit.html")]
struct AuditPage {
    frame: Frame,
    since: String,
    user: String,
    categories: Vec<Choice>,
    rows: Vec<AuditRow>,
}

pub(super) async fn audit(
    admin: Admin,
    query: Result<Query<AuditFilter>, QueryRejection>,
) -> ConsoleResult {
    let Query(filter) = query?;
    let fetched = match audit_query(&filter, admin.latchkey().now()) {
        Ok(query) => admin
            .latchkey()
            .governance
            .audit_log(query)
            .await
            .refusable()?,
        Err(message) => Err(Refused::bad(message)),
    };
    let (banner, events) = match fetched {
        Ok(events) => (Banner::None, events),
        Err(refused) => (refused.into(), Vec::new()),
    };
    let category_options = with_blank(
        "Any",
        AUDIT_CATEGORIES.map(|c| (c.as_str().to_string(), c.as_str().to_string())),
    );
    let category = filled(filter.category.as_deref()).unwrap_or_default();
    admin.page(Section::Audit, banner, |frame| AuditPage {
        frame,
        since: since_text(filter.since.as_deref(), DEFAULT_AUDIT_SPAN),
        user: filled(filter.user.as_deref()).unwrap_or_default(),
        categories: choices(&category_options, &category),
        rows: events.iter().map(audit_row).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_795_910_400);

    #[test]
    fn sign_in_filters_become_a_query_or_a_message_naming_the_field() {
        let filter = SignInFilter {
            since: Some("1h".into()),
            user: Some(" bobby@latchkey.test ".into()),
            app: Some("".into()),
            status: Some("failure".into()),
            method: Some("temporaryAccessPass".into()),
        };
        let (query, since) = sign_in_query(&filter, NOW).unwrap();
        assert_eq!(since, NOW.plus_seconds(-3600));
        assert_eq!(query.since, Some(since));
        assert_eq!(query.user.as_deref(), Some("bobby@latchkey.test"));
        assert_eq!(query.app, None);
        assert_eq!(query.status, Some(StatusFilter::Failure));
        let absolute = SignInFilter {
            since: Some("2026-11-28T00:00:00Z".into()),
            ..Default::default()
        };
        let (_, since) = sign_in_query(&absolute, NOW).unwrap();
        assert_eq!(
            since,
            NOW.plus_seconds(-86_400),
            "times read as the domain reads them"
        );
        let (default, since) = sign_in_query(&SignInFilter::default(), NOW).unwrap();
        assert_eq!(since, NOW.plus_seconds(-86_400));
        assert_eq!(default.status, None);
        for (bad, field) in [
            (
                SignInFilter {
                    since: Some("yesterday".into()),
                    ..Default::default()
                },
                "since:",
            ),
            (
                SignInFilter {
                    status: Some("maybe".into()),
                    ..Default::default()
                },
                "status:",
            ),
            (
                SignInFilter {
                    method: Some("sms".into()),
                    ..Default::default()
                },
                "method:",
            ),
        ] {
            assert!(sign_in_query(&bad, NOW).unwrap_err().starts_with(field));
        }
        let audit = AuditFilter {
            category: Some("Gossip".into()),
            ..Default::default()
        };
        assert!(
            audit_query(&audit, NOW)
                .unwrap_err()
                .starts_with("category:")
        );
        let audit = AuditFilter {
            category: Some("Policy".into()),
            ..Default::default()
        };
        assert_eq!(
            audit_query(&audit, NOW).unwrap().category.as_deref(),
            Some("Policy")
        );
    }

    #[test]
    fn sign_ins_are_counted_into_equal_slices_by_result() {
        let start = NOW.plus_seconds(-24 * 3600);
        let at = |hours_ago: i64, minutes: i64| NOW.plus_seconds(-hours_ago * 3600 + minutes * 60);
        let points = vec![
            (at(24, 0), true),   // the very start: first slice
            (at(24, 30), false), // first slice
            (at(2, 10), true),   // the slice before the last
            (at(0, 0), false),   // the very end: last slice
            (at(25, 0), true),   // before the window
            (at(-1, 0), true),   // after it
        ];
        let buckets = bucket_sign_ins(points, start, NOW, 24);
        assert_eq!(buckets.len(), 24);
        assert_eq!(buckets[0].start, start);
        assert_eq!(buckets[1].start, start.plus_seconds(3600));
        assert_eq!((buckets[0].succeeded, buckets[0].failed), (1, 1));
        assert_eq!((buckets[22].succeeded, buckets[22].failed), (1, 0));
        assert_eq!((buckets[23].succeeded, buckets[23].failed), (0, 1));
        let counted: u32 = buckets.iter().map(|b| b.succeeded + b.failed).sum();
        assert_eq!(counted, 4);
        // A window shorter than the number of slices still works.
        let tiny = bucket_sign_ins([(NOW, true)], NOW.plus_seconds(-5), NOW, 24);
        assert_eq!(tiny.iter().map(|b| b.succeeded).sum::<u32>(), 1);
    }

    #[test]
    fn bars_stack_failures_on_successes_within_the_chart() {
        let bucket = |succeeded, failed| Bucket {
            start: NOW,
            succeeded,
            failed,
        };
        let bars = chart_bars(&[bucket(3, 1), bucket(0, 0), bucket(1, 1)]);
        assert_eq!(bars[0].ok_height + bars[0].failed_height, CHART_HEIGHT);
        assert_eq!(bars[0].failed_height, 25);
        assert_eq!(bars[0].ok_y, CHART_HEIGHT - bars[0].ok_height);
        assert_eq!(bars[0].failed_y + bars[0].failed_height, bars[0].ok_y);
        assert_eq!((bars[1].ok_height, bars[1].failed_height), (0, 0));
        assert_eq!(bars[2].ok_height + bars[2].failed_height, 50);
        assert!(bars[1].x > bars[0].x);
        assert!(chart_bars(&[bucket(0, 0)])[0].ok_height == 0);
    }

    #[test]
    fn the_sign_in_chart_is_svg_and_locations_carry_the_attribution() {
        let record = SignInRecord {
            id: "r1".into(),
            created_date_time: NOW.plus_seconds(-600),
            user_id: None,
            user_principal_name: "bobby@latchkey.test".into(),
            user_display_name: None,
            app_id: None,
            app_display_name: Some("My Apps".into()),
            ip_address: Some("203.0.113.9".into()),
            location: None,
            authentication_method: "temporaryAccessPass".into(),
            status: latchkey_domain::log::SignInStatus {
                error_code: 50126,
                failure_reason: Some("Invalid user name, pass or password.".into()),
                additional_details: None,
            },
            authentication_details: vec![],
        };
        let records = vec![record];
        let html = SignInsPage {
            frame: Frame::for_tests(),
            since: "24h".into(),
            user: String::new(),
            app: String::new(),
            statuses: vec![],
            methods: vec![],
            rows: records.iter().map(sign_in_row).collect(),
            total: 1,
            capped: false,
            chart: Some(chart(&records, NOW.plus_seconds(-86_400), NOW)),
        }
        .render()
        .unwrap();
        assert!(!html.contains(" style="));
        assert!(html.contains("<svg") && html.contains("<rect class=\"failed\""));
        assert!(html.contains("<a href='https://db-ip.com'>IP Geolocation by DB-IP</a>"));
        assert!(html.contains("href=\"/admin/logs/signins/r1\""));
        assert!(html.contains("Failure 50126"));
    }
}
