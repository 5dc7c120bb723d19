//! The devices: the one phone whose sign-ins are timed, and the crowd of idle ones that only
//! keep their live channel open.
//!
//! Users are created through the domain rather than the security-info pages: the pages are
//! not what is measured, and a thousand Temporary Access Pass sign-ins would only slow the
//! set-up. The device side still goes over real HTTP and WebSockets with the real
//! authenticator library, so every device is registered exactly as a phone would be.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, ensure};
use latchkey_authenticator::{Authenticator, EventStream};
use latchkey_domain::Latchkey;
use latchkey_domain::log::Actor;
use latchkey_domain::service::{ActivationProgress, NewUser};
use latchkey_protocol::DeviceKeyPair;
use latchkey_protocol::wire::{AnswerOutcome, ApprovalKind, Decision};
use tempfile::TempDir;
use tokio::task::JoinSet;

pub const PIN: &str = "246810";

/// Each `add` rewrites (and fsyncs) the whole key store, so one home with a thousand accounts
/// would write about a quarter of a gigabyte; homes of a hundred keep set-up to seconds.
const ACCOUNTS_PER_HOME: usize = 100;

/// One authenticator app with its home folder, which lives as long as the app.
pub struct Home {
    pub app: Authenticator,
    _dir: TempDir,
}

impl Home {
    fn new() -> Result<Home> {
        let dir = tempfile::tempdir()?;
        let app = Authenticator::open(dir.path())?;
        Ok(Home { app, _dir: dir })
    }
}

/// Creates a user, registers an account for them in `app` and approves the registration test
/// with the number the security-info page would show. Returns the account's index.
async fn register(latchkey: &Latchkey, app: &mut Authenticator, upn: &str) -> Result<usize> {
    let user = latchkey
        .directory
        .create_user(
            &Actor::system(),
            NewUser {
                user_principal_name: upn.to_string(),
                display_name: upn.split('@').next().unwrap_or(upn).to_string(),
                mail: None,
                account_enabled: true,
            },
        )
        .await
        .with_context(|| format!("creating {upn}"))?;
    let (activation, link) = latchkey.devices.start_activation(&user.id).await?;
    let (account, test) = app
        .add(&link, "Bench phone")
        .await
        .with_context(|| format!("activating {upn}'s device"))?;
    ensure!(test.kind == ApprovalKind::RegistrationTest, "{test:?}");
    // The number the security-info page shows while the device is being added.
    let number = match latchkey
        .devices
        .activation_progress(&user.id, &activation.id)
        .await?
    {
        ActivationProgress::WaitingForTest { number, .. } => number,
        other => return Err(anyhow!("the test notification is not waiting: {other:?}")),
    };
    let outcome = app
        .respond(account, &test, Decision::Approve, Some(number), None)
        .await?;
    ensure!(
        outcome == AnswerOutcome::Approved,
        "test answered {outcome:?}"
    );
    Ok(account)
}

/// The phone whose sign-ins are timed, with phone sign-in enabled.
pub struct MeasuredPhone {
    pub home: Home,
    pub account: usize,
    pub upn: String,
    /// Opened once with the PIN up front (the server checks it and releases the unlock
    /// secret): a real app spends tens of milliseconds in argon2id and one more request before
    /// it sends an answer, which is the phone's time, not the server's.
    pub passwordless_key: DeviceKeyPair,
}

impl MeasuredPhone {
    pub async fn set_up(latchkey: &Latchkey, upn: &str) -> Result<MeasuredPhone> {
        let mut home = Home::new()?;
        let account = register(latchkey, &mut home.app, upn).await?;
        home.app.enable_phone_sign_in(account, PIN).await?;
        let passwordless_key = home.app.unlock_passwordless_key(account, PIN).await?;
        Ok(MeasuredPhone {
            home,
            account,
            upn: upn.to_string(),
            passwordless_key,
        })
    }
}

/// Registers `count` devices for as many users, several homes at a time.
pub async fn seed_idle(latchkey: Arc<Latchkey>, count: usize) -> Result<Vec<Home>> {
    let mut tasks = JoinSet::new();
    for first in (0..count).step_by(ACCOUNTS_PER_HOME) {
        let last = (first + ACCOUNTS_PER_HOME).min(count);
        let latchkey = latchkey.clone();
        tasks.spawn(async move {
            let mut home = Home::new()?;
            for n in first..last {
                register(
                    &latchkey,
                    &mut home.app,
                    &format!("idle{n:04}@contoso.example"),
                )
                .await?;
            }
            anyhow::Ok(home)
        });
    }
    let mut homes = Vec::new();
    while let Some(home) = tasks.join_next().await {
        homes.push(home??);
    }
    Ok(homes)
}

/// The idle devices' open live channels. Each is read by a task of its own, as an app would,
/// so pings are answered and a channel the server drops is noticed.
pub struct IdleConnections {
    tasks: JoinSet<()>,
    closed: Arc<AtomicUsize>,
    events: Arc<AtomicUsize>,
    pub open: usize,
}

impl IdleConnections {
    pub async fn connect(homes: &[Home]) -> Result<IdleConnections> {
        let closed = Arc::new(AtomicUsize::new(0));
        let events = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        let mut open = 0;
        for home in homes {
            for index in 0..home.app.accounts().len() {
                let mut stream: EventStream = home
                    .app
                    .connect(index)
                    .await
                    .with_context(|| format!("connecting idle device {open}"))?;
                let closed = closed.clone();
                let events = events.clone();
                tasks.spawn(async move {
                    while stream.next().await.is_some() {
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                    closed.fetch_add(1, Ordering::Relaxed);
                });
                open += 1;
            }
        }
        Ok(IdleConnections {
            tasks,
            closed,
            events,
            open,
        })
    }

    /// Channels the server closed since they were opened.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::Relaxed)
    }

    /// Events idle devices received; none are sent to them, so anything here is a bug.
    pub fn events(&self) -> usize {
        self.events.load(Ordering::Relaxed)
    }

    pub async fn close(mut self) {
        self.tasks.shutdown().await;
    }
}
