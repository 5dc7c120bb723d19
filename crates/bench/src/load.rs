//! The load run: virtual users doing complete sign-ins to an OpenID Connect application, each
//! with its own browser, while their devices listen on the live channel and answer.
//!
//! One sign-in, as a browser and a phone do it:
//!
//! 1. `GET /authorize` (PKCE, state, nonce) → the sign-in page;
//! 2. `POST /login/username` → the number page, in the answer itself (for password and push:
//!    a redirect to the password page, then `POST /login/credential` → the number page);
//! 3. the device gets the request on its live channel ("notification delivery" is timed from
//!    the submit that triggers it), or, when nothing has come after `--pull-after-ms`, asks
//!    for it (`GET /authenticator/v1/requests`) as the app does when its channel is down:
//!    with several instances, a device on another instance than the browser's only hears of
//!    the request on its channel if the instances pass device events to each other;
//! 4. the device signs and posts its answer with the number from the page;
//! 5. the browser, which opened the number page's long-poll (`GET
//!    /login/status?wait=25&finish=1`, exactly as the page's script does, falling back to its
//!    one-second poll) as soon as the page was shown, learns the answer and, in the same
//!    answer, where to go: the redirect with the code (only after the fallback does it ask
//!    `GET /login` for it). "Answer → browser redirected" is timed from the answer's POST
//!    returning to this redirect;
//! 6. the application redeems the code at `/token` and checks the ID token's ES256
//!    signature against the JWKS, and its issuer, audience, nonce, expiry and user.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine;
use latchkey_authenticator::client::sign_answer;
use latchkey_protocol::wire::{
    AnswerOutcome, ApprovalKind, ApprovalRequest, Decision, DeviceEvent,
};
use sha2::Digest;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::browser::{Browser, Page};
use crate::seed::{PASSWORD, VirtualDevice, Way};
use crate::stats::Summary;

/// Where the application says it lives; the generator never connects to it, it only reads
/// the code from the redirect.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// Longest wait for any one step; past it the sign-in counts as an error.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The timed parts of one sign-in, in report order.
pub const STEPS: [&str; 11] = [
    "authorize",
    "username",
    "password",
    "number_page",
    "delivery",
    "answer",
    "status",
    "complete",
    "redirected",
    "token",
    "total",
];

/// What a request from the server tells its device's owner.
type Delivered = (ApprovalRequest, Instant);

/// How a request reached its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Pushed on the live channel.
    Socket,
    /// Fetched with `GET /authenticator/v1/requests` after nothing came on the channel.
    Pull,
}

/// How often a device that fell back to asking asks again.
const PULL_EVERY: Duration = Duration::from_millis(100);

/// A device on the live channel: a task reads it and hands requests to whoever owns it.
pub struct Listening {
    pub device: Arc<VirtualDevice>,
    pub requests: mpsc::UnboundedReceiver<Delivered>,
}

/// Opens the live channel of every device, `parallel` handshakes at a time.
pub async fn connect_all(
    devices: Vec<Arc<VirtualDevice>>,
    parallel: usize,
    tasks: &mut JoinSet<()>,
    closed: Arc<AtomicU64>,
) -> Result<Vec<Listening>> {
    let mut listening = Vec::with_capacity(devices.len());
    for chunk in devices.chunks(parallel.max(1)) {
        let mut opening = JoinSet::new();
        for (i, device) in chunk.iter().enumerate() {
            let device = device.clone();
            opening.spawn(async move {
                let stream = device.client.connect().await;
                (i, device, stream)
            });
        }
        let mut opened = Vec::with_capacity(chunk.len());
        while let Some(done) = opening.join_next().await {
            let (i, device, stream) = done?;
            let stream = stream.with_context(|| format!("connecting {}", device.upn))?;
            opened.push((i, device, stream));
        }
        opened.sort_by_key(|(i, _, _)| *i);
        for (_, device, mut stream) in opened {
            let (send, receive) = mpsc::unbounded_channel();
            let closed = closed.clone();
            tasks.spawn(async move {
                while let Some(event) = stream.next().await {
                    if let DeviceEvent::Request { request } = event {
                        let _ = send.send((request, Instant::now()));
                    }
                }
                closed.fetch_add(1, Ordering::Relaxed);
            });
            listening.push(Listening {
                device,
                requests: receive,
            });
        }
    }
    Ok(listening)
}

