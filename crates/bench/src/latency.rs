//! `latchkey-bench latency`: how long one phone sign-in takes, measured the way real clients
//! see it, with nothing else running.
//!
//! It starts a Latchkey server in-process on a loopback port, registers one phone with phone
//! sign-in enabled, and signs in to My Apps with it over and over, each time with a fresh
//! browser. Two intervals are timed:
//!
//! * **UPN submitted → request on the device**: from just before the browser posts the user
//!   name until the phone's live channel (WebSocket) delivers the request.
//! * **answer sent → browser signed in**: from just before the phone posts its signed answer
//!   until the browser, waiting with the number page's long-poll (`GET
//!   /login/status?wait=25&finish=1`, as the page's script does), learns the request is
//!   settled; the long-poll's answer carries the redirect that completes the sign-in (should
//!   it not, the browser's next `GET /login` returns it, and the clock runs until then).
//! * **answer → browser redirected**: the same end, from the moment the answer's POST
//!   returned to the phone.
//!
//! Both run first with only the measured phone connected, then with `--idle-devices` phones
//! connected (the measured one and idle others), to show what a crowd of open live channels
//! costs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use latchkey_authenticator::EventStream;
use latchkey_protocol::wire::{
    Answer, AnswerOutcome, ApprovalKind, ApprovalRequest, Decision, DeviceEvent,
};
use latchkey_protocol::{answer_signing_input, context_digest};
use tokio::time::timeout;

use crate::browser::{Browser, Page, shared_client};
use crate::devices::{IdleConnections, MeasuredPhone, seed_idle};
use crate::server::InProcessServer;
use crate::stats::{Summary, ms};

/// How the browser waits, as the number page's script does.
const HOW_THE_BROWSER_WAITS: &str = "long-poll GET /login/status?wait=25&finish=1";

/// Longest wait for any one step; a sign-in that takes this long is a failure, not a sample,
/// and it keeps the run from hanging.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

const MEASURED_UPN: &str = "bench@contoso.example";

