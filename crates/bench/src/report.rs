//! What a run tells people (a summary on standard output) and machines (JSON).

use serde_json::{Value, json};

use crate::load::Outcome;
use crate::server::ProcStats;
use crate::stats::ms;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// What each step's name means, for people.
fn label(step: &str) -> &'static str {
    match step {
        "authorize" => "GET /authorize → sign-in page",
        "username" => "POST /login/username",
        "password" => "POST /login/credential (password)",
        "number_page" => "number page",
        "delivery" => "notification delivery (submit → device)",
        "answer" => "device answer (POST …/answer)",
        "status" => "GET /login/status until settled",
        "complete" => "GET /login → redirect with code",
        "token" => "POST /token + ID token checked",
        "total" => "whole sign-in",
        _ => "",
    }
}

pub struct Load<'a> {
    pub scenario: &'static str,
    pub server: &'static str,
    pub users: usize,
    pub devices: usize,
    pub concurrency: usize,
    pub password_every: usize,
    pub outcome: &'a Outcome,
    pub before: Option<ProcStats>,
    pub after: Option<ProcStats>,
    pub dropped_channels: u64,
}

impl Load<'_> {
    fn cpu_seconds(&self) -> Option<f64> {
        Some(self.after?.cpu_seconds - self.before?.cpu_seconds)
    }

    pub fn print(&self) {
        let o = self.outcome;
        println!();
        println!("Latchkey load — scenario {}", self.scenario);
        println!(
            "  {} users seeded, {} devices connected, {} virtual users; server: {}",
            self.users, self.devices, self.concurrency, self.server
        );
        println!(
            "  {} sign-ins completed in {:.1} s: {:.1} per second; {} errors",
            o.completed,
            o.elapsed.as_secs_f64(),
            o.rate(),
            o.errors.values().sum::<u64>()
        );
        for (way, count) in &o.by_way {
            if *count > 0 {
                println!("    {way}: {count}");
            }
        }
        if let (Some(cpu), Some(after)) = (self.cpu_seconds(), self.after) {
            println!(
                "  server CPU {cpu:.1} s ({:.0}% of one core; {:.2} ms per sign-in); resident {:.0} MiB, peak {:.0} MiB",
                100.0 * cpu / o.elapsed.as_secs_f64(),
                1000.0 * cpu / (o.completed.max(1) as f64),
                mib(after.rss_kib),
                mib(after.peak_rss_kib)
            );
        }
        println!(
            "  {:<44} {:>9} {:>9} {:>9} {:>9} {:>7}",
            "", "p50", "p95", "p99", "max", "count"
        );
        for (step, s) in &o.steps {
            println!(
                "  {:<44} {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>7}",
                label(step),
                ms(s.median),
                ms(s.p95),
                ms(s.p99),
                ms(s.max),
                s.count
            );
        }
        for (kind, count) in &o.errors {
            println!("  error ×{count}: {kind}");
        }
        if self.dropped_channels > 0 {
            println!(
                "  the server closed {} live channels during the run",
                self.dropped_channels
            );
        }
    }

    pub fn to_json(&self) -> Value {
        let o = self.outcome;
        let steps: serde_json::Map<String, Value> = o
            .steps
            .iter()
            .map(|(step, s)| (step.to_string(), s.to_json()))
            .collect();
        let by_way: serde_json::Map<String, Value> = o
            .by_way
            .iter()
            .map(|(way, n)| (way.to_string(), json!(n)))
            .collect();
        json!({
            "scenario": self.scenario,
            "server": self.server,
            "users": self.users,
            "connected_devices": self.devices,
            "concurrency": self.concurrency,
            "password_every": self.password_every,
            "elapsed_s": o.elapsed.as_secs_f64(),
            "completed": o.completed,
            "sign_ins_per_second": o.rate(),
            "by_way": by_way,
            "errors": o.errors,
            "steps": steps,
            "server_cpu_seconds": self.cpu_seconds(),
            "server_rss_mib": self.after.map(|a| mib(a.rss_kib)),
            "server_peak_rss_mib": self.after.map(|a| mib(a.peak_rss_kib)),
            "dropped_channels": self.dropped_channels,
        })
    }
}

pub struct Idle {
    pub server: &'static str,
    pub devices: usize,
    pub connect_seconds: f64,
    pub at_start: Option<ProcStats>,
    pub seeded: Option<ProcStats>,
    pub connected: Option<ProcStats>,
    pub dropped_channels: u64,
}

impl Idle {
    fn per_device_kib(&self) -> Option<f64> {
        let (seeded, connected) = (self.seeded?, self.connected?);
        Some((connected.rss_kib as f64 - seeded.rss_kib as f64) / self.devices.max(1) as f64)
    }

    pub fn print(&self) {
        println!();
        println!("Latchkey load — scenario b: idle connected devices");
        println!(
            "  {} devices connected in {:.1} s; server: {}",
            self.devices, self.connect_seconds, self.server
        );
        let row = |name: &str, stats: Option<ProcStats>| {
            if let Some(s) = stats {
                println!(
                    "  {name:<28} resident {:>7.1} MiB, peak {:>7.1} MiB",
                    mib(s.rss_kib),
                    mib(s.peak_rss_kib)
                );
            }
        };
        row("at start", self.at_start);
        row("after seeding", self.seeded);
        row("with all channels open", self.connected);
        if let Some(per) = self.per_device_kib() {
            println!("  {per:.1} KiB per open channel");
        }
        if self.dropped_channels > 0 {
            println!("  the server closed {} channels", self.dropped_channels);
        }
    }

    pub fn to_json(&self) -> Value {
        let stats = |s: Option<ProcStats>| {
            s.map(|s| json!({"rss_mib": mib(s.rss_kib), "peak_rss_mib": mib(s.peak_rss_kib)}))
        };
        json!({
            "scenario": "b: idle connected devices",
            "server": self.server,
            "devices": self.devices,
            "connect_seconds": self.connect_seconds,
            "at_start": stats(self.at_start),
            "after_seeding": stats(self.seeded),
            "connected": stats(self.connected),
            "kib_per_channel": self.per_device_kib(),
            "dropped_channels": self.dropped_channels,
        })
    }
}