/// The application's side: its registration and the keys that sign its ID tokens.
pub struct Application {
    /// The server's public URL: the ID tokens' issuer.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    keys: BTreeMap<String, jsonwebtoken::DecodingKey>,
}

impl Application {
    /// Reads the JWKS once, as a relying party caches it.
    pub async fn discover(
        http: &reqwest::Client,
        base: &str,
        client_id: String,
        client_secret: String,
    ) -> Result<Application> {
        let jwks: serde_json::Value = http
            .get(format!("{base}/jwks"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut keys = BTreeMap::new();
        for key in jwks["keys"].as_array().into_iter().flatten() {
            if key["kty"] == "EC" {
                let (Some(kid), Some(x), Some(y)) =
                    (key["kid"].as_str(), key["x"].as_str(), key["y"].as_str())
                else {
                    continue;
                };
                keys.insert(
                    kid.to_string(),
                    jsonwebtoken::DecodingKey::from_ec_components(x, y)?,
                );
            }
        }
        ensure!(!keys.is_empty(), "the JWKS has no ES256 key: {jwks}");
        Ok(Application {
            issuer: base.to_string(),
            client_id,
            client_secret,
            keys,
        })
    }

    /// Checks the ID token as a relying party must.
    fn verify(&self, id_token: &str, nonce: &str, upn: &str) -> Result<()> {
        let header = jsonwebtoken::decode_header(id_token)?;
        ensure!(
            header.alg == jsonwebtoken::Algorithm::ES256,
            "ID token signed with {:?}",
            header.alg
        );
        let kid = header.kid.context("the ID token names no key")?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| anyhow!("the ID token's key {kid} is not in the JWKS"))?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[&self.client_id]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(id_token, key, &validation)?.claims;
        ensure!(claims["nonce"] == nonce, "the ID token's nonce differs");
        ensure!(
            claims["preferred_username"] == upn,
            "the ID token names {} instead of {upn}",
            claims["preferred_username"]
        );
        Ok(())
    }
}

/// A failed sign-in: the step it failed at, and why.
struct Failure {
    step: &'static str,
    reason: String,
}

trait At<T> {
    fn at(self, step: &'static str) -> Result<T, Failure>;
}

impl<T> At<T> for Result<T> {
    fn at(self, step: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            step,
            reason: format!("{e:#}"),
        })
    }
}

