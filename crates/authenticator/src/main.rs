//! `latchkey-authenticator`: the phone app, in a terminal.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use latchkey_authenticator::terminal::{EchoOff, printable};
use latchkey_authenticator::{Authenticator, Error, default_home, qr};
use latchkey_protocol::ActivationLink;
use latchkey_protocol::wire::{
    AnswerOutcome, ApprovalKind, ApprovalRequest, Decision, DeviceEvent,
};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

#[derive(Parser)]
#[command(
    name = "latchkey-authenticator",
    version,
    about = "Latchkey's authenticator app: approve sign-ins by number matching"
)]
struct Cli {
    /// The device's home folder (keys and accounts). Default: ~/.config/latchkey-authenticator.
    #[arg(long, env = "LATCHKEY_AUTHENTICATOR_HOME", global = true)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add an account from the security-info page's activation link, typed code or QR picture.
    Add {
        /// The activation link ({server}/authenticator/app/activate#code=… or latchkey://activate?…).
        link: Option<String>,
        /// The activation code, typed by hand (with --url).
        #[arg(long, requires = "url")]
        code: Option<String>,
        /// The server's URL, typed by hand (with --code).
        #[arg(long, requires = "code")]
        url: Option<String>,
        /// A picture (PNG) of the QR code.
        #[arg(long)]
        qr_image: Option<PathBuf>,
        /// What the security-info page calls this device.
        #[arg(long, default_value = "Latchkey authenticator")]
        name: String,
        /// The number the security-info page shows for the test notification. Without it,
        /// the app asks for it.
        #[arg(long)]
        number: Option<u8>,
        /// Leave the test notification for `respond` or `listen`.
        #[arg(long, conflicts_with = "number")]
        skip_test: bool,
    },
    /// List the accounts on this device.
    Accounts,
    /// Turn on passwordless phone sign-in for an account with a new PIN of at least 6
    /// characters (typed without echo; a script may pipe it on stdin). When it is on already,
    /// asks for the current PIN first.
    EnablePhoneSignIn { account: String },
    /// Turn phone sign-in off for an account (asks for the device PIN; MFA push keeps working).
    DisablePhoneSignIn { account: String },
    /// Remove an account from this device and from the server.
    Remove { account: String },
    /// Show requests that arrived while you were not listening.
    Pending { account: Option<String> },
    /// Wait for requests and answer them as they arrive.
    Listen { account: Option<String> },
    /// Answer one request without prompts (the PIN, when needed, comes from stdin).
    Respond {
        request: String,
        #[arg(long)]
        number: Option<u8>,
        #[arg(long, group = "decision")]
        approve: bool,
        #[arg(long, group = "decision")]
        deny: bool,
        /// "No, it's not me": deny and report the request as suspicious.
        #[arg(long, group = "decision")]
        report: bool,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let home = cli.home.unwrap_or_else(default_home);
    let mut app = Authenticator::open(&home)?;
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    match cli.command {
        Command::Add {
            link,
            code,
            url,
            qr_image,
            name,
            number,
            skip_test,
        } => {
            let link = match (link, code, url, qr_image) {
                (Some(link), None, None, None) => ActivationLink::parse(&link),
                (None, Some(code), Some(url), None) => ActivationLink::from_parts(&url, &code),
                (None, None, None, Some(path)) => ActivationLink::parse(&qr::decode_file(&path)?),
                _ => bail!("give one of: an activation link, --code with --url, or --qr-image"),
            }
            .map_err(anyhow::Error::msg)?;
            let (index, test) = app.add(&link, &name).await?;
            let account = app.account(index);
            println!(
                "Added account {} ({}) on {}.",
                account.id,
                printable(&account.user_principal_name),
                printable(&account.server)
            );
            if skip_test {
                println!(
                    "Answer the test notification with `respond {} --number N --approve`.",
                    printable(&test.id)
                );
                return Ok(());
            }
            show(&account.user_principal_name, &test);
            let number = match number {
                Some(n) => n,
                None => {
                    ask_number(
                        &mut input,
                        "Enter the number the security-info page shows: ",
                    )
                    .await?
                }
            };
            let outcome = app
                .respond(index, &test, Decision::Approve, Some(number), None)
                .await?;
            report_outcome(outcome);
            if outcome == AnswerOutcome::Approved {
                println!(
                    "Registration complete. To sign in without a password: enable-phone-sign-in {}",
                    app.account(index).id
                );
            }
        }
        Command::Accounts => {
            if app.accounts().is_empty() {
                println!("No accounts yet. Add one with `add <activation link>`.");
            }
            for a in app.accounts() {
                println!(
                    "{}  {}  {}  {}  phone sign-in: {}",
                    a.id,
                    printable(&a.user_principal_name),
                    printable(&a.display_name),
                    printable(&a.server),
                    if a.phone_sign_in() { "on" } else { "off" }
                );
            }
        }
        Command::EnablePhoneSignIn { account } => {
            let index = app.find(&account)?;
            let current = if app.account(index).phone_sign_in() {
                Some(ask_pin(&mut input, "Current device PIN: ").await?)
            } else {
                None
            };
            let first = ask_pin(
                &mut input,
                &format!(
                    "Choose a device PIN (at least {} characters): ",
                    latchkey_protocol::MIN_PIN_LEN
                ),
            )
            .await?;
            let again = ask_pin(&mut input, "Enter it again: ").await?;
            if first != again {
                bail!("the two PINs differ; nothing changed");
            }
            app.change_phone_sign_in(index, current.as_deref(), &first)
                .await?;
            println!(
                "Phone sign-in is on for {}. Sign in with your user name and approve the number here.",
                printable(&app.account(index).user_principal_name)
            );
        }
        Command::DisablePhoneSignIn { account } => {
            let index = app.find(&account)?;
            let pin = ask_pin(&mut input, "Device PIN: ").await?;
            app.disable_phone_sign_in(index, &pin).await?;
            println!(
                "Phone sign-in is off for {}.",
                printable(&app.account(index).user_principal_name)
            );
        }
        Command::Remove { account } => {
            let index = app.find(&account)?;
            let removed = app.remove(index).await?;
            println!(
                "Removed {} from this device.",
                printable(&removed.user_principal_name)
            );
        }
        Command::Pending { account } => {
            let indices = selected(&app, account.as_deref())?;
            let mut any = false;
            for index in indices {
                for request in app.pending(index).await? {
                    any = true;
                    show(&app.account(index).user_principal_name, &request);
                }
            }
            if !any {
                println!("Nothing is waiting.");
            }
        }
        Command::Respond {
            request,
            number,
            approve,
            deny,
            report,
        } => {
            let decision = match (approve, deny, report) {
                (true, _, _) => Decision::Approve,
                (_, true, _) => Decision::Deny,
                (_, _, true) => Decision::Report,
                _ => bail!("choose --approve, --deny or --report"),
            };
            if decision == Decision::Approve && number.is_none() {
                bail!("--approve needs --number, the number the sign-in page shows");
            }
            let (index, found) = find_request(&app, &request).await?;
            let pin = if found.kind == ApprovalKind::PhoneSignIn {
                Some(ask_pin(&mut input, "Device PIN: ").await?)
            } else {
                None
            };
            let outcome = app
                .respond(index, &found, decision, number, pin.as_deref())
                .await?;
            report_outcome(outcome);
        }
        Command::Listen { account } => listen(&mut app, account.as_deref(), &mut input).await?,
    }
    Ok(())
}

fn selected(app: &Authenticator, account: Option<&str>) -> anyhow::Result<Vec<usize>> {
    match account {
        Some(selector) => Ok(vec![app.find(selector)?]),
        None if app.accounts().is_empty() => bail!("no accounts yet; add one first"),
        None => Ok((0..app.accounts().len()).collect()),
    }
}

async fn find_request(app: &Authenticator, id: &str) -> anyhow::Result<(usize, ApprovalRequest)> {
    for index in 0..app.accounts().len() {
        if let Some(found) = app.pending(index).await?.into_iter().find(|r| r.id == id) {
            return Ok((index, found));
        }
    }
    bail!("no pending request {id}; it may have been answered, cancelled or expired")
}

fn local_time(unix: i64) -> String {
    // The terminal's zone is not known without a time-zone database; UTC is unambiguous.
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        civil(days),
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Shows a request. Everything in it came from the server and is printed only as
/// [`printable`] text.
fn show(account: &str, request: &ApprovalRequest) {
    let what = match request.kind {
        ApprovalKind::PhoneSignIn => "Are you trying to sign in?",
        ApprovalKind::MfaPush => "Approve sign-in?",
        ApprovalKind::RegistrationTest => "Test notification: confirm your new authenticator",
    };
    println!();
    println!("── {what}");
    println!("   Request:     {}", printable(&request.id));
    println!("   Account:     {}", printable(account));
    if let Some(app) = &request.application {
        println!("   Application: {}", printable(app));
    }
    if let Some(place) = &request.location {
        println!("   Location:    {}", printable(place));
    }
    println!("   Time:        {}", local_time(request.created_at));
    if let Some(credit) = &request.location_attribution {
        println!("   ({})", printable(credit));
    }
}

fn report_outcome(outcome: AnswerOutcome) {
    println!(
        "{}",
        match outcome {
            AnswerOutcome::Approved => "Approved.",
            AnswerOutcome::Denied => "Denied.",
            AnswerOutcome::Reported => "Denied and reported. Your administrator will see it.",
            AnswerOutcome::WrongNumber => "That number didn't match; the sign-in was stopped.",
        }
    );
}

async fn ask(input: &mut Lines<BufReader<Stdin>>, prompt: &str) -> anyhow::Result<String> {
    use std::io::Write;
    print!("{prompt}");
    std::io::stdout().flush().ok();
    let line = input
        .next_line()
        .await?
        .context("no input (standard input closed)")?;
    Ok(line.trim().to_string())
}

/// Reads a PIN: from the terminal with echo off, or (for scripts) a line of piped input.
async fn ask_pin(input: &mut Lines<BufReader<Stdin>>, prompt: &str) -> anyhow::Result<String> {
    let quiet = EchoOff::on_stdin();
    let pin = ask(input, prompt).await;
    drop(quiet);
    pin
}

async fn ask_number(input: &mut Lines<BufReader<Stdin>>, prompt: &str) -> anyhow::Result<u8> {
    loop {
        let answer = ask(input, prompt).await?;
        match answer.parse::<u8>() {
            Ok(n) if (10..=99).contains(&n) => return Ok(n),
            _ => println!("Type the two-digit number the page shows."),
        }
    }
}

/// Waits for requests on every selected account and answers them at the prompt.
async fn listen(
    app: &mut Authenticator,
    account: Option<&str>,
    input: &mut Lines<BufReader<Stdin>>,
) -> anyhow::Result<()> {
    let indices = selected(app, account)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, DeviceEvent)>(64);
    for &index in &indices {
        let mut stream = app.connect(index).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                if tx.send((index, event)).await.is_err() {
                    break;
                }
            }
            let _ = tx
                .send((index, DeviceEvent::Cancelled { id: String::new() }))
                .await;
        });
    }
    drop(tx);
    println!(
        "Listening for {} account(s). Press Ctrl-C to stop.",
        indices.len()
    );
    // A request can arrive both by the pull below and on the live channel: answer it once.
    let mut seen = std::collections::HashSet::new();
    for &index in &indices {
        for request in app.pending(index).await? {
            if seen.insert(request.id.clone()) {
                handle(app, index, &request, input).await?;
            }
        }
    }
    while let Some((index, event)) = rx.recv().await {
        match event {
            DeviceEvent::Request { request } => {
                if seen.insert(request.id.clone()) {
                    handle(app, index, &request, input).await?;
                }
            }
            DeviceEvent::AnsweredElsewhere { id } => {
                println!("Request {} was answered on another device.", printable(&id))
            }
            DeviceEvent::Expired { id } => println!("Request {} expired.", printable(&id)),
            DeviceEvent::Cancelled { id } if id.is_empty() => {
                println!(
                    "The server closed the connection for account {}. Run listen again to reconnect; pending shows what you missed.",
                    app.account(index).id
                );
            }
            DeviceEvent::Cancelled { id } => {
                println!("Request {} was cancelled.", printable(&id))
            }
        }
    }
    Ok(())
}