#[derive(clap::Args)]
pub struct Args {
    /// Timed sign-ins per scenario.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Phones connected in the second scenario, the measured one included (so N − 1 idle
    /// ones). The first scenario always has the measured phone alone; 1 or less skips the
    /// second.
    #[arg(long, default_value_t = 1000)]
    idle_devices: usize,
    /// Untimed sign-ins before each scenario, so that first-use costs (connection set-up,
    /// prepared statements, page templates) stay out of the samples.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Also write the results as JSON to this file (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// One timed sign-in.
struct Sample {
    upn_to_device: Duration,
    answer_to_outcome: Duration,
    answer_to_status: Duration,
    answer_to_signed_in: Duration,
    answered_to_redirected: Duration,
}

/// The metrics, in the order they are reported: JSON key, label for people, and the field.
type Metric = (&'static str, &'static str, fn(&Sample) -> Duration);
const METRICS: [Metric; 5] = [
    (
        "upn_to_device",
        "UPN submitted → request on the device",
        |s| s.upn_to_device,
    ),
    (
        "answer_to_outcome",
        "answer sent → device has the outcome",
        |s| s.answer_to_outcome,
    ),
    (
        "answer_to_status",
        "answer sent → status not pending",
        |s| s.answer_to_status,
    ),
    (
        "answer_to_signed_in",
        "answer sent → signed-in redirect",
        |s| s.answer_to_signed_in,
    ),
    (
        "answered_to_redirected",
        "answer → browser redirected",
        |s| s.answered_to_redirected,
    ),
];

/// Waits on the live channel for the phone sign-in request for `upn`, and notes when it
/// arrived.
async fn next_request(stream: &mut EventStream, upn: &str) -> Result<(ApprovalRequest, Instant)> {
    loop {
        match stream.next().await {
            Some(DeviceEvent::Request { request })
                if request.kind == ApprovalKind::PhoneSignIn
                    && request.user_principal_name == upn =>
            {
                return Ok((request, Instant::now()));
            }
            Some(_) => continue,
            None => bail!("the server closed the measured phone's live channel"),
        }
    }
}

/// Waits as the number page does (its long-poll, [`crate::browser::WAIT_URL`]) until the
/// request is settled. The long-poll's answer says where to go next; should it not (the
/// fallback), the page reloads `/login` to learn it. Returns when each of the two happened,
/// and the redirect that completes the sign-in.
async fn wait_for_sign_in(browser: &Browser) -> Result<(Instant, Instant, Page)> {
    let next = browser.wait_settled().await?;
    let settled = Instant::now();
    match next {
        Some(next) => Ok((
            settled,
            settled,
            Page {
                status: 303,
                location: Some(next),
                body: String::new(),
            },
        )),
        None => {
            let page = browser.get("/login").await?;
            Ok((settled, Instant::now(), page))
        }
    }
}

/// Signs in to My Apps once with a fresh browser. With `verify`, also follows the final
/// redirect (untimed) to check that My Apps shows the user signed in.
async fn sign_in_once(
    http: &reqwest::Client,
    base: &str,
    phone: &MeasuredPhone,
    stream: &mut EventStream,
    verify: bool,
) -> Result<Sample> {
    let browser = Browser::new(base, http);
    let login = browser.follow(browser.get("/myapps").await?).await?;
    ensure!(
        login.status == 200,
        "expected the sign-in page: {}",
        login.body
    );
    let csrf = login.csrf()?;
    let form = [("csrf", csrf.as_str()), ("username", phone.upn.as_str())];

    let submitted = Instant::now();
    let (number_page, delivered) = tokio::join!(
        async {
            browser
                .follow(browser.post("/login/username", &form).await?)
                .await
        },
        timeout(STEP_TIMEOUT, next_request(stream, &phone.upn)),
    );
    let (request, shown) = delivered.context("the request never reached the device")??;
    let number = number_page?.number()?;

    // Signed before the clock starts: the phone's work is not the server's latency.
    let digest = context_digest(&request);
    let decision = Decision::Approve;
    let answer = Answer {
        decision,
        number: Some(number),
        signature: phone.passwordless_key.sign(&answer_signing_input(
            &request.id,
            &request.nonce,
            decision,
            Some(number),
            &digest,
        )),
        context_digest: digest,
        assertion: None,
    };

    // The browser waits (the page's long-poll) while the answer is on its way.
    let answered = Instant::now();
    let (outcome, browser_side) = tokio::join!(
        async {
            let outcome = phone
                .home
                .app
                .send_answer(phone.account, &request.id, &answer)
                .await;
            (outcome, Instant::now())
        },
        timeout(STEP_TIMEOUT, wait_for_sign_in(&browser)),
    );
    let (outcome, outcome_at) = outcome;
    ensure!(
        outcome? == AnswerOutcome::Approved,
        "the answer was not accepted"
    );
    let (settled, signed_in, page) =
        browser_side.context("the browser never learned the answer")??;
    let location = page.location.clone().unwrap_or_default();
    ensure!(
        matches!(page.status, 302 | 303 | 307) && !location.contains("/login"),
        "expected the redirect that completes the sign-in, got {} to {location:?}: {}",
        page.status,
        page.body
    );
    if verify {
        ensure!(
            location.contains("/myapps/callback?") && location.contains("code="),
            "expected a code for My Apps: {location}"
        );
        let apps = browser.follow(page).await?;
        ensure!(
            apps.body.contains("Signed in as"),
            "My Apps does not show the user signed in: {}",
            apps.body
        );
    }
    Ok(Sample {
        upn_to_device: shown - submitted,
        answer_to_outcome: outcome_at - answered,
        answer_to_status: settled - answered,
        answer_to_signed_in: signed_in - answered,
        answered_to_redirected: signed_in.saturating_duration_since(outcome_at),
    })
}

struct Scenario {
    name: &'static str,
    connected: usize,
    samples: Vec<Sample>,
    elapsed: Duration,
}

async fn run_scenario(
    name: &'static str,
    connected: usize,
    args: &Args,
    base: &str,
    phone: &MeasuredPhone,
    stream: &mut EventStream,
) -> Result<Scenario> {
    eprintln!(
        "{name}: {}; {} warm-up and {} timed sign-ins",
        devices(connected),
        args.warmup,
        args.iterations
    );
    let started = Instant::now();
    let http = shared_client()?;
    for i in 0..args.warmup {
        sign_in_once(&http, base, phone, stream, i == 0)
            .await
            .with_context(|| format!("{name}: warm-up sign-in {}", i + 1))?;
    }
    let mut samples = Vec::with_capacity(args.iterations);
    for i in 0..args.iterations {
        // The end-to-end check runs once per scenario, on a warm-up sign-in if there is one.
        let verify = i == 0 && args.warmup == 0;
        samples.push(
            sign_in_once(&http, base, phone, stream, verify)
                .await
                .with_context(|| format!("{name}: sign-in {}", i + 1))?,
        );
    }
    Ok(Scenario {
        name,
        connected,
        samples,
        elapsed: started.elapsed(),
    })
}

fn summaries(scenario: &Scenario) -> Vec<(&'static str, &'static str, Option<Summary>)> {
    METRICS
        .iter()
        .map(|(key, label, field)| {
            let values: Vec<Duration> = scenario.samples.iter().map(field).collect();
            (*key, *label, Summary::of(&values))
        })
        .collect()
}

fn devices(connected: usize) -> String {
    match connected {
        1 => "1 device connected".to_string(),
        n => format!("{n} devices connected"),
    }
}

fn print_human(scenarios: &[Scenario]) {
    println!();
    println!(
        "Latchkey phone sign-in latency, in-process server over loopback, the browser waiting with {HOW_THE_BROWSER_WAITS}"
    );
    for scenario in scenarios {
        println!();
        println!(
            "{} — {}, {} sign-ins in {:.1} s",
            scenario.name,
            devices(scenario.connected),
            scenario.samples.len(),
            scenario.elapsed.as_secs_f64()
        );
        println!(
            "  {:<40} {:>10} {:>10} {:>10} {:>6}",
            "", "median", "p99", "max", "count"
        );
        for (_, label, summary) in summaries(scenario) {
            let Some(s) = summary else { continue };
            println!(
                "  {:<40} {:>7.2} ms {:>7.2} ms {:>7.2} ms {:>6}",
                label,
                ms(s.median),
                ms(s.p99),
                ms(s.max),
                s.count
            );
        }
    }
}

fn to_json(args: &Args, scenarios: &[Scenario]) -> serde_json::Value {
    let scenarios: Vec<serde_json::Value> = scenarios
        .iter()
        .map(|scenario| {
            let metrics: serde_json::Map<String, serde_json::Value> = summaries(scenario)
                .into_iter()
                .filter_map(|(key, _, s)| Some((key.to_string(), s?.to_json())))
                .collect();
            serde_json::json!({
                "name": scenario.name,
                "connected_devices": scenario.connected,
                "elapsed_s": scenario.elapsed.as_secs_f64(),
                "metrics": metrics,
            })
        })
        .collect();
    serde_json::json!({
        "iterations": args.iterations,
        "warmup": args.warmup,
        "browser_waits_with": HOW_THE_BROWSER_WAITS,
        "scenarios": scenarios,
    })
}

pub async fn run(args: Args) -> Result<()> {
    ensure!(args.iterations > 0, "--iterations must be at least 1");
    let started = Instant::now();

    let server = InProcessServer::start().await?;
    eprintln!("server listening on {}", server.target.base);
    let phone = MeasuredPhone::set_up(&server.latchkey, MEASURED_UPN).await?;

    // Registered before the first scenario, so that both run against the same database and
    // differ only in how many live channels are open.
    let idle = args.idle_devices.saturating_sub(1);
    let seeding = Instant::now();
    let homes = seed_idle(server.latchkey.clone(), idle).await?;
    if idle > 0 {
        eprintln!(
            "registered {idle} idle devices in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
    }

    let mut stream = phone.home.app.connect(phone.account).await?;
    let mut scenarios = vec![
        run_scenario(
            "at rest",
            1,
            &args,
            &server.target.base,
            &phone,
            &mut stream,
        )
        .await?,
    ];
    if idle > 0 {
        let connecting = Instant::now();
        let connections = IdleConnections::connect(&homes).await?;
        eprintln!(
            "opened {} idle live channels in {:.1} s",
            connections.open,
            connecting.elapsed().as_secs_f64()
        );
        let connected = connections.open + 1;
        scenarios.push(
            run_scenario(
                "with idle devices",
                connected,
                &args,
                &server.target.base,
                &phone,
                &mut stream,
            )
            .await?,
        );
        // A channel the server dropped mid-run would make the crowd smaller than reported.
        let (closed, events) = (connections.closed(), connections.events());
        connections.close().await;
        ensure!(
            closed == 0,
            "the server closed {closed} idle live channels during the run"
        );
        ensure!(
            events == 0,
            "idle devices received {events} events meant for no one"
        );
    }
    stream.close().await;

    print_human(&scenarios);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&to_json(&args, &scenarios))?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }

    drop((homes, phone));
    server
        .stop()
        .await
        .map_err(|e| anyhow!("stopping the server: {e:#}"))?;
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