/// How long each step of one sign-in took.
type Timings = Vec<(&'static str, Duration)>;

fn random_text(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn step<T>(
    timings: &mut Timings,
    name: &'static str,
    work: impl Future<Output = Result<T>>,
) -> Result<T, Failure> {
    let started = Instant::now();
    let value = timeout(STEP_TIMEOUT, work)
        .await
        .map_err(|_| anyhow!("timed out after {STEP_TIMEOUT:?}"))
        .and_then(|r| r)
        .at(name)?;
    timings.push((name, started.elapsed()));
    Ok(value)
}

fn expect_status(page: &Page, wanted: &[u16], what: &str) -> Result<()> {
    ensure!(
        wanted.contains(&page.status),
        "{what}: HTTP {} {}",
        page.status,
        page.body.chars().take(200).collect::<String>()
    );
    Ok(())
}

/// Waits for the request on the device's live channel; past `pull_after`, also asks for it
/// as the app does when its channel is down, until one of them has it.
async fn receive_request(
    listening: &mut Listening,
    wanted: ApprovalKind,
    pull_after: Duration,
) -> Result<(ApprovalRequest, Instant, Delivery)> {
    let closed = || anyhow!("the device's live channel closed");
    if let Ok(pushed) = timeout(pull_after, listening.requests.recv()).await {
        let (request, at) = pushed.ok_or_else(closed)?;
        return Ok((request, at, Delivery::Socket));
    }
    let deadline = Instant::now() + STEP_TIMEOUT.saturating_sub(pull_after);
    loop {
        let waiting = listening.device.client.pending().await?;
        let now = Instant::now();
        if let Some(request) = waiting.into_iter().rev().find(|r| r.kind == wanted) {
            return Ok((request, now, Delivery::Pull));
        }
        match listening.requests.try_recv() {
            Ok((request, at)) => return Ok((request, at, Delivery::Socket)),
            Err(mpsc::error::TryRecvError::Disconnected) => return Err(closed()),
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        ensure!(
            now < deadline,
            "no request reached the device in {STEP_TIMEOUT:?}, on its channel or asking"
        );
        tokio::time::sleep(PULL_EVERY).await;
    }
}

/// The phone's side: the request reaches the device (on its live channel or by asking) and
/// it answers with `number`. Returns how the request came, and when the answer's POST
/// returned.
async fn answer_on_the_phone(
    listening: &mut Listening,
    timings: &mut Timings,
    submitted: Instant,
    number: u8,
    pull_after: Duration,
) -> Result<(Delivery, Instant), Failure> {
    let device = listening.device.clone();
    let wanted = match device.way {
        Way::PhoneSignIn => ApprovalKind::PhoneSignIn,
        Way::PasswordAndPush => ApprovalKind::MfaPush,
    };
    let (request, delivered_at, delivery) = receive_request(listening, wanted, pull_after)
        .await
        .at("delivery")?;
    timings.push((
        "delivery",
        delivered_at.saturating_duration_since(submitted),
    ));
    if request.kind != wanted || request.user_principal_name != device.upn {
        return Err(Failure {
            step: "delivery",
            reason: format!(
                "expected a {wanted:?} request for {}, got {:?} for {}",
                device.upn, request.kind, request.user_principal_name
            ),
        });
    }
    let key = device.answering_key(request.kind).at("answer")?;
    let answer = sign_answer(key, &request, Decision::Approve, Some(number));
    step(timings, "answer", async {
        let outcome = device.client.send_answer(&request.id, &answer).await?;
        ensure!(
            outcome == AnswerOutcome::Approved,
            "the answer was {outcome:?}"
        );
        Ok(())
    })
    .await?;
    Ok((delivery, Instant::now()))
}

/// One complete sign-in of `listening`'s user.
async fn sign_in(
    http: &reqwest::Client,
    app: &Application,
    listening: &mut Listening,
    pull_after: Duration,
) -> Result<(Timings, Delivery), Failure> {
    let started = Instant::now();
    let device = listening.device.clone();
    let mut timings = Timings::with_capacity(STEPS.len());
    let base = device.browser_base.as_str();
    let browser = Arc::new(Browser::new(base, http));
    let (state, nonce, verifier) = (random_text(12), random_text(12), random_text(32));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut authorize = url::Url::parse(&format!("{base}/authorize")).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &app.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile")
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");

    let login = step(&mut timings, "authorize", async {
        let page = browser
            .follow(browser.get(authorize.as_str()).await?)
            .await?;
        expect_status(&page, &[200], "the sign-in page")?;
        Ok(page)
    })
    .await?;
    // Nothing from an earlier sign-in may be waiting: it would be mistaken for this one's.
    while listening.requests.try_recv().is_ok() {}

    let csrf = login.csrf().at("authorize")?;
    let mut submitted = Instant::now();
    let after_username = step(&mut timings, "username", async {
        let page = browser
            .post(
                "/login/username",
                &[("csrf", csrf.as_str()), ("username", device.upn.as_str())],
            )
            .await?;
        // The number page comes in the answer itself (200); other stages by a redirect.
        expect_status(&page, &[200, 302, 303], "the user name")?;
        Ok(page)
    })
    .await?;
    let number_page = if device.way == Way::PasswordAndPush {
        let password_page = browser.follow(after_username).await.at("password")?;
        let csrf = password_page.csrf().at("password")?;
        submitted = Instant::now();
        let after_password = step(&mut timings, "password", async {
            let page = browser
                .post(
                    "/login/credential",
                    &[
                        ("csrf", csrf.as_str()),
                        ("method", "password"),
                        ("secret", PASSWORD),
                    ],
                )
                .await?;
            expect_status(&page, &[302, 303], "the password")?;
            Ok(page)
        })
        .await?;
        step(&mut timings, "number_page", browser.follow(after_password)).await?
    } else {
        step(&mut timings, "number_page", browser.follow(after_username)).await?
    };
    let number = number_page.number().at("number_page")?;

    // The page opens its long-poll as soon as it is shown, before the phone answers.
    let waiting = {
        let browser = browser.clone();
        tokio::spawn(async move {
            let settled = timeout(STEP_TIMEOUT, browser.wait_settled()).await;
            (settled, Instant::now())
        })
    };
    let answered =
        answer_on_the_phone(listening, &mut timings, submitted, number, pull_after).await;
    let (delivery, answered_at) = match answered {
        Ok(answered) => answered,
        Err(failure) => {
            waiting.abort();
            return Err(failure);
        }
    };
    let (settled, settled_at) = waiting
        .await
        .map_err(|e| anyhow!("the waiting browser's task failed: {e}"))
        .at("status")?;
    let next = settled
        .map_err(|_| anyhow!("timed out after {STEP_TIMEOUT:?}"))
        .and_then(|r| r)
        .at("status")?;
    timings.push(("status", settled_at.saturating_duration_since(answered_at)));
    let location = match next {
        Some(next) => next,
        // The fallback: the page reloads to learn where to go.
        None => {
            step(&mut timings, "complete", async {
                let page = browser.get("/login").await?;
                expect_status(&page, &[302, 303], "the signed-in redirect")?;
                Ok(page.location.unwrap_or_default())
            })
            .await?
        }
    };
    timings.push(("redirected", answered_at.elapsed()));
    let code = (|| {
        ensure!(
            location.starts_with(REDIRECT_URI),
            "redirected to {location} instead of the application"
        );
        ensure!(
            query_param(&location, "state").as_deref() == Some(state.as_str()),
            "the redirect's state differs"
        );
        query_param(&location, "code").ok_or_else(|| anyhow!("no code in {location}"))
    })()
    .at("complete")?;

    step(&mut timings, "token", async {
        let response = http
            .post(format!("{base}/token"))
            .basic_auth(&app.client_id, Some(&app.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await?;
        let status = response.status();
        let tokens: serde_json::Value = response.json().await?;
        ensure!(status.is_success(), "/token answered {status}: {tokens}");
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no ID token: {tokens}"))?;
        app.verify(id_token, &nonce, &device.upn)
    })
    .await?;
    timings.push(("total", started.elapsed()));
    Ok((timings, delivery))
}

/// When the run ends.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    Duration(Duration),
    Count(u64),
}

/// What a run measured.
pub struct Outcome {
    pub elapsed: Duration,
    pub completed: u64,
    pub errors: BTreeMap<String, u64>,
    pub steps: Vec<(&'static str, Summary)>,
    pub by_way: Vec<(&'static str, u64)>,
    /// Requests that reached their device on its live channel, and by asking.
    pub by_delivery: Vec<(&'static str, u64)>,
    /// The devices, handed back for the next run.
    pub listening: Vec<Listening>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

struct Collected {
    samples: BTreeMap<&'static str, Vec<Duration>>,
    errors: BTreeMap<String, u64>,
    phone: u64,
    push: u64,
    socket: u64,
    pull: u64,
}

/// Runs `concurrency` virtual users until `bound`; each owns a share of the devices and
/// signs their users in one after the other, so no two sign-ins of one user overlap.
pub async fn run(
    http: &reqwest::Client,
    app: Arc<Application>,
    listening: Vec<Listening>,
    concurrency: usize,
    bound: Bound,
    pull_after: Duration,
    progress: bool,
) -> Result<Outcome> {
    ensure!(concurrency > 0, "--concurrency must be at least 1");
    ensure!(
        listening.len() >= concurrency,
        "{} connected devices cannot keep {concurrency} virtual users apart",
        listening.len()
    );
    let mut shares: Vec<Vec<Listening>> = (0..concurrency).map(|_| Vec::new()).collect();
    for (n, device) in listening.into_iter().enumerate() {
        shares[n % concurrency].push(device);
    }
    let completed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started_count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let mut users = JoinSet::new();
    for mut share in shares {
        let (http, app) = (http.clone(), app.clone());
        let (completed, failed, started_count, stop) = (
            completed.clone(),
            failed.clone(),
            started_count.clone(),
            stop.clone(),
        );
        users.spawn(async move {
            let mut collected = Collected {
                samples: BTreeMap::new(),
                errors: BTreeMap::new(),
                phone: 0,
                push: 0,
                socket: 0,
                pull: 0,
            };
            let mut turn = 0;
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Bound::Count(count) = bound
                    && started_count.fetch_add(1, Ordering::Relaxed) >= count
                {
                    break;
                }
                let at = turn % share.len();
                let listening = &mut share[at];
                turn += 1;
                let way = listening.device.way;
                match sign_in(&http, &app, listening, pull_after).await {
                    Ok((timings, delivery)) => {
                        for (name, took) in timings {
                            collected.samples.entry(name).or_default().push(took);
                        }
                        match way {
                            Way::PhoneSignIn => collected.phone += 1,
                            Way::PasswordAndPush => collected.push += 1,
                        }
                        match delivery {
                            Delivery::Socket => collected.socket += 1,
                            Delivery::Pull => collected.pull += 1,
                        }
                        completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(failure) => {
                        let reason: String = failure.reason.chars().take(160).collect();
                        *collected
                            .errors
                            .entry(format!("{}: {reason}", failure.step))
                            .or_default() += 1;
                        failed.fetch_add(1, Ordering::Relaxed);
                        // A request left waiting would block this user's next sign-in.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (collected, share)
        });
    }

    let reporter = {
        let (completed, failed, stop) = (completed.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let done = completed.load(Ordering::Relaxed);
                let now = Instant::now();
                if progress {
                    let rate = (done - last.1) as f64 / (now - last.0).as_secs_f64();
                    eprint!(
                        "\r  {:>6.1} s  {:>8} sign-ins  {:>7.1}/s now  {:>5} errors   ",
                        started.elapsed().as_secs_f64(),
                        done,
                        rate,
                        failed.load(Ordering::Relaxed)
                    );
                }
                last = (now, done);
                if let Bound::Duration(limit) = bound
                    && started.elapsed() >= limit
                {
                    stop.store(true, Ordering::Relaxed);
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        })
    };

    let mut all = Collected {
        samples: BTreeMap::new(),
        errors: BTreeMap::new(),
        phone: 0,
        push: 0,
        socket: 0,
        pull: 0,
    };
    let mut handed_back = Vec::new();
    while let Some(done) = users.join_next().await {
        let (collected, share) = done?;
        handed_back.extend(share);
        for (name, samples) in collected.samples {
            all.samples.entry(name).or_default().extend(samples);
        }
        for (kind, count) in collected.errors {
            *all.errors.entry(kind).or_default() += count;
        }
        all.phone += collected.phone;
        all.push += collected.push;
        all.socket += collected.socket;
        all.pull += collected.pull;
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    reporter.abort();
    if progress {
        eprintln!();
    }
    let steps = STEPS
        .iter()
        .filter_map(|name| Some((*name, Summary::of(all.samples.get(name)?)?)))
        .collect();
    let completed = completed.load(Ordering::Relaxed);
    if completed == 0 && all.errors.is_empty() {
        bail!("no sign-in ran");
    }
    Ok(Outcome {
        elapsed,
        completed,
        errors: all.errors,
        steps,
        by_way: vec![
            ("phone_sign_in", all.phone),
            ("password_and_push", all.push),
        ],
        by_delivery: vec![("socket", all.socket), ("pull", all.pull)],
        listening: handed_back,
    })
}
