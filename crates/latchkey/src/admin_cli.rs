//! `latchkey admin …`: the admin API from the command line. Exit codes: 0 done, 1 the server
//! refused (its message is printed), 2 usage or configuration error, 3 the server was not reached.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use latchkey_domain::clock::{Clock, SystemClock, parse_time};
use latchkey_domain::policy::{ALL_USERS, MethodKind};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Args)]
pub struct AdminArgs {
    /// The server's base URL.
    #[arg(long, env = "LATCHKEY_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An administrator API token (defaults to the one saved in the data directory).
    #[arg(long, env = "LATCHKEY_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to find the saved token when --token is not given.
    #[arg(long, env = "LATCHKEY_DATA_DIR", default_value = "./latchkey-data")]
    data_dir: PathBuf,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Open the database in --data-dir directly instead of calling the server, for recovery
    /// when every administrator token is lost. Stop the server first. Only `tokens` commands.
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
    },
    Show {
        app: String,
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
}

#[derive(Args)]
struct PolicySet {
    /// authenticator, fido2, temporaryAccessPass, x509Certificate or password.
    method: String,
    /// Replace the whole configuration with the JSON in FILE ("-" reads standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "authenticator_options")]
    json: Option<String>,
    #[command(flatten)]
    options: AuthenticatorOptions,
}

/// The authenticator app's settings. Options left out are left as they are.
#[derive(Args, Debug, Default, Clone)]
#[group(id = "authenticator_options", multiple = true)]
struct AuthenticatorOptions {
    /// Turn the method on or off.
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    /// Who may use the app: "all" (every user) or a group id or display name. Replaces the
    /// include targets with this one (keeping the current mode unless --mode is given).
    #[arg(long, value_name = "all|GROUP")]
    target: Option<String>,
    /// any: push and phone sign-in; push: second factor only; passwordless: phone sign-in only.
    /// Replaces the include targets with one (keeping the current target unless --target is
    /// given).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// A group (id or display name) that may not use the app; repeat for more. Replaces the
    /// current exclusions.
    #[arg(long = "exclude", value_name = "GROUP")]
    exclude: Vec<String>,
    /// Remove every exclusion.
    #[arg(long, conflicts_with = "exclude")]
    no_exclusions: bool,
    /// Require number matching (always on; "disabled" is refused).
    #[arg(long, value_enum, value_name = "STATE")]
    number_matching: Option<FeatureArg>,
    /// Show the application name in notifications.
    #[arg(long, value_enum, value_name = "STATE")]
    show_app_name: Option<FeatureArg>,
    /// Show the sign-in's geographic location in notifications.
    #[arg(long, value_enum, value_name = "STATE")]
    show_location: Option<FeatureArg>,
    /// Let users report a sign-in they did not start.
    #[arg(long, value_enum, value_name = "STATE")]
    report_suspicious: Option<FeatureArg>,
    /// Don't push notifications for unusual sign-ins (a new country, or soon after a denial);
    /// the user opens the app to find them. Default is off.
    #[arg(long, value_enum, value_name = "STATE")]
    suppress_unusual: Option<FeatureArg>,
}

impl AuthenticatorOptions {
    fn is_empty(&self) -> bool {
        self.state.is_none()
            && self.target.is_none()
            && self.mode.is_none()
            && self.exclude.is_empty()
            && !self.no_exclusions
            && self.features().is_empty()
    }

    /// The feature options given: (field under `featureSettings`, state).
    fn features(&self) -> Vec<(&'static str, FeatureArg)> {
        let states = [
            self.number_matching,
            self.show_app_name,
            self.show_location,
            self.report_suspicious,
            self.suppress_unusual,
        ];
        FEATURE_FIELDS
            .iter()
            .zip(states)
            .filter_map(|((field, _), state)| state.map(|s| (*field, s)))
            .collect()
    }

