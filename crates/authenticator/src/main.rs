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
    /// asks for the current PIN first. ACCOUNT is the number `accounts` shows or the user
    /// name; it may be left out when the device has one account.
    EnablePhoneSignIn { account: Option<String> },
    /// Turn phone sign-in off for an account (asks for the device PIN; MFA push keeps working).
    DisablePhoneSignIn { account: Option<String> },
    /// Remove an account from this device and from the server.
    Remove { account: String },
    /// Show requests that arrived while you were not listening.
    Pending { account: Option<String> },
    /// Wait for requests and answer them as they arrive.
    Listen { account: Option<String> },
    /// Answer one request without prompts (the PIN, needed only to approve a phone sign-in,
    /// comes from stdin; a wrong one is asked for again).
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
async fn main() {
    let cli = Cli::parse();
    // Ctrl-C ends the program here, after the command (and so any prompt's `EchoOff`) is
    // dropped: interrupted at the PIN prompt, the terminal gets its echo back.
    let mut command = Box::pin(run(cli));
    let finished = tokio::select! {
        result = &mut command => Some(result),
        _ = tokio::signal::ctrl_c() => None,
    };
    drop(command);
    use std::io::Write;
    // Exits at once: a read of standard input still waiting must not hold the program open.
    let code = match finished {
        Some(Ok(())) => 0,
        Some(Err(e)) => {
            std::io::stdout().flush().ok();
            eprintln!("Error: {e:#}");
            1
        }
        None => {
            println!();
            130
        }
    };
    std::io::stdout().flush().ok();
    std::process::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<()> {
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
            report_outcome(test.kind, outcome);
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
            let index = one_account(&app, account.as_deref())?;
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
            let index = one_account(&app, account.as_deref())?;
            loop {
                let pin = ask_pin(&mut input, "Device PIN: ").await?;
                match app.disable_phone_sign_in(index, &pin).await {
                    Err(e) if pin_retry(&app, index, &e) => println!("{e}. Try again."),
                    other => break other?,
                }
            }
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
            let number = (decision == Decision::Approve).then_some(number).flatten();
            let outcome = if needs_pin(&found, decision) {
                loop {
                    let pin = ask_pin(&mut input, "Device PIN: ").await?;
                    match app
                        .respond(index, &found, decision, number, Some(&pin))
                        .await
                    {
                        Err(e) if pin_retry(&app, index, &e) => println!("{e}. Try again."),
                        other => break other?,
                    }
                }
            } else {
                app.respond(index, &found, decision, number, None).await?
            };
            report_outcome(found.kind, outcome);
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

/// The account a command is for: the one named (its number or user name), or the device's
/// only account.
fn one_account(app: &Authenticator, account: Option<&str>) -> anyhow::Result<usize> {
    if let Some(selector) = account {
        return Ok(app.find(selector)?);
    }
    match app.accounts() {
        [] => bail!("no accounts yet; add one first with `add <activation link>`"),
        [_] => Ok(0),
        several => {
            let list: Vec<String> = several
                .iter()
                .map(|a| {
                    format!(
                        "  {}  {}  {}",
                        a.id,
                        printable(&a.user_principal_name),
                        printable(&a.server)
                    )
                })
                .collect();
            bail!(
                "this device has {} accounts; name one by its number or user name:\n{}",
                several.len(),
                list.join("\n")
            )
        }
    }
}

/// Only approving a phone sign-in needs the device PIN; refusing never does.
fn needs_pin(request: &ApprovalRequest, decision: Decision) -> bool {
    request.kind == ApprovalKind::PhoneSignIn && decision == Decision::Approve
}

/// Whether a failure to open the passwordless key is worth asking for the PIN again: a wrong
/// PIN the server counted (it says how many remain), or one of the wrong length.
fn pin_retry(app: &Authenticator, index: usize, error: &Error) -> bool {
    match error {
        Error::Server { code, .. } => code == "wrong_pin",
        Error::Usage(_) => app.account(index).phone_sign_in(),
        _ => false,
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
        ApprovalKind::PhoneSignInConsent => "Allow phone sign-in on this device?",
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

/// Where the number to type is shown.
fn number_prompt(kind: ApprovalKind) -> &'static str {
    match kind {
        ApprovalKind::PhoneSignIn | ApprovalKind::MfaPush => "Enter the number shown to sign in: ",
        ApprovalKind::RegistrationTest | ApprovalKind::PhoneSignInConsent => {
            "Enter the number the security-info page shows: "
        }
    }
}

fn report_outcome(kind: ApprovalKind, outcome: AnswerOutcome) {
    if kind == ApprovalKind::PhoneSignInConsent {
        println!(
            "{}",
            match outcome {
                AnswerOutcome::Approved =>
                    "Approved. Phone sign-in may be turned on for this account now: run enable-phone-sign-in.",
                AnswerOutcome::WrongNumber => "That number didn't match; nothing was allowed.",
                _ => "Denied; nothing was allowed.",
            }
        );
        return;
    }
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

/// What the live channels tell `listen`.
enum Heard {
    Event(usize, DeviceEvent),
    /// The account's live channel is open again after it was lost.
    Reconnected(usize),
    /// The account's live channel closed; the app is trying to reopen it.
    Lost(usize),
    /// The server refused to reopen it (for example, the device was removed).
    Refused(usize, Error),
}

/// The request an event says has ended, and the line that says how.
fn ended(event: &DeviceEvent) -> Option<(&str, &'static str)> {
    match event {
        DeviceEvent::AnsweredElsewhere { id } => Some((id, "was answered on another device")),
        DeviceEvent::Expired { id } => Some((id, "expired")),
        DeviceEvent::Cancelled { id } => Some((
            id,
            "was cancelled (the sign-in was stopped or continued another way)",
        )),
        DeviceEvent::Request { .. } => None,
    }
}

/// Keeps an account's live channel open: forwards its events, and reopens it (waiting a
/// little longer each time, up to 30 s) when it closes.
fn keep_listening(
    index: usize,
    client: latchkey_authenticator::DeviceClient,
    first: latchkey_authenticator::EventStream,
    tx: tokio::sync::mpsc::Sender<Heard>,
) {
    tokio::spawn(async move {
        let mut stream = Some(first);
        let mut delay = std::time::Duration::from_secs(1);
        loop {
            if let Some(mut open) = stream.take() {
                while let Some(event) = open.next().await {
                    if tx.send(Heard::Event(index, event)).await.is_err() {
                        return;
                    }
                }
                if tx.send(Heard::Lost(index)).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(delay).await;
            match client.connect().await {
                Ok(open) => {
                    delay = std::time::Duration::from_secs(1);
                    stream = Some(open);
                    if tx.send(Heard::Reconnected(index)).await.is_err() {
                        return;
                    }
                }
                // The server answered and said no: trying again will not help.
                Err(e @ Error::Server { status, .. }) if status != 429 && status < 500 => {
                    let _ = tx.send(Heard::Refused(index, e)).await;
                    return;
                }
                Err(_) => delay = (delay * 2).min(std::time::Duration::from_secs(30)),
            }
        }
    });
}

/// `listen`: answers requests on every selected account as they arrive.
struct Listener<'a> {
    app: &'a mut Authenticator,
    input: &'a mut Lines<BufReader<Stdin>>,
    indices: Vec<usize>,
    rx: tokio::sync::mpsc::Receiver<Heard>,
    /// Whether some live channel can still send.
    channels_open: bool,
    /// What arrived while a prompt was open, handled after it.
    later: std::collections::VecDeque<Heard>,
    /// Requests shown (answered or abandoned): each is shown once, whether it arrives by a
    /// pull or on the live channel.
    seen: std::collections::HashSet<String>,
}

/// Waits for requests on every selected account and answers them at the prompt.
async fn listen(
    app: &mut Authenticator,
    account: Option<&str>,
    input: &mut Lines<BufReader<Stdin>>,
) -> anyhow::Result<()> {
    let indices = selected(app, account)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Heard>(64);
    for &index in &indices {
        let stream = app.connect(index).await?;
        keep_listening(index, app.client(index)?, stream, tx.clone());
    }
    drop(tx);
    println!(
        "Listening for {} account(s). Press Ctrl-C to stop.",
        indices.len()
    );
    let mut listener = Listener {
        app,
        input,
        indices,
        rx,
        channels_open: true,
        later: Default::default(),
        seen: Default::default(),
    };
    listener.run().await
}

impl Listener<'_> {
    async fn run(&mut self) -> anyhow::Result<()> {
        self.look_again().await?;
        loop {
            let heard = match self.later.pop_front() {
                Some(heard) => heard,
                None => match self.rx.recv().await {
                    Some(heard) => heard,
                    None => return Ok(()),
                },
            };
            match heard {
                Heard::Event(index, DeviceEvent::Request { request }) => {
                    self.answer(index, request).await?;
                    self.look_again().await?;
                }
                Heard::Event(_, event) => {
                    // Said once: a request answered here or abandoned at its prompt is done.
                    if let Some((id, how)) = ended(&event)
                        && self.seen.insert(id.to_string())
                    {
                        println!("Request {} {how}.", printable(id));
                    }
                }
                Heard::Lost(index) => println!(
                    "Lost the connection for account {}; reconnecting.",
                    self.app.account(index).id
                ),
                Heard::Reconnected(index) => {
                    println!("Reconnected account {}.", self.app.account(index).id);
                    self.look_again().await?;
                }
                Heard::Refused(index, e) => println!(
                    "Stopped listening for account {}: {e}",
                    self.app.account(index).id
                ),
            }
        }
    }

    /// Pulls what is waiting on every account and answers what was not shown yet, until
    /// nothing new is waiting (so a request that arrived while another was answered, or
    /// while a connection was down, is not missed).
    async fn look_again(&mut self) -> anyhow::Result<()> {
        loop {
            let mut fresh = Vec::new();
            for &index in &self.indices {
                match self.app.pending(index).await {
                    Ok(requests) => fresh.extend(
                        requests
                            .into_iter()
                            .filter(|r| !self.seen.contains(&r.id))
                            .map(|r| (index, r)),
                    ),
                    // Unreachable for now: the live channel's reconnection pulls again.
                    Err(e) => println!(
                        "Could not look for waiting requests for account {}: {e}",
                        self.app.account(index).id
                    ),
                }
            }
            if fresh.is_empty() {
                return Ok(());
            }
            for (index, request) in fresh {
                self.answer(index, request).await?;
            }
        }
    }

    /// Shows a request and answers it at the prompt. The prompt is abandoned, with a line
    /// saying why, when the request ends meanwhile (answered elsewhere, expired, cancelled).
    async fn answer(&mut self, index: usize, request: ApprovalRequest) -> anyhow::Result<()> {
        if !self.seen.insert(request.id.clone()) {
            return Ok(());
        }
        // It may have ended while another prompt was open.
        if let Some(how) = self.later.iter().find_map(|heard| match heard {
            Heard::Event(_, event) => ended(event).filter(|(id, _)| *id == request.id),
            _ => None,
        }) {
            println!("Request {} {}.", printable(&request.id), how.1);
            return Ok(());
        }
        show(
            &self.app.account(index).user_principal_name.clone(),
            &request,
        );
        let choices = if request.report_allowed {
            "Approve (a), Deny (d), or No, it's not me (n)? "
        } else {
            "Approve (a) or Deny (d)? "
        };
        let decision = loop {
            let Some(choice) = self.ask(&request, choices, false).await? else {
                return Ok(());
            };
            match choice.to_ascii_lowercase().as_str() {
                "a" | "approve" => break Decision::Approve,
                "d" | "deny" => break Decision::Deny,
                "n" | "no" | "report" if request.report_allowed => break Decision::Report,
                _ if request.report_allowed => println!("Type a, d or n."),
                _ => println!("Type a or d."),
            }
        };
        let number = if decision == Decision::Approve {
            loop {
                let Some(answer) = self
                    .ask(&request, number_prompt(request.kind), false)
                    .await?
                else {
                    return Ok(());
                };
                match answer.parse::<u8>() {
                    Ok(n) if (10..=99).contains(&n) => break Some(n),
                    _ => println!("Type the two-digit number the sign-in page shows."),
                }
            }
        } else {
            None
        };
        let result = loop {
            let pin = if needs_pin(&request, decision) {
                match self.ask(&request, "Device PIN: ", true).await? {
                    Some(pin) => Some(pin),
                    None => return Ok(()),
                }
            } else {
                None
            };
            match self
                .app
                .respond(index, &request, decision, number, pin.as_deref())
                .await
            {
                Err(e) if pin.is_some() && pin_retry(self.app, index, &e) => {
                    println!("{e}. Try again.")
                }
                other => break other,
            }
        };
        match result {
            Ok(outcome) => report_outcome(request.kind, outcome),
            Err(e @ (Error::Server { .. } | Error::Usage(_))) => println!("{e}"),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Asks at the prompt for `request`; `None` (after a line saying why) when the request
    /// ends before the person answers. What else arrives meanwhile waits in `later`.
    async fn ask(
        &mut self,
        request: &ApprovalRequest,
        prompt: &str,
        pin: bool,
    ) -> anyhow::Result<Option<String>> {
        use std::io::Write;
        print!("{prompt}");
        std::io::stdout().flush().ok();
        let quiet = pin.then(EchoOff::on_stdin);
        loop {
            tokio::select! {
                line = self.input.next_line() => {
                    drop(quiet);
                    let line = line?.context("no input (standard input closed)")?;
                    return Ok(Some(line.trim().to_string()));
                }
                heard = self.rx.recv(), if self.channels_open => match heard {
                    Some(Heard::Event(_, event)) if ended(&event).is_some_and(|(id, _)| id == request.id) => {
                        drop(quiet);
                        let (_, how) = ended(&event).expect("checked");
                        println!();
                        println!(
                            "Request {} {how}; nothing was sent. The question above no longer applies.",
                            printable(&request.id)
                        );
                        return Ok(None);
                    }
                    Some(other) => self.later.push_back(other),
                    None => self.channels_open = false,
                },
            }
        }
    }
}
