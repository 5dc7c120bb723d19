//! `latchkey admin …`: the admin API from the command line. Exit codes: 0 done, 1 the server
//! refused (its message is printed), 2 usage or configuration error, 3 the server was not reached.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use latchkey_api::{Client, ClientError};
use latchkey_domain::clock::{Clock, SystemClock};

use crate::config::Config;

mod campaign;
mod logs;
mod offline;
mod output;
mod policy;
#[cfg(test)]
mod tests;

use logs::LogAction;
use output::{Column, print_rows, text};
pub(crate) use output::{print_json, print_table};
use policy::PolicySet;

#[derive(Args)]
pub struct AdminArgs {
    /// The server's base URL (default: from the configuration's listen, or its public_url
    /// with TLS).
    #[arg(long, env = "LATCHKEY_URL")]
    url: Option<String>,
    /// An administrator API token (default: the one saved in the data directory).
    #[arg(long, env = "LATCHKEY_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The server's data directory, for the saved token and --offline (default: the
    /// configuration's data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Open the database the configuration names (the SQLite file in the data directory, or
    /// PostgreSQL at database_url) directly instead of calling the server, for recovery when
    /// every administrator token is lost. With SQLite, stop the server first. Only `tokens`
    /// commands.
    #[arg(long)]
    offline: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Users.
    Users {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Groups and their members.
    Groups {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Applications (OpenID Connect clients).
    Apps {
        #[command(subcommand)]
        action: AppAction,
    },
    /// Temporary Access Passes.
    Passes {
        #[command(subcommand)]
        action: PassAction,
    },
    /// The authentication methods policy.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// The sign-in log and the audit log.
    Logs {
        #[command(subcommand)]
        action: LogAction,
    },
    /// Administrator API tokens (with --offline, on the data directory itself).
    Tokens {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Every token with its state; never the secrets.
    List,
    /// Makes a named token and prints it once.
    Create {
        name: String,
        /// Days until it expires (1 to 730); without it the token does not expire.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=730))]
        expires_in_days: Option<u32>,
    },
    /// Revokes a token by id: its next request is refused.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum UserAction {
    List,
    Create {
        upn: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        mail: Option<String>,
    },
    Show {
        user: String,
    },
    Disable {
        user: String,
    },
    Enable {
        user: String,
    },
    /// Reads the new password from standard input.
    SetPassword {
        user: String,
    },
    /// Which authentication methods the policy allows the user, in which mode, and why.
    EffectivePolicy {
        user: String,
    },
}

#[derive(Subcommand)]
enum GroupAction {
    List,
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    Members {
        group: String,
    },
    AddMember {
        group: String,
        user: String,
    },
    RemoveMember {
        group: String,
        user: String,
    },
}

#[derive(Subcommand)]
enum AppAction {
    List,
    Create {
        name: String,
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long)]
        public: bool,
        #[arg(long, value_parser = ["RS256", "ES256"])]
        alg: Option<String>,
        #[arg(long)]
        home_url: Option<String>,
        /// The authentication strength a sign-in must meet before the application gets a code.
        #[arg(long, value_parser = STRENGTHS)]
        required_strength: Option<String>,
        /// A browser origin (https://spa.example) besides the redirect URIs' that may call the
        /// token endpoints (CORS); repeatable.
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
    },
    Show {
        app: String,
    },
    /// Set the authentication strength an application requires (`none` for none).
    Strength {
        app: String,
        #[arg(value_parser = ["none", "mfa", "passwordlessMfa", "phishingResistantMfa"])]
        strength: String,
    },
    Delete {
        app: String,
    },
}

#[derive(Subcommand)]
enum PassAction {
    Create {
        user: String,
        #[arg(long)]
        lifetime_minutes: Option<u32>,
        #[arg(long)]
        one_time: bool,
        #[arg(long)]
        length: Option<u32>,
    },
    Show {
        user: String,
    },
    Delete {
        user: String,
    },
}

#[derive(Subcommand)]
enum PolicyAction {
    /// Without METHOD, a summary of every method; with it, that method's configuration (JSON).
    Show {
        /// authenticator, fido2, temporaryAccessPass, x509Certificate or password.
        method: Option<String>,
    },
    /// Change a method: the authenticator app with the options below (a JSON merge patch),
    /// or any method from a JSON document with --json (replaces the whole configuration).
    Set(PolicySet),
    /// Restore a method's documented default configuration.
    Reset {
        /// authenticator, fido2, temporaryAccessPass, x509Certificate or password.
        method: String,
    },
    /// The registration campaign: nudge users without the authenticator app to set it up.
    Campaign {
        #[command(subcommand)]
        action: campaign::CampaignAction,
    },
}

#[derive(Debug)]
pub(crate) enum Failure {
    Refused(String),
    Unreachable(String),
    Usage(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Unreachable { .. } => Failure::Unreachable(e.to_string()),
            ClientError::Refused { .. } | ClientError::Unexpected { .. } => {
                Failure::Refused(e.to_string())
            }
        }
    }
}

