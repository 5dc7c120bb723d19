//! `latchkey admin --offline tokens …`: administrator tokens made, listed and revoked on the
//! database itself, for recovery when every token is lost. It opens the database the
//! configuration names — the SQLite file in the data directory (stop the server first) or
//! PostgreSQL at `database_url` — and goes through the same domain calls, so the keyed hash,
//! the validation and the audit record are the server's own.

use std::sync::Arc;

use latchkey_domain::clock::SystemClock;
use latchkey_domain::log::Actor;
use latchkey_domain::notify::NoEventBus;
use latchkey_domain::service::NewAdminToken;
use latchkey_domain::{DomainError, Latchkey, Settings};
use latchkey_store::sqlite::DATABASE_FILE;
use serde_json::{Value, json};

use super::{Failure, OfflineTokenAction, TOKEN_COLUMNS, expiry_in_days, print_json, print_table};
use crate::config::{Config, Database};

/// Who the audit log names for a change made here.
fn actor() -> Actor {
    Actor::user("command-line")
}

fn refused(e: DomainError) -> Failure {
    Failure::Refused(e.to_string())
}

pub(crate) async fn run(
    config: &Config,
    action: OfflineTokenAction,
    as_json: bool,
) -> Result<(), Failure> {
    let database = config
        .database()
        .map_err(|e| Failure::Usage(format!("{e:#}")))?;
    let data_dir = &config.data_dir;
    match database {
        // Never create a database: a wrong directory must fail, not start an empty server.
        Database::Sqlite if !data_dir.join(DATABASE_FILE).is_file() => {
            return Err(Failure::Usage(format!(
                "{} holds no Latchkey database ({DATABASE_FILE}); give the server's --data-dir \
                 (or its configuration with --config)",
                data_dir.display()
            )));
        }
        Database::Sqlite => eprintln!("Opening the SQLite database in {}.", data_dir.display()),
        // The URL is not printed: it may hold a password.
        Database::Postgres(_) => eprintln!("Opening the PostgreSQL database at database_url."),
    }
    let store = crate::server::open_store(config)
        .await
        .map_err(|e| Failure::Usage(format!("{e:#}")))?;
    // The issuer plays no part in token commands.
    let latchkey = Latchkey::new(
        store,
        Arc::new(SystemClock),
        Arc::new(NoEventBus),
        Settings::with_issuer("http://offline.invalid"),
    );
    let now = latchkey.now();
    match action {
        OfflineTokenAction::List => {
            let tokens = latchkey
                .governance
                .list_admin_tokens()
                .await
                .map_err(refused)?;
            let rows: Vec<Value> = tokens.iter().map(|t| t.summary(now)).collect();
            if as_json {
                print_json(&json!({"value": rows}));
            } else {
                print_table(&rows, TOKEN_COLUMNS);
            }
        }
        OfflineTokenAction::Create {
            name,
            expires_in_days,
        } => {
            let new = NewAdminToken {
                display_name: name,
                expires_date_time: expires_in_days.map(expiry_in_days),
            };
            let (token, secret) = latchkey
                .governance
                .create_admin_token(&actor(), new)
                .await
                .map_err(refused)?;
            if as_json {
                let mut body = token.summary(now);
                body["token"] = json!(secret.expose());
                print_json(&body);
            } else {
                println!(
                    "Created the administrator API token {} (id {}). It is shown only now:",
                    token.name, token.id
                );
                println!("  {}", secret.expose());
            }
        }
        OfflineTokenAction::Revoke { id } => {
            let token = latchkey
                .governance
                .revoke_admin_token(&actor(), &id)
                .await
                .map_err(refused)?;
            if as_json {
                print_json(&token.summary(now));
            } else {
                print_table(&[token.summary(now)], TOKEN_COLUMNS);
            }
        }
    }
    Ok(())
}
