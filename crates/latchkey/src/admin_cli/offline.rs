//! `latchkey admin --offline tokens …`: administrator tokens made, listed and revoked on the
//! data directory itself, for recovery when every token is lost. It opens the database the
//! server uses (stop the server first) and goes through the same domain calls, so the keyed
//! hash, the validation and the audit record are the server's own.

use std::path::Path;
use std::sync::Arc;

use latchkey_domain::clock::SystemClock;
use latchkey_domain::log::Actor;
use latchkey_domain::notify::NoEventBus;
use latchkey_domain::service::NewAdminToken;
use latchkey_domain::{DomainError, Latchkey, Settings};
use latchkey_store::SqliteStore;
use latchkey_store::sqlite::DATABASE_FILE;
use serde_json::{Value, json};

use super::{Failure, OfflineTokenAction, TOKEN_COLUMNS, expiry_in_days, print_json, print_table};

/// Who the audit log names for a change made here.
fn actor() -> Actor {
    Actor::user("command-line")
}

fn refused(e: DomainError) -> Failure {
    Failure::Refused(e.to_string())
}

pub(crate) async fn run(
    data_dir: &Path,
    action: OfflineTokenAction,
    as_json: bool,
) -> Result<(), Failure> {
    // Never create a database: a wrong directory must fail, not start an empty server.
    if !data_dir.join(DATABASE_FILE).is_file() {
        return Err(Failure::Usage(format!(
            "{} holds no Latchkey database ({DATABASE_FILE}); give the server's --data-dir",
            data_dir.display()
        )));
    }
    let store = SqliteStore::open(data_dir)
        .await
        .map_err(|e| Failure::Usage(format!("opening {}: {e}", data_dir.display())))?;
    // The issuer plays no part in token commands.
    let latchkey = Latchkey::new(
        Arc::new(store),
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