pub async fn run(args: AdminArgs, config: anyhow::Result<Config>) -> ExitCode {
    match execute(args, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Unreachable(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(3)
        }
    }
}

/// Prints one list answer: `{"value": [...]}` with `--json`, otherwise a table.
fn show_list<T: serde::Serialize>(as_json: bool, items: &[T], columns: &[Column<T>]) {
    if as_json {
        print_json(&serde_json::json!({ "value": items }));
    } else {
        print_rows(items, columns);
    }
}

/// Prints one single answer: its JSON with `--json`, otherwise a one-row table.
fn show_one<T: serde::Serialize>(as_json: bool, item: &T, columns: &[Column<T>]) {
    if as_json {
        print_json(item);
    } else {
        print_rows(std::slice::from_ref(item), columns);
    }
}

/// The server's configuration as the command line needs it: a configuration that failed to
/// load is reported only when something has to be read from it.
fn configuration(config: &anyhow::Result<Config>) -> Result<&Config, Failure> {
    config.as_ref().map_err(|e| {
        Failure::Usage(format!(
            "{e:#} (the command reads the server's configuration for its URL, token and database; \
             give --url and --token to do without)"
        ))
    })
}

/// The URL to call: `--url`/`LATCHKEY_URL`, else the server's own listen address (loopback
/// for an unspecified one), else with TLS its public URL (the name its certificate carries).
fn server_url(
    args_url: Option<String>,
    config: &anyhow::Result<Config>,
) -> Result<(String, String), Failure> {
    if let Some(url) = args_url {
        return Ok((url, given_as("--url", "LATCHKEY_URL").to_string()));
    }
    let config = configuration(config)?;
    if config.tls.is_some() {
        return Ok((
            config.public_url.trim_end_matches('/').to_string(),
            "the configuration's public_url (TLS is on)".to_string(),
        ));
    }
    let addr = config
        .listen_addr()
        .map_err(|e| Failure::Usage(format!("{e:#}")))?;
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let url = format!("http://{}", std::net::SocketAddr::new(ip, addr.port()));
    Ok((url, "the configuration's listen".to_string()))
}

/// Whether a value came from the command line's `flag` or else from the `variable` (clap
/// takes the flag first); told from the arguments, so no value is compared.
fn given_as(flag: &'static str, variable: &'static str) -> &'static str {
    let prefix = format!("{flag}=");
    if std::env::args().any(|arg| arg == flag || arg.starts_with(&prefix)) {
        flag
    } else {
        variable
    }
}

/// The data directory: `--data-dir`, else the configuration's `data_dir`.
fn data_dir(
    args_dir: Option<PathBuf>,
    config: &anyhow::Result<Config>,
) -> Result<PathBuf, Failure> {
    match args_dir {
        Some(dir) => Ok(dir),
        None => Ok(configuration(config)?.data_dir.clone()),
    }
}