    /// Every group named by the options (not "all"): these need looking up.
    fn named_groups(&self) -> impl Iterator<Item = &String> {
        self.target
            .iter()
            .filter(|t| !is_all_users(t))
            .chain(self.exclude.iter())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StateArg {
    Enabled,
    Disabled,
}

impl StateArg {
    fn as_str(self) -> &'static str {
        match self {
            StateArg::Enabled => "enabled",
            StateArg::Disabled => "disabled",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Any,
    Push,
    Passwordless,
}

impl ModeArg {
    /// The API's (Graph's) name for the mode.
    fn as_str(self) -> &'static str {
        match self {
            ModeArg::Any => "any",
            ModeArg::Push => "push",
            ModeArg::Passwordless => "deviceBasedPush",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FeatureArg {
    Default,
    Enabled,
    Disabled,
}

impl FeatureArg {
    fn as_str(self) -> &'static str {
        match self {
            FeatureArg::Default => "default",
            FeatureArg::Enabled => "enabled",
            FeatureArg::Disabled => "disabled",
        }
    }
}

#[derive(Subcommand)]
enum LogAction {
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
struct LogOptions {
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
enum StatusArg {
    Success,
    Failure,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
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

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

#[derive(Debug)]
pub(crate) enum Failure {
    Refused(String),
    Unreachable(String),
    Usage(String),
}

impl Client {
    /// Sends a request; on success returns the body as text.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, Failure> {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Unreachable(format!("could not reach {}: {e}", self.base)))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(text);
        }
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = value["error"]["message"]
            .as_str()
            .unwrap_or("the server refused the request");
        let code = value["error"]["code"].as_str().unwrap_or("error");
        Err(Failure::Refused(format!(
            "{message} ({code}, HTTP {})",
            status.as_u16()
        )))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let text = self.send(method, path, body).await?;
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        })
    }

    /// Every group (for turning display names into ids and back).
    async fn groups(&self) -> Result<Vec<Value>, Failure> {
        let list = self.call(Method::GET, "/groups", None).await?;
        Ok(list["value"].as_array().cloned().unwrap_or_default())
    }
}

fn encode(segment: &str) -> String {
    // Form encoding writes spaces as '+', which a path reads literally.
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

pub async fn run(args: AdminArgs) -> ExitCode {
    match execute(args).await {
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

pub(crate) fn print_table(rows: &[Value], columns: &[&str]) {
    let mut text = columns.join("\t");
    text.push('\n');
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match &row[*c] {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            })
            .collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    print_raw(&text);
}

async fn execute(args: AdminArgs) -> Result<(), Failure> {
    if args.offline {
        let (data_dir, as_json) = (args.data_dir.clone(), args.json);
        let action = args.command_for_offline()?;
        return crate::admin_offline::run(&data_dir, action, as_json).await;
    }
    let token = match args.token {
        Some(token) => token,
        None => std::fs::read_to_string(args.data_dir.join("admin-token"))
            .map(|t| t.trim().to_string())
            .map_err(|_| {
                Failure::Usage(format!(
                    "no --token given and no token saved in {}",
                    args.data_dir.join("admin-token").display()
                ))
            })?,
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let client = Client {
        http,
        base: args.url.trim_end_matches('/').to_string(),
        token,
    };
    let (value, columns): (Value, &[&str]) = match args.command {
        AdminCommand::Users { action } => match action {
            UserAction::List => (
                client.call(Method::GET, "/users", None).await?,
                &["id", "userPrincipalName", "displayName", "accountEnabled"],
            ),
            UserAction::Create { upn, name, mail } => {
                let body = json!({"userPrincipalName": upn, "displayName": name, "mail": mail});
                (
                    client.call(Method::POST, "/users", Some(body)).await?,
                    &["id", "userPrincipalName", "displayName"],
                )
            }
            UserAction::Show { user } => (
                client
                    .call(Method::GET, &format!("/users/{}", encode(&user)), None)
                    .await?,
                &[
                    "id",
                    "userPrincipalName",
                    "displayName",
                    "mail",
                    "accountEnabled",
                ],
            ),
            UserAction::Disable { user } => (
                client
                    .call(
                        Method::PATCH,
                        &format!("/users/{}", encode(&user)),
                        Some(json!({"accountEnabled": false})),
                    )
                    .await?,
                &["userPrincipalName", "accountEnabled"],
            ),
            UserAction::Enable { user } => (
                client
                    .call(
                        Method::PATCH,
                        &format!("/users/{}", encode(&user)),
                        Some(json!({"accountEnabled": true})),
                    )
                    .await?,
                &["userPrincipalName", "accountEnabled"],
            ),
            UserAction::SetPassword { user } => {
                let mut password = String::new();
                std::io::stdin()
                    .read_line(&mut password)
                    .map_err(|e| Failure::Usage(format!("reading the password: {e}")))?;
                let password = password.trim_end_matches(['\r', '\n']).to_string();
                client
                    .call(
                        Method::PUT,
                        &format!("/users/{}/password", encode(&user)),
                        Some(json!({"password": password})),
                    )
                    .await?;
                println!("Password set.");
                return Ok(());
            }
            UserAction::EffectivePolicy { user } => {
                let value = client
                    .call(
                        Method::GET,
                        &format!("/users/{}/effectivePolicy", encode(&user)),
                        None,
                    )
                    .await?;
                if args.json {
                    print_json(&value);
                } else {
                    print_effective_policy(&value);
                }
                return Ok(());
            }
        },
        AdminCommand::Groups { action } => match action {
            GroupAction::List => (
                client.call(Method::GET, "/groups", None).await?,
                &["id", "displayName", "description"],
            ),
            GroupAction::Create { name, description } => (
                client
                    .call(
                        Method::POST,
                        "/groups",
                        Some(json!({"displayName": name, "description": description})),
                    )
                    .await?,
                &["id", "displayName"],
            ),
            GroupAction::Members { group } => (
                client
                    .call(
                        Method::GET,
                        &format!("/groups/{}/members", encode(&group)),
                        None,
                    )
                    .await?,
                &["id", "userPrincipalName", "displayName"],
            ),
            GroupAction::AddMember { group, user } => {
                client
                    .call(
                        Method::POST,
                        &format!("/groups/{}/members", encode(&group)),
                        Some(json!({"userId": user})),
                    )
                    .await?;
                println!("Added {user} to {group}.");
                return Ok(());
            }
            GroupAction::RemoveMember { group, user } => {
                client
                    .call(
                        Method::DELETE,
                        &format!("/groups/{}/members/{}", encode(&group), encode(&user)),
                        None,
                    )
                    .await?;
                println!("Removed {user} from {group}.");
                return Ok(());
            }
        },
        AdminCommand::Apps { action } => match action {
            AppAction::List => (
                client.call(Method::GET, "/applications", None).await?,
                &["appId", "displayName", "publicClient", "idTokenSigningAlg"],
            ),
            AppAction::Create {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                alg,
                home_url,
            } => {
                let body = json!({"displayName": name, "redirectUris": redirect_uris, "postLogoutRedirectUris": post_logout_redirect_uris,
                                  "publicClient": public, "idTokenSigningAlg": alg, "homeUrl": home_url});
                let value = client
                    .call(Method::POST, "/applications", Some(body))
                    .await?;
                if !args.json && value["clientSecret"].is_string() {
                    println!("The client secret is shown only now; store it safely.");
                }
                (value, &["appId", "displayName", "clientSecret"])
            }
            AppAction::Show { app } => (
                client
                    .call(
                        Method::GET,
                        &format!("/applications/{}", encode(&app)),
                        None,
                    )
                    .await?,
                &["appId", "displayName", "redirectUris", "publicClient"],
            ),
            AppAction::Delete { app } => {
                client
                    .call(
                        Method::DELETE,
                        &format!("/applications/{}", encode(&app)),
                        None,
                    )
                    .await?;
                println!("Deleted {app}.");
                return Ok(());
            }
        },
        AdminCommand::Passes { action } => match action {
            PassAction::Create {
                user,
                lifetime_minutes,
                one_time,
                length,
            } => {
                // Unset options are left out, so the server's policy defaults apply.
                let mut body = json!({"lifetimeInMinutes": lifetime_minutes, "length": length});
                if one_time {
                    body["isUsableOnce"] = json!(true);
                }
                let value = client
                    .call(
                        Method::POST,
                        &format!("/users/{}/temporaryAccessPass", encode(&user)),
                        Some(body),
                    )
                    .await?;
                (
                    value,
                    &[
                        "temporaryAccessPass",
                        "startDateTime",
                        "lifetimeInMinutes",
                        "isUsableOnce",
                    ],
                )
            }
            PassAction::Show { user } => (
                client
                    .call(
                        Method::GET,
                        &format!("/users/{}/temporaryAccessPass", encode(&user)),
                        None,
                    )
                    .await?,
                &[
                    "startDateTime",
                    "lifetimeInMinutes",
                    "isUsableOnce",
                    "methodUsabilityReason",
                ],
            ),
            PassAction::Delete { user } => {
                client
                    .call(
                        Method::DELETE,
                        &format!("/users/{}/temporaryAccessPass", encode(&user)),
                        None,
                    )
                    .await?;
                println!("Deleted the pass of {user}.");
                return Ok(());
            }
        },
        AdminCommand::Policy { action } => return policy_command(&client, action, args.json).await,
        AdminCommand::Logs { action } => return logs_command(&client, action, args.json).await,
        AdminCommand::Tokens { action } => match action {
            TokenAction::List => (
                client.call(Method::GET, "/adminTokens", None).await?,
                TOKEN_COLUMNS,
            ),
            TokenAction::Create {
                name,
                expires_in_days,
            } => {
                let body = json!({
                    "displayName": name,
                    "expiresDateTime": expires_in_days.map(expiry_in_days),
                });
                let value = client
                    .call(Method::POST, "/adminTokens", Some(body))
                    .await?;
                if !args.json {
                    println!("The token is shown only now; store it safely.");
                }
                (value, &["id", "displayName", "expiresDateTime", "token"])
            }
            TokenAction::Revoke { id } => (
                client
                    .call(
                        Method::POST,
                        &format!("/adminTokens/{}/revoke", encode(&id)),
                        None,
                    )
                    .await?,
                TOKEN_COLUMNS,
            ),
        },
    };
    if args.json {
        print_json(&value);
    } else if let Some(rows) = value["value"].as_array() {
        print_table(rows, columns);
    } else {
        print_table(std::slice::from_ref(&value), columns);
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

pub(crate) fn print_json(value: &Value) {
    print_raw(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    ));
}

/// Writes a body as the server sent it; a closed pipe (`| head`) is not an error.
fn print_raw(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

// ----- the authentication methods policy ---------------------------------------------------

const POLICY: &str = "/policies/authenticationMethodsPolicy";
const SUMMARY_COLUMNS: &[&str] = &["method", "state", "include", "exclude"];

fn method_kind(id: &str) -> Result<MethodKind, Failure> {
    MethodKind::parse(id).map_err(|e| Failure::Usage(e.to_string()))
}

fn configuration_path(method: MethodKind) -> String {
    format!(
        "{POLICY}/authenticationMethodConfigurations/{}",
        encode(method.id())
    )
}

/// `--target all` (or Graph's own `all_users`) means every user.
fn is_all_users(target: &str) -> bool {
    target.trim().eq_ignore_ascii_case("all") || target.trim() == ALL_USERS
}

/// A group's id from its id or its display name (ignoring case), as the server finds groups.
fn group_id(groups: &[Value], key: &str) -> Result<String, Failure> {
    let key = key.trim();
    groups
        .iter()
        .find(|g| g["id"].as_str() == Some(key))
        .or_else(|| {
            groups.iter().find(|g| {
                g["displayName"]
                    .as_str()
                    .is_some_and(|name| name.eq_ignore_ascii_case(key))
            })
        })
        .and_then(|g| g["id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Failure::Refused(format!(
                "group {key:?} was not found (no group has that id or display name)"
            ))
        })
}

/// The JSON merge patch (RFC 7396) that `policy set authenticator` sends for its options.
///
/// `groups` is the list from `GET /groups`, used to turn display names into ids (it may be
/// empty when no group is named). `current` is the authenticator's configuration; it is read
/// only when one of `--target` and `--mode` comes without the other, to keep the other half of
/// the single include target. Either option replaces the include targets with one entry.
fn authenticator_patch(
    options: &AuthenticatorOptions,
    groups: &[Value],
    current: Option<&Value>,
) -> Result<Value, Failure> {
    let resolve = |key: &str| {
        if is_all_users(key) {
            Ok(ALL_USERS.to_string())
        } else {
            group_id(groups, key)
        }
    };
    let mut patch = json!({});
    if let Some(state) = options.state {
        patch["state"] = json!(state.as_str());
    }
    if options.target.is_some() || options.mode.is_some() {
        let includes = current
            .and_then(|c| c["includeTargets"].as_array())
            .cloned()
            .unwrap_or_default();
        let target = match &options.target {
            Some(target) => resolve(target)?,
            None => match includes.as_slice() {
                [only] => only["id"].as_str().unwrap_or(ALL_USERS).to_string(),
                _ => {
                    return Err(Failure::Usage(format!(
                        "the authenticator app has {} include targets; give --target with --mode \
                         (together they replace the include targets with one)",
                        includes.len()
                    )));
                }
            },
        };
        let mode = match options.mode {
            Some(mode) => mode.as_str().to_string(),
            None => {
                let modes: std::collections::BTreeSet<&str> = includes
                    .iter()
                    .filter_map(|t| t["authenticationMode"].as_str())
                    .collect();
                match modes.len() {
                    0 => ModeArg::Any.as_str().to_string(),
                    1 => modes.into_iter().next().unwrap_or("any").to_string(),
                    _ => {
                        return Err(Failure::Usage(
                            "the current include targets have different modes; give --mode with \
                             --target"
                                .into(),
                        ));
                    }
                }
            }
        };
        patch["includeTargets"] =
            json!([{"targetType": "group", "id": target, "authenticationMode": mode}]);
    }
    if options.no_exclusions {
        patch["excludeTargets"] = json!([]);
    } else if !options.exclude.is_empty() {
        let excludes = options
            .exclude
            .iter()
            .map(|g| resolve(g).map(|id| json!({"targetType": "group", "id": id})))
            .collect::<Result<Vec<_>, _>>()?;
        patch["excludeTargets"] = Value::Array(excludes);
    }
    for (field, state) in options.features() {
        patch["featureSettings"][field] = json!({"state": state.as_str()});
    }
    Ok(patch)
}

/// The console's names for the authenticator modes.
fn mode_label(mode: &str) -> &str {
    match mode {
        "deviceBasedPush" => "passwordless",
        other => other,
    }
}

/// One row of the policy summary: method, state, include targets (with modes), exclusions.
fn summary_row(configuration: &Value, groups: &[Value]) -> Value {
    let name = |target: &Value| {
        let id = target["id"].as_str().unwrap_or("?");
        if id == ALL_USERS {
            "all users".to_string()
        } else {
            groups
                .iter()
                .find(|g| g["id"].as_str() == Some(id))
                .and_then(|g| g["displayName"].as_str())
                .unwrap_or(id)
                .to_string()
        }
    };
    let list = |field: &str| {
        let names: Vec<String> = configuration[field]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|t| match t["authenticationMode"].as_str() {
                Some(mode) => format!("{} ({})", name(t), mode_label(mode)),
                None => name(t),
            })
            .collect();
        if names.is_empty() {
            Value::Null
        } else {
            Value::String(names.join(", "))
        }
    };
    json!({
        "method": configuration["id"],
        "state": configuration["state"],
        "include": list("includeTargets"),
        "exclude": list("excludeTargets"),
    })
}

/// The authenticator's notification features (`featureSettings`) as table rows: feature (named
/// as the `policy set authenticator` option), state, include target, exclude target.
fn feature_rows(configuration: &Value, groups: &[Value]) -> Vec<Value> {
    let Some(settings) = configuration["featureSettings"].as_object() else {
        return vec![];
    };
    let name = |target: &Value| match target["id"].as_str() {
        None => Value::Null,
        Some(ALL_USERS) => json!("all users"),
        Some(id) => json!(
            groups
                .iter()
                .find(|g| g["id"].as_str() == Some(id))
                .and_then(|g| g["displayName"].as_str())
                .unwrap_or(id)
        ),
    };
    FEATURE_FIELDS
        .iter()
        .filter_map(|(field, option)| {
            let setting = settings.get(*field)?;
            Some(json!({
                "feature": option,
                "state": setting["state"],
                "include": name(&setting["includeTarget"]),
                "exclude": name(&setting["excludeTarget"]),
            }))
        })
        .collect()
}

/// `featureSettings` members and the `policy set authenticator` options that set them.
const FEATURE_FIELDS: [(&str, &str); 5] = [
    ("numberMatchingRequiredState", "number-matching"),
    ("displayAppInformationRequiredState", "show-app-name"),
    ("displayLocationInformationRequiredState", "show-location"),
    ("reportSuspiciousActivityState", "report-suspicious"),
    ("suppressAnomalousNotificationsState", "suppress-unusual"),
];

const FEATURE_COLUMNS: &[&str] = &["feature", "state", "include", "exclude"];

async fn print_configuration(
    client: &Client,
    configuration: &Value,
    as_json: bool,
) -> Result<(), Failure> {
    if as_json {
        print_json(configuration);
    } else {
        // Names only make the summary easier to read; ids will do if groups cannot be listed.
        let groups = client.groups().await.unwrap_or_default();
        print_table(&[summary_row(configuration, &groups)], SUMMARY_COLUMNS);
        let features = feature_rows(configuration, &groups);
        if !features.is_empty() {
            print_raw("\n");
            print_table(&features, FEATURE_COLUMNS);
        }
    }
    Ok(())
}

fn read_json_document(file: &str) -> Result<Value, Failure> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::Usage(format!("reading standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::Usage(format!("reading {file}: {e}")))?
    };
    serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("{file}: not valid JSON: {e}")))
}

async fn policy_command(
    client: &Client,
    action: PolicyAction,
    as_json: bool,
) -> Result<(), Failure> {
    match action {
        PolicyAction::Show { method: None } => {
            let policy = client.call(Method::GET, POLICY, None).await?;
            if as_json {
                print_json(&policy);
                return Ok(());
            }
            let groups = client.groups().await.unwrap_or_default();
            let rows: Vec<Value> = policy["authenticationMethodConfigurations"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|c| summary_row(c, &groups))
                .collect();
            print_table(&rows, SUMMARY_COLUMNS);
            let features: Vec<Value> = policy["authenticationMethodConfigurations"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .flat_map(|c| feature_rows(c, &groups))
                .collect();
            if !features.is_empty() {
                print_raw("\n");
                print_table(&features, FEATURE_COLUMNS);
            }
            Ok(())
        }
        PolicyAction::Show {
            method: Some(method),
        } => {
            let method = method_kind(&method)?;
            let configuration = client
                .call(Method::GET, &configuration_path(method), None)
                .await?;
            print_json(&configuration);
            Ok(())
        }
        PolicyAction::Set(set) => {
            let method = method_kind(&set.method)?;
            let path = configuration_path(method);
            let configuration = if let Some(file) = &set.json {
                let document = read_json_document(file)?;
                client.call(Method::PUT, &path, Some(document)).await?
            } else {
                let options = &set.options;
                if options.is_empty() {
                    return Err(Failure::Usage(format!(
                        "nothing to change: give --json FILE{}",
                        if method == MethodKind::MicrosoftAuthenticator {
                            " or options such as --state, --target, --mode, --number-matching"
                        } else {
                            ""
                        }
                    )));
                }
                if method != MethodKind::MicrosoftAuthenticator {
                    return Err(Failure::Usage(format!(
                        "these options apply to the authenticator app only; change {} with \
                         --json FILE (see `policy show {}` for its current JSON)",
                        method.id(),
                        method.id()
                    )));
                }
                let groups = if options.named_groups().next().is_some() {
                    client.groups().await?
                } else {
                    vec![]
                };
                let current = if options.target.is_some() != options.mode.is_some() {
                    Some(client.call(Method::GET, &path, None).await?)
                } else {
                    None
                };
                let patch = authenticator_patch(options, &groups, current.as_ref())?;
                client.call(Method::PATCH, &path, Some(patch)).await?
            };
            print_configuration(client, &configuration, as_json).await
        }
        PolicyAction::Reset { method } => {
            let method = method_kind(&method)?;
            let configuration = client
                .call(Method::DELETE, &configuration_path(method), None)
                .await?;
            print_configuration(client, &configuration, as_json).await
        }
    }
}

/// The CLI's (`policy set authenticator`) names for the authenticator's features.
fn feature_option(feature: &str) -> &str {
    match feature {
        "numberMatching" => "number-matching",
        "displayAppInformation" => "show-app-name",
        "displayLocationInformation" => "show-location",
        "reportSuspiciousActivity" => "report-suspicious",
        "suppressAnomalousNotifications" => "suppress-unusual",
        other => other,
    }
}

/// Two tables: each method (allowed, mode, reason), then the authenticator's features.
fn print_effective_policy(value: &Value) {
    let evaluations = value["value"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let rows: Vec<Value> = evaluations
        .iter()
        .map(|e| {
            let method = serde_json::from_value::<MethodKind>(e["method"].clone())
                .map(|m| json!(m.id()))
                .unwrap_or_else(|_| e["method"].clone());
            json!({
                "method": method,
                "allowed": e["allowed"],
                "mode": e["mode"].as_str().map(mode_label),
                "reason": e["reason"],
            })
        })
        .collect();
    print_table(&rows, &["method", "allowed", "mode", "reason"]);
    let features: Vec<Value> = evaluations
        .iter()
        .filter_map(|e| e["features"].as_array())
        .flatten()
        .map(|f| {
            json!({
                "feature": f["feature"].as_str().map(feature_option),
                "enabled": f["enabled"],
                "reason": f["reason"],
            })
        })
        .collect();
    if !features.is_empty() {
        print_raw("\n");
        print_table(&features, &["feature", "enabled", "reason"]);
    }
}

// ----- logs --------------------------------------------------------------------------------

const SIGN_IN_COLUMNS: &[&str] = &["time", "user", "app", "ip", "location", "method", "result"];
const AUDIT_COLUMNS: &[&str] = &["time", "actor", "category", "activity", "target"];

/// The query string for a log request. Times are checked here (so a typo is a usage error)
/// but sent as typed: spans such as `1h` are counted back from the server's clock.
fn log_query(
    options: &LogOptions,
    mut extra: Vec<(&'static str, String)>,
    now: latchkey_domain::clock::Timestamp,
) -> Result<String, Failure> {
    let mut pairs: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in [("since", &options.since), ("until", &options.until)] {
        if let Some(value) = value {
            if parse_time(value, now).is_none() {
                return Err(Failure::Usage(format!(
                    "--{name} {value:?}: use RFC 3339 (2026-11-29T10:00:00Z), a date, Unix \
                     seconds, or a span such as 15m, 1h or 7d"
                )));
            }
            pairs.push((name, value.trim().to_string()));
        }
    }
    if let Some(user) = &options.user {
        pairs.push(("user", user.clone()));
    }
    pairs.append(&mut extra);
    if let Some(top) = options.top {
        pairs.push(("top", top.to_string()));
    }
    if let Some(skip) = options.skip {
        pairs.push(("skip", skip.to_string()));
    }
    match options.format {
        LogFormat::Jsonl => pairs.push(("format", "jsonl".into())),
        LogFormat::Csv => pairs.push(("format", "csv".into())),
        LogFormat::Table | LogFormat::Json => {}
    }
    if pairs.is_empty() {
        return Ok(String::new());
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in &pairs {
        query.append_pair(name, value);
    }
    Ok(format!("?{}", query.finish()))
}

/// A sign-in record as a table row: time, user, app, ip, location, method, result.
fn sign_in_row(record: &Value) -> Value {
    let location = &record["location"];
    let country = location["countryName"]
        .as_str()
        .or(location["countryOrRegion"].as_str());
    let place: Vec<&str> = [location["city"].as_str(), country]
        .into_iter()
        .flatten()
        .filter(|part| !part.trim().is_empty())
        .collect();
    let status = &record["status"];
    let result = match status["errorCode"].as_u64() {
        Some(0) => "Success".to_string(),
        code => format!(
            "{} {}",
            code.map_or_else(|| "?".to_string(), |c| c.to_string()),
            status["failureReason"].as_str().unwrap_or_default()
        )
        .trim_end()
        .to_string(),
    };
    let app = if record["appDisplayName"].is_string() {
        record["appDisplayName"].clone()
    } else {
        record["appId"].clone()
    };
    json!({
        "time": record["createdDateTime"],
        "user": record["userPrincipalName"],
        "app": app,
        "ip": record["ipAddress"],
        "location": if place.is_empty() { Value::Null } else { json!(place.join(", ")) },
        "method": record["authenticationMethod"],
        "result": result,
    })
}

fn audit_row(event: &Value) -> Value {
    json!({
        "time": event["activityDateTime"],
        "actor": event["actor"],
        "category": event["category"],
        "activity": event["activity"],
        "target": event["target"],
    })
}

async fn logs_command(client: &Client, action: LogAction, as_json: bool) -> Result<(), Failure> {
    let now = SystemClock.now();
    let (path, options, extra) = match action {
        LogAction::Signins {
            common,
            app,
            status,
            method,
        } => {
            let mut extra = Vec::new();
            if let Some(app) = app {
                extra.push(("app", app));
            }
            if let Some(status) = status {
                let status = match status {
                    StatusArg::Success => "success",
                    StatusArg::Failure => "failure",
                };
                extra.push(("status", status.to_string()));
            }
            if let Some(method) = method {
                extra.push(("method", method_kind(&method)?.id().to_string()));
            }
            ("/auditLogs/signIns", common, extra)
        }
        LogAction::Audit { common, category } => {
            let mut extra = Vec::new();
            if let Some(category) = category {
                let known = AUDIT_CATEGORIES
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(category.trim()))
                    .ok_or_else(|| {
                        Failure::Usage(format!(
                            "--category {category:?}: use one of {}",
                            AUDIT_CATEGORIES.join(", ")
                        ))
                    })?;
                extra.push(("category", known.to_string()));
            }
            ("/auditLogs/directoryAudits", common, extra)
        }
    };
    let query = log_query(&options, extra, now)?;
    let url = format!("{path}{query}");
    match options.format {
        LogFormat::Jsonl | LogFormat::Csv => {
            print_raw(&client.send(Method::GET, &url, None).await?);
        }
        LogFormat::Json => print_json(&client.call(Method::GET, &url, None).await?),
        LogFormat::Table => {
            let value = client.call(Method::GET, &url, None).await?;
            if as_json {
                print_json(&value);
                return Ok(());
            }
            let records = value["value"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if path == "/auditLogs/signIns" {
                let rows: Vec<Value> = records.iter().map(sign_in_row).collect();
                print_table(&rows, SIGN_IN_COLUMNS);
            } else {
                let rows: Vec<Value> = records.iter().map(audit_row).collect();
                print_table(&rows, AUDIT_COLUMNS);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }

    fn parse(args: &[&str]) -> AdminCommand {
        let mut argv = vec!["latchkey-admin"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .admin
            .command
    }

    fn set_options(args: &[&str]) -> (String, Option<String>, AuthenticatorOptions) {
        match parse(args) {
            AdminCommand::Policy {
                action: PolicyAction::Set(set),
            } => (set.method, set.json, set.options),
            _ => panic!("{args:?} is not `policy set`"),
        }
    }

    fn groups() -> Vec<Value> {
        vec![
            json!({"id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "displayName": "Passwordless Pilot"}),
            json!({"id": "0b7e5d3c1a9f4e2d8c6b4a2f0e8d6c4b", "displayName": "Contractors"}),
        ]
    }

    fn patch(args: &[&str], current: Option<&Value>) -> Result<Value, Failure> {
        let (_, _, options) = set_options(args);
        authenticator_patch(&options, &groups(), current)
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn lab_step_1_enables_the_authenticator_for_all_users_in_any_mode() {
        let patch = patch(
            &[
                "policy",
                "set",
                "authenticator",
                "--state",
                "enabled",
                "--target",
                "all",
                "--mode",
                "any",
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({
                "state": "enabled",
                "includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "any"}],
            })
        );
    }

    #[test]
    fn lab_step_4_turns_the_notification_features_on() {
        let patch = patch(
            &[
                "policy",
                "set",
                "authenticator",
                "--number-matching",
                "enabled",
                "--show-app-name",
                "enabled",
                "--show-location",
                "enabled",
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({"featureSettings": {
                "numberMatchingRequiredState": {"state": "enabled"},
                "displayAppInformationRequiredState": {"state": "enabled"},
                "displayLocationInformationRequiredState": {"state": "enabled"},
            }})
        );
        let patch = self::patch(
            &[
                "policy",
                "set",
                "authenticator",
                "--report-suspicious",
                "default",
                "--show-location",
                "disabled",
                "--suppress-unusual",
                "enabled",
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({"featureSettings": {
                "displayLocationInformationRequiredState": {"state": "disabled"},
                "reportSuspiciousActivityState": {"state": "default"},
                "suppressAnomalousNotificationsState": {"state": "enabled"},
            }})
        );
    }

    #[test]
    fn groups_are_named_by_id_or_display_name_and_modes_use_graph_names() {
        let patch = patch(
            &[
                "policy",
                "set",
                "authenticator",
                "--target",
                "passwordless pilot",
                "--mode",
                "passwordless",
                "--exclude",
                "Contractors",
                "--exclude",
                "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78",
                "--state",
                "disabled",
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({
                "state": "disabled",
                "includeTargets": [{"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78",
                                    "authenticationMode": "deviceBasedPush"}],
                "excludeTargets": [
                    {"targetType": "group", "id": "0b7e5d3c1a9f4e2d8c6b4a2f0e8d6c4b"},
                    {"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78"},
                ],
            })
        );
        let cleared =
            self::patch(&["policy", "set", "authenticator", "--no-exclusions"], None).unwrap();
        assert_eq!(cleared, json!({"excludeTargets": []}));
        let unknown = self::patch(
            &["policy", "set", "authenticator", "--exclude", "Nobody"],
            None,
        );
        assert!(
            matches!(&unknown, Err(Failure::Refused(m)) if m.contains("Nobody")),
            "{unknown:?}"
        );
    }

    #[test]
    fn target_or_mode_alone_keeps_the_other_half_of_the_single_target() {
        let one = json!({"includeTargets": [
            {"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "authenticationMode": "deviceBasedPush"}
        ]});
        assert_eq!(
            patch(
                &["policy", "set", "authenticator", "--mode", "push"],
                Some(&one)
            )
            .unwrap(),
            json!({"includeTargets": [{"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "authenticationMode": "push"}]})
        );
        assert_eq!(
            patch(
                &["policy", "set", "authenticator", "--target", "ALL"],
                Some(&one)
            )
            .unwrap(),
            json!({"includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "deviceBasedPush"}]})
        );
        let two = json!({"includeTargets": [
            {"targetType": "group", "id": "all_users", "authenticationMode": "push"},
            {"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "authenticationMode": "deviceBasedPush"}
        ]});
        assert!(matches!(
            patch(
                &["policy", "set", "authenticator", "--mode", "any"],
                Some(&two)
            ),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            patch(
                &["policy", "set", "authenticator", "--target", "Contractors"],
                Some(&two)
            ),
            Err(Failure::Usage(_))
        ));
    }

    #[test]
    fn json_documents_and_options_do_not_mix() {
        let (method, json, options) =
            set_options(&["policy", "set", "temporaryAccessPass", "--json", "-"]);
        assert_eq!(
            (method.as_str(), json.as_deref()),
            ("temporaryAccessPass", Some("-"))
        );
        assert!(options.is_empty());
        let mixed = Cli::try_parse_from([
            "latchkey-admin",
            "policy",
            "set",
            "authenticator",
            "--json",
            "policy.json",
            "--state",
            "enabled",
        ]);
        assert!(mixed.is_err());
        let bad_mode = Cli::try_parse_from([
            "latchkey-admin",
            "policy",
            "set",
            "authenticator",
            "--mode",
            "deviceBasedPush",
        ]);
        assert!(bad_mode.is_err());
    }

    #[test]
    fn log_queries_are_checked_and_encoded() {
        let AdminCommand::Logs {
            action: LogAction::Signins { common, .. },
        } = parse(&[
            "logs",
            "signins",
            "--since",
            "1h",
            "--user",
            "bobby+test@contoso.example",
            "--top",
            "50",
            "--format",
            "csv",
        ])
        else {
            panic!("not logs signins");
        };
        let now = latchkey_domain::clock::Timestamp(1_795_910_400);
        assert_eq!(
            log_query(&common, vec![("status", "failure".into())], now).unwrap(),
            "?since=1h&user=bobby%2Btest%40contoso.example&status=failure&top=50&format=csv"
        );
        let AdminCommand::Logs {
            action: LogAction::Audit { common, .. },
        } = parse(&["logs", "audit", "--since", "yesterday"])
        else {
            panic!("not logs audit");
        };
        assert!(matches!(
            log_query(&common, vec![], now),
            Err(Failure::Usage(_))
        ));
        assert!(
            Cli::try_parse_from(["latchkey-admin", "logs", "signins", "--top", "5000"]).is_err()
        );
    }

    #[test]
    fn sign_in_rows_read_like_the_console() {
        let failed = json!({
            "createdDateTime": "2026-11-29T10:00:00Z",
            "userPrincipalName": "bobby@contoso.example",
            "appDisplayName": "Wiki",
            "ipAddress": "203.0.113.7",
            "location": {"city": "Sydney", "state": "New South Wales", "countryOrRegion": "AU",
                         "countryName": "Australia", "geoCoordinates": null},
            "authenticationMethod": "temporaryAccessPass",
            "status": {"errorCode": 900001, "failureReason": "The Temporary Access Pass has expired."},
        });
        assert_eq!(
            sign_in_row(&failed),
            json!({"time": "2026-11-29T10:00:00Z", "user": "bobby@contoso.example", "app": "Wiki",
                   "ip": "203.0.113.7", "location": "Sydney, Australia", "method": "temporaryAccessPass",
                   "result": "900001 The Temporary Access Pass has expired."})
        );
        let succeeded = json!({
            "createdDateTime": "2026-11-29T10:01:00Z",
            "userPrincipalName": "bobby@contoso.example",
            "appDisplayName": null,
            "appId": null,
            "ipAddress": "127.0.0.1",
            "location": null,
            "authenticationMethod": "password",
            "status": {"errorCode": 0},
        });
        let row = sign_in_row(&succeeded);
        assert_eq!(row["result"], "Success");
        assert_eq!(row["location"], Value::Null);
        assert_eq!(row["app"], Value::Null);
    }

    #[test]
    fn feature_rows_use_the_option_names() {
        let configuration = json!({"featureSettings": {
            "numberMatchingRequiredState": {"state": "enabled", "includeTarget": {"targetType": "group", "id": "all_users"}},
            "displayAppInformationRequiredState": {"state": "default", "includeTarget": {"targetType": "group", "id": "all_users"},
                                                   "excludeTarget": {"targetType": "group", "id": "0b7e5d3c1a9f4e2d8c6b4a2f0e8d6c4b"}},
        }});
        assert_eq!(
            feature_rows(&configuration, &groups()),
            vec![
                json!({"feature": "number-matching", "state": "enabled", "include": "all users", "exclude": null}),
                json!({"feature": "show-app-name", "state": "default", "include": "all users", "exclude": "Contractors"}),
            ]
        );
        assert!(feature_rows(&json!({"state": "enabled"}), &[]).is_empty());
    }

    #[test]
    fn policy_summary_names_groups_and_modes() {
        let configuration = json!({
            "id": "authenticator",
            "state": "enabled",
            "includeTargets": [
                {"targetType": "group", "id": "all_users", "authenticationMode": "push"},
                {"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "authenticationMode": "deviceBasedPush"},
            ],
            "excludeTargets": [{"targetType": "group", "id": "0b7e5d3c1a9f4e2d8c6b4a2f0e8d6c4b"}],
        });
        assert_eq!(
            summary_row(&configuration, &groups()),
            json!({"method": "authenticator", "state": "enabled",
                   "include": "all users (push), Passwordless Pilot (passwordless)",
                   "exclude": "Contractors"})
        );
    }
}