async fn handle(
    app: &mut Authenticator,
    index: usize,
    request: &ApprovalRequest,
    input: &mut Lines<BufReader<Stdin>>,
) -> anyhow::Result<()> {
    show(&app.account(index).user_principal_name.clone(), request);
    let number = ask_number(input, "Enter the number shown to sign in: ").await?;
    let decision = loop {
        let prompt = if request.report_allowed {
            "Approve (a), Deny (d), or No, it's not me (n)? "
        } else {
            "Approve (a) or Deny (d)? "
        };
        let choice = ask(input, prompt).await?;
        match choice.to_ascii_lowercase().as_str() {
            "a" | "approve" => break Decision::Approve,
            "d" | "deny" => break Decision::Deny,
            "n" | "no" | "report" if request.report_allowed => break Decision::Report,
            _ if request.report_allowed => println!("Type a, d or n."),
            _ => println!("Type a or d."),
        }
    };
    let pin = if request.kind == ApprovalKind::PhoneSignIn {
        Some(ask_pin(input, "Device PIN: ").await?)
    } else {
        None
    };
    let number = (decision == Decision::Approve).then_some(number);
    match app
        .respond(index, request, decision, number, pin.as_deref())
        .await
    {
        Ok(outcome) => report_outcome(outcome),
        Err(e @ Error::Server { .. }) => println!("{e}"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