async fn execute(args: AdminArgs, config: anyhow::Result<Config>) -> Result<(), Failure> {
    if args.offline {
        let as_json = args.json;
        let data_dir_flag = args.data_dir.clone();
        let action = args.command_for_offline()?;
        let mut config = configuration(&config)?.clone();
        if let Some(dir) = data_dir_flag {
            config.data_dir = dir;
        }
        return offline::run(&config, action, as_json).await;
    }
    let (url, url_source) = server_url(args.url, &config)?;
    let (token, token_source) = match args.token {
        Some(token) => (
            token,
            given_as("--token", "LATCHKEY_ADMIN_TOKEN").to_string(),
        ),
        None => {
            let file = data_dir(args.data_dir, &config)?.join("admin-token");
            let token = std::fs::read_to_string(&file)
                .map(|t| t.trim().to_string())
                .map_err(|_| {
                    Failure::Usage(format!(
                        "no --token given (nor LATCHKEY_ADMIN_TOKEN) and no token saved in {}",
                        file.display()
                    ))
                })?;
            (token, file.display().to_string())
        }
    };
    // Standard error, so that standard output stays the answer alone (tables, --json).
    eprintln!("Calling {url} (from {url_source}) with the token from {token_source}.");
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let client = Client::new(http, &url, &token);
    let json = args.json;
    match args.command {
        AdminCommand::Users { action } => users_command(&client, action, json).await,
        AdminCommand::Groups { action } => groups_command(&client, action, json).await,
        AdminCommand::Apps { action } => apps_command(&client, action, json).await,
        AdminCommand::Passes { action } => passes_command(&client, action, json).await,
        AdminCommand::Policy { action } => policy::command(&client, action, json).await,
        AdminCommand::Logs { action } => logs::command(&client, action, json).await,
        AdminCommand::Tokens { action } => tokens_command(&client, action, json).await,
    }
}

const USER_ID: Column<latchkey_api::User> = ("id", |u| u.id.clone());
const USER_UPN: Column<latchkey_api::User> =
    ("userPrincipalName", |u| u.user_principal_name.clone());
const USER_NAME: Column<latchkey_api::User> = ("displayName", |u| u.display_name.clone());
const USER_ENABLED: Column<latchkey_api::User> =
    ("accountEnabled", |u| u.account_enabled.to_string());

async fn users_command(client: &Client, action: UserAction, json: bool) -> Result<(), Failure> {
    use latchkey_api::{NewUser, UserPatch};
    match action {
        UserAction::List => show_list(
            json,
            &client.list_users().await?,
            &[USER_ID, USER_UPN, USER_NAME, USER_ENABLED],
        ),
        UserAction::Create { upn, name, mail } => {
            let new = NewUser {
                user_principal_name: upn,
                display_name: name,
                mail,
                account_enabled: true,
            };
            let user = client.create_user(&new).await?;
            show_one(json, &user, &[USER_ID, USER_UPN, USER_NAME]);
        }
        UserAction::Show { user } => show_one(
            json,
            &client.user(&user).await?,
            &[
                USER_ID,
                USER_UPN,
                USER_NAME,
                ("mail", |u| text(&u.mail)),
                USER_ENABLED,
            ],
        ),
        UserAction::Disable { user } => {
            let patch = UserPatch {
                account_enabled: Some(false),
                ..UserPatch::default()
            };
            let user = client.update_user(&user, &patch).await?;
            show_one(json, &user, &[USER_UPN, USER_ENABLED]);
        }
        UserAction::Enable { user } => {
            let patch = UserPatch {
                account_enabled: Some(true),
                ..UserPatch::default()
            };
            let user = client.update_user(&user, &patch).await?;
            show_one(json, &user, &[USER_UPN, USER_ENABLED]);
        }
        UserAction::SetPassword { user } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| Failure::Usage(format!("reading the password: {e}")))?;
            let password = password.trim_end_matches(['\r', '\n']);
            client.set_password(&user, password).await?;
            println!("Password set.");
        }
        UserAction::EffectivePolicy { user } => {
            let policy = client.effective_policy(&user).await?;
            if json {
                print_json(&policy);
            } else {
                policy::print_effective_policy(&policy);
            }
        }
    }
    Ok(())
}

