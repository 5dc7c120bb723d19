//! `latchkey admin …`: the admin API from the command line. Exit codes: 0 done, 1 the server
//! refused (its message is printed), 2 usage or configuration error, 3 the server was not reached.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
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

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

enum Failure {
    Refused(String),
    Unreachable(String),
    Usage(String),
}

impl Client {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
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
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            Ok(value)
        } else {
            let message = value["error"]["message"]
                .as_str()
                .unwrap_or("the server refused the request");
            let code = value["error"]["code"].as_str().unwrap_or("error");
            Err(Failure::Refused(format!(
                "{message} ({code}, HTTP {})",
                status.as_u16()
            )))
        }
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

fn print_table(rows: &[Value], columns: &[&str]) {
    println!("{}", columns.join("\t"));
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match &row[*c] {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            })
            .collect();
        println!("{}", cells.join("\t"));
    }
}

async fn execute(args: AdminArgs) -> Result<(), Failure> {
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
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else if let Some(rows) = value["value"].as_array() {
        print_table(rows, columns);
    } else {
        print_table(std::slice::from_ref(&value), columns);
    }
    Ok(())
}
