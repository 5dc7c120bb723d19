//! `latchkey admin logs …`: the sign-in log and the audit log.

use clap::{Args, Subcommand, ValueEnum};
use latchkey_api::{AuditEvent, Client, LogParameters, SignInRecord};
use latchkey_domain::clock::{Clock, SystemClock, parse_time};
use latchkey_domain::policy::MethodKind;

use super::Failure;
use super::output::{Column, print_json, print_raw, print_rows, text};

#[derive(Subcommand)]
pub(super) enum LogAction {
    /// Sign-ins, newest first.
    Signins {
        #[command(flatten)]
        common: LogOptions,
        /// An application's appId or display name.
        #[arg(long)]
        app: Option<String>,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// authenticator, fido2, temporaryAccessPass, x509Certificate or password.
        #[arg(long)]
        method: Option<String>,
    },
    /// Administrative changes, newest first.
    Audit {
        #[command(flatten)]
        common: LogOptions,
        /// UserManagement, GroupManagement, ApplicationManagement, Policy, KeyManagement,
        /// UserAuthenticationMethods or IdentityProtection.
        #[arg(long)]
        category: Option<String>,
    },
}

#[derive(Args)]
pub(super) struct LogOptions {
    /// From when: RFC 3339 (2026-11-29T10:00:00Z), a date, Unix seconds, or a span back from
    /// now (15m, 1h, 7d).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Until when (not included); same forms as --since.
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// Sign-ins: a user id or user principal name. Audit: the actor or the target.
    #[arg(long)]
    user: Option<String>,
    /// How many records (1 to 1000; the server's default is 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    top: Option<u32>,
    /// Skip this many of the newest matching records (paging).
    #[arg(long, value_name = "N")]
    skip: Option<u32>,
    #[arg(long, value_enum, default_value_t = LogFormat::Table)]
    format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum StatusArg {
    Success,
    Failure,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum LogFormat {
    /// A tab-separated table.
    Table,
    /// The API's JSON, pretty-printed.
    Json,
    /// One JSON record a line, as the server sends it.
    Jsonl,
    /// CSV, as the server sends it.
    Csv,
}

const AUDIT_CATEGORIES: [&str; 7] = [
    "UserManagement",
    "GroupManagement",
    "ApplicationManagement",
    "Policy",
    "KeyManagement",
    "UserAuthenticationMethods",
    "IdentityProtection",
];

/// The parameters of a log request. Times are checked here (so a typo is a usage error) but
/// sent as typed: spans such as `1h` are counted back from the server's clock.
pub(super) fn log_query(
    options: &LogOptions,
    filters: LogParameters,
    now: latchkey_domain::clock::Timestamp,
) -> Result<LogParameters, Failure> {
    for (name, value) in [("since", &options.since), ("until", &options.until)] {
        if let Some(value) = value
            && parse_time(value, now).is_none()
        {
            return Err(Failure::Usage(format!(
                "--{name} {value:?}: use RFC 3339 (2026-11-29T10:00:00Z), a date, Unix \
                 seconds, or a span such as 15m, 1h or 7d"
            )));
        }
    }
    Ok(LogParameters {
        since: options.since.as_deref().map(|v| v.trim().to_string()),
        until: options.until.as_deref().map(|v| v.trim().to_string()),
        user: options.user.clone(),
        top: options.top,
        skip: options.skip,
        format: match options.format {
            LogFormat::Jsonl => Some("jsonl".into()),
            LogFormat::Csv => Some("csv".into()),
            LogFormat::Table | LogFormat::Json => None,
        },
        ..filters
    })
}

/// A sign-in as a table row, read like the console shows it.
#[derive(Debug, PartialEq)]
pub(super) struct SignInRow {
    pub time: String,
    pub user: String,
    pub app: Option<String>,
    pub ip: Option<String>,
    pub location: Option<String>,
    pub method: String,
    pub result: String,
}

pub(super) fn sign_in_row(record: &SignInRecord) -> SignInRow {
    let place: Vec<&str> = record
        .location
        .iter()
        .flat_map(|l| {
            let country = l.country_name.as_deref().or(l.country_or_region.as_deref());
            [l.city.as_deref(), country]
        })
        .flatten()
        .filter(|part| !part.trim().is_empty())
        .collect();
    let result = match record.status.error_code {
        0 => "Success".to_string(),
        code => format!(
            "{code} {}",
            record.status.failure_reason.as_deref().unwrap_or_default()
        )
        .trim_end()
        .to_string(),
    };
    SignInRow {
        time: record.created_date_time.clone(),
        user: record.user_principal_name.clone(),
        app: record
            .app_display_name
            .clone()
            .or_else(|| record.app_id.clone()),
        ip: record.ip_address.clone(),
        location: (!place.is_empty()).then(|| place.join(", ")),
        method: record.authentication_method.clone(),
        result,
    }
}

const SIGN_IN_COLUMNS: [Column<SignInRow>; 7] = [
    ("time", |r| r.time.clone()),
    ("user", |r| r.user.clone()),
    ("app", |r| text(&r.app)),
    ("ip", |r| text(&r.ip)),
    ("location", |r| text(&r.location)),
    ("method", |r| r.method.clone()),
    ("result", |r| r.result.clone()),
];

const AUDIT_COLUMNS: [Column<AuditEvent>; 5] = [
    ("time", |e| e.activity_date_time.clone()),
    ("actor", |e| e.actor.clone()),
    ("category", |e| e.category.clone()),
    ("activity", |e| e.activity.clone()),
    ("target", |e| e.target.clone()),
];

pub(super) async fn command(
    client: &Client,
    action: LogAction,
    as_json: bool,
) -> Result<(), Failure> {
    let now = SystemClock.now();
    let (log, options, filters) = match action {
        LogAction::Signins {
            common,
            app,
            status,
            method,
        } => {
            let filters = LogParameters {
                app,
                status: status.map(|s| {
                    match s {
                        StatusArg::Success => "success",
                        StatusArg::Failure => "failure",
                    }
                    .to_string()
                }),
                method: match method {
                    Some(method) => Some(
                        MethodKind::parse(&method)
                            .map_err(|e| Failure::Usage(e.to_string()))?
                            .id()
                            .to_string(),
                    ),
                    None => None,
                },
                ..LogParameters::default()
            };
            ("signIns", common, filters)
        }
        LogAction::Audit { common, category } => {
            let category = match category {
                Some(category) => Some(
                    AUDIT_CATEGORIES
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(category.trim()))
                        .ok_or_else(|| {
                            Failure::Usage(format!(
                                "--category {category:?}: use one of {}",
                                AUDIT_CATEGORIES.join(", ")
                            ))
                        })?
                        .to_string(),
                ),
                None => None,
            };
            let filters = LogParameters {
                category,
                ..LogParameters::default()
            };
            ("directoryAudits", common, filters)
        }
    };
    let query = log_query(&options, filters, now)?;
    match (options.format, log) {
        (LogFormat::Jsonl | LogFormat::Csv, _) => {
            print_raw(&client.export_log(log, &query).await?);
        }
        (LogFormat::Json | LogFormat::Table, "signIns") => {
            let records = client.sign_ins(&query).await?;
            if options.format == LogFormat::Json || as_json {
                print_json(&serde_json::json!({ "value": records }));
            } else {
                let rows: Vec<SignInRow> = records.iter().map(sign_in_row).collect();
                print_rows(&rows, &SIGN_IN_COLUMNS);
            }
        }
        (LogFormat::Json | LogFormat::Table, _) => {
            let events = client.directory_audits(&query).await?;
            if options.format == LogFormat::Json || as_json {
                print_json(&serde_json::json!({ "value": events }));
            } else {
                print_rows(&events, &AUDIT_COLUMNS);
            }
        }
    }
    Ok(())
}