const GROUP_ID: Column<latchkey_api::Group> = ("id", |g| g.id.clone());
const GROUP_NAME: Column<latchkey_api::Group> = ("displayName", |g| g.display_name.clone());

async fn groups_command(client: &Client, action: GroupAction, json: bool) -> Result<(), Failure> {
    match action {
        GroupAction::List => show_list(
            json,
            &client.list_groups().await?,
            &[
                GROUP_ID,
                GROUP_NAME,
                ("description", |g| g.description.clone()),
            ],
        ),
        GroupAction::Create { name, description } => {
            let new = latchkey_api::NewGroup {
                display_name: name,
                description,
            };
            show_one(
                json,
                &client.create_group(&new).await?,
                &[GROUP_ID, GROUP_NAME],
            );
        }
        GroupAction::Members { group } => show_list(
            json,
            &client.members(&group).await?,
            &[USER_ID, USER_UPN, USER_NAME],
        ),
        GroupAction::AddMember { group, user } => {
            client.add_member(&group, &user).await?;
            println!("Added {user} to {group}.");
        }
        GroupAction::RemoveMember { group, user } => {
            client.remove_member(&group, &user).await?;
            println!("Removed {user} from {group}.");
        }
    }
    Ok(())
}

/// The authentication strengths' ids, as the admin API spells them.
const STRENGTHS: [&str; 3] = ["mfa", "passwordlessMfa", "phishingResistantMfa"];

const APP_ID: Column<latchkey_api::Application> = ("appId", |a| a.app_id.clone());
const APP_NAME: Column<latchkey_api::Application> = ("displayName", |a| a.display_name.clone());
const APP_PUBLIC: Column<latchkey_api::Application> =
    ("publicClient", |a| a.public_client.to_string());
const APP_STRENGTH: Column<latchkey_api::Application> =
    ("requiredStrength", |a| text(&a.required_strength));

async fn apps_command(client: &Client, action: AppAction, json: bool) -> Result<(), Failure> {
    match action {
        AppAction::List => show_list(
            json,
            &client.list_applications().await?,
            &[
                APP_ID,
                APP_NAME,
                APP_PUBLIC,
                ("idTokenSigningAlg", |a| a.id_token_signing_alg.clone()),
            ],
        ),
        AppAction::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            alg,
            home_url,
            required_strength,
            allowed_origins,
        } => {
            let new = latchkey_api::NewApplication {
                display_name: name,
                redirect_uris,
                post_logout_redirect_uris,
                public_client: public,
                id_token_signing_alg: alg,
                home_url,
                required_strength,
                allowed_origins,
                groups_claim: None,
                assignment_required: false,
                backchannel_logout_uri: None,
            };
            let app = client.register_application(&new).await?;
            if !json && app.client_secret.is_some() {
                println!("The client secret is shown only now; store it safely.");
            }
            show_one(
                json,
                &app,
                &[
                    ("appId", |a| a.application.app_id.clone()),
                    ("displayName", |a| a.application.display_name.clone()),
                    ("clientSecret", |a| text(&a.client_secret)),
                ],
            );
        }
        AppAction::Show { app } => show_one(
            json,
            &client.application(&app).await?,
            &[
                APP_ID,
                APP_NAME,
                ("redirectUris", |a| output::list(&a.redirect_uris)),
                APP_PUBLIC,
                APP_STRENGTH,
            ],
        ),
        AppAction::Strength { app, strength } => {
            let strength = (strength != "none").then_some(strength.as_str());
            let app = client.set_required_strength(&app, strength).await?;
            show_one(json, &app, &[APP_ID, APP_NAME, APP_STRENGTH]);
        }
        AppAction::Delete { app } => {
            client.delete_application(&app).await?;
            println!("Deleted {app}.");
        }
    }
    Ok(())
}

async fn passes_command(client: &Client, action: PassAction, json: bool) -> Result<(), Failure> {
    match action {
        PassAction::Create {
            user,
            lifetime_minutes,
            one_time,
            length,
        } => {
            // Unset options are left out, so the server's policy defaults apply.
            let request = latchkey_api::TemporaryAccessPassRequest {
                start_date_time: None,
                lifetime_in_minutes: lifetime_minutes,
                is_usable_once: one_time.then_some(true),
                length,
            };
            let pass = client.issue_pass(&user, &request).await?;
            show_one(
                json,
                &pass,
                &[
                    ("temporaryAccessPass", |p| p.temporary_access_pass.clone()),
                    ("startDateTime", |p| p.pass.start_date_time.clone()),
                    ("lifetimeInMinutes", |p| {
                        p.pass.lifetime_in_minutes.to_string()
                    }),
                    ("isUsableOnce", |p| p.pass.is_usable_once.to_string()),
                ],
            );
        }
        PassAction::Show { user } => show_one(
            json,
            &client.pass(&user).await?,
            &[
                ("startDateTime", |p| p.start_date_time.clone()),
                ("lifetimeInMinutes", |p| p.lifetime_in_minutes.to_string()),
                ("isUsableOnce", |p| p.is_usable_once.to_string()),
                ("methodUsabilityReason", |p| {
                    p.method_usability_reason.clone()
                }),
            ],
        ),
        PassAction::Delete { user } => {
            client.delete_pass(&user).await?;
            println!("Deleted the pass of {user}.");
        }
    }
    Ok(())
}

/// The columns a token listing shows.
pub(crate) const TOKEN_COLUMNS: &[&str] = &[
    "id",
    "displayName",
    "status",
    "expiresDateTime",
    "lastUsedDateTime",
];

const TOKEN_ROW: [Column<latchkey_api::AdminToken>; 5] = [
    ("id", |t| t.id.clone()),
    ("displayName", |t| t.display_name.clone()),
    ("status", |t| output::cell(&t.status)),
    ("expiresDateTime", |t| text(&t.expires_date_time)),
    ("lastUsedDateTime", |t| text(&t.last_used_date_time)),
];

async fn tokens_command(client: &Client, action: TokenAction, json: bool) -> Result<(), Failure> {
    match action {
        TokenAction::List => show_list(json, &client.list_admin_tokens().await?, &TOKEN_ROW),
        TokenAction::Create {
            name,
            expires_in_days,
        } => {
            let new = latchkey_api::NewAdminToken {
                display_name: name,
                expires_date_time: expires_in_days.map(expiry_in_days),
            };
            let token = client.create_admin_token(&new).await?;
            if !json {
                println!("The token is shown only now; store it safely.");
            }
            show_one(
                json,
                &token,
                &[
                    ("id", |t| t.admin_token.id.clone()),
                    ("displayName", |t| t.admin_token.display_name.clone()),
                    ("expiresDateTime", |t| {
                        text(&t.admin_token.expires_date_time)
                    }),
                    ("token", |t| t.token.clone()),
                ],
            );
        }
        TokenAction::Revoke { id } => {
            show_one(json, &client.revoke_admin_token(&id).await?, &TOKEN_ROW)
        }
    }
    Ok(())
}

/// An RFC 3339 expiry `days` from now.
pub(crate) fn expiry_in_days(days: u32) -> String {
    SystemClock
        .now()
        .plus_seconds(i64::from(days) * 86_400)
        .to_rfc3339()
}

/// What an offline run may do: only token commands.
pub(crate) enum OfflineTokenAction {
    List,
    Create {
        name: String,
        expires_in_days: Option<u32>,
    },
    Revoke {
        id: String,
    },
}

impl AdminArgs {
    fn command_for_offline(self) -> Result<OfflineTokenAction, Failure> {
        match self.command {
            AdminCommand::Tokens { action } => Ok(match action {
                TokenAction::List => OfflineTokenAction::List,
                TokenAction::Create {
                    name,
                    expires_in_days,
                } => OfflineTokenAction::Create {
                    name,
                    expires_in_days,
                },
                TokenAction::Revoke { id } => OfflineTokenAction::Revoke { id },
            }),
            _ => Err(Failure::Usage(
                "--offline works only with tokens commands; start the server for the others".into(),
            )),
        }
    }
}
