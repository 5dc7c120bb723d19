//! What a run tells people (a summary on standard output) and machines (JSON).

use serde_json::{Value, json};

use crate::database::DatabaseCpuSpent;
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
        "username" => "POST /login/username (→ the number page)",
        "password" => "POST /login/credential (password)",
        "number_page" => "number page (after a redirect, if any)",
        "delivery" => "notification delivery (submit → device)",
        "answer" => "device answer (POST …/answer)",
        "status" => "answer returned → wait settled",
        "complete" => "GET /login → redirect with code (fallback only)",
        "redirected" => "answer → browser redirected",
        "token" => "POST /token + ID token checked",
        "total" => "whole sign-in",
        _ => "",
    }
}

pub struct Load<'a> {
    pub scenario: &'static str,
    pub server: String,
    pub users: usize,
    pub devices: usize,
    pub concurrency: usize,
    pub password_every: usize,
    pub outcome: &'a Outcome,
    /// Server processes; their CPU and memory are summed.
    pub instances: usize,
    pub before: Option<ProcStats>,
    pub after: Option<ProcStats>,
    /// The generator's own CPU over the run, when the server ran in other processes: it
    /// shares the machine with the server, so the two together bound the rate.
    pub generator_cpu_seconds: Option<f64>,
    /// PostgreSQL's CPU over the run, when the generator made the run's database.
    pub database: Option<DatabaseCpuSpent>,
    pub dropped_channels: u64,
}

impl Load<'_> {
    fn cpu_seconds(&self) -> Option<f64> {
        Some(self.after?.cpu_seconds - self.before?.cpu_seconds)
    }

    fn per_sign_in_ms(&self, seconds: f64) -> f64 {
        1000.0 * seconds / (self.outcome.completed.max(1) as f64)
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
        let [(_, socket), (_, pull)] = o.by_delivery[..] else {
            unreachable!("two ways of delivery")
        };
        println!("    requests delivered on the live channel: {socket}; by asking: {pull}");
        if let (Some(cpu), Some(after)) = (self.cpu_seconds(), self.after) {
            println!(
                "  server CPU{} {cpu:.1} s ({:.0}% of one core; {:.2} ms per sign-in); resident {:.0} MiB, peak {:.0} MiB",
                if self.instances > 1 {
                    format!(" (the {} instances together)", self.instances)
                } else {
                    String::new()
                },
                100.0 * cpu / o.elapsed.as_secs_f64(),
                self.per_sign_in_ms(cpu),
                mib(after.rss_kib),
                mib(after.peak_rss_kib)
            );
        }
        if let Some(cpu) = self.generator_cpu_seconds {
            println!(
                "  generator CPU {cpu:.1} s ({:.0}% of one core; {:.2} ms per sign-in)",
                100.0 * cpu / o.elapsed.as_secs_f64(),
                self.per_sign_in_ms(cpu)
            );
        }
        if let Some(db) = self.database {
            println!(
                "  PostgreSQL CPU: the run's backends {:.1} s ({:.2} ms per sign-in{}); every postgres process on the machine {:.1} s ({:.2} ms per sign-in, other databases' work included)",
                db.backends,
                self.per_sign_in_ms(db.backends),
                if db.backends_ended > 0 {
                    format!(
                        "; {} backends ended during the run, not counted",
                        db.backends_ended
                    )
                } else {
                    String::new()
                },
                db.all_postgres,
                self.per_sign_in_ms(db.all_postgres)
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
        let by_delivery: serde_json::Map<String, Value> = o
            .by_delivery
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
            "by_delivery": by_delivery,
            "instances": self.instances,
            "errors": o.errors,
            "steps": steps,
            "server_cpu_seconds": self.cpu_seconds(),
            "server_cpu_ms_per_sign_in": self.cpu_seconds().map(|c| self.per_sign_in_ms(c)),
            "generator_cpu_seconds": self.generator_cpu_seconds,
            "generator_cpu_ms_per_sign_in": self.generator_cpu_seconds.map(|c| self.per_sign_in_ms(c)),
            "postgres_backends_cpu_seconds": self.database.map(|d| d.backends),
            "postgres_backends_cpu_ms_per_sign_in": self.database.map(|d| self.per_sign_in_ms(d.backends)),
            "postgres_backends_ended": self.database.map(|d| d.backends_ended),
            "postgres_all_cpu_seconds": self.database.map(|d| d.all_postgres),
            "postgres_all_cpu_ms_per_sign_in": self.database.map(|d| self.per_sign_in_ms(d.all_postgres)),
            "server_rss_mib": self.after.map(|a| mib(a.rss_kib)),
            "server_peak_rss_mib": self.after.map(|a| mib(a.peak_rss_kib)),
            "dropped_channels": self.dropped_channels,
        })
    }
}

pub struct Idle {
    pub server: String,
    pub devices: usize,
    pub connect_seconds: f64,
    pub at_start: Option<ProcStats>,
    pub seeded: Option<ProcStats>,
    pub connected: Option<ProcStats>,
    pub dropped_channels: u64,
    /// Events the idle devices received; none are sent to them.
    pub events: u64,
    /// The generator's own memory with every channel open (with a server in process, the
    /// server's too).
    pub generator: Option<ProcStats>,
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
        row("the generator itself", self.generator);
        if self.dropped_channels > 0 {
            println!("  the server closed {} channels", self.dropped_channels);
        }
        if self.events > 0 {
            println!("  idle devices received {} events", self.events);
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
            "events": self.events,
            "generator": stats(self.generator),
        })
    }
}

/// The `stores` comparison as a Markdown table, from each configuration's JSON report.
pub fn stores_table(rows: &[(String, anyhow::Result<Value>)]) -> String {
    let mut table = String::from(
        "| Configuration | Sign-ins per second | Server CPU per sign-in | PostgreSQL CPU per sign-in: the run's backends (every postgres process) | Whole flow p50 | Whole flow p99 | Delivery p99 | Answer → browser redirected p50 / p99 | Delivered on the channel / by asking | Errors |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for (name, result) in rows {
        let report = match result {
            Ok(report) => report,
            Err(error) => {
                let reason: String = format!("{error:#}").chars().take(120).collect();
                table.push_str(&format!(
                    "| {name} | failed: {} | | | | | | | | |\n",
                    reason.replace('|', "/").replace('\n', " ")
                ));
                continue;
            }
        };
        let ms = |value: &Value| value.as_f64().map_or("–".into(), |v| format!("{v:.2} ms"));
        let postgres = if report["postgres_backends_cpu_ms_per_sign_in"].is_null() {
            "–".to_string()
        } else {
            format!(
                "{} ({})",
                ms(&report["postgres_backends_cpu_ms_per_sign_in"]),
                ms(&report["postgres_all_cpu_ms_per_sign_in"])
            )
        };
        let errors: u64 = report["errors"]
            .as_object()
            .map_or(0, |e| e.values().filter_map(Value::as_u64).sum());
        table.push_str(&format!(
            "| {name} | {:.1} | {} | {postgres} | {} | {} | {} | {} / {} | {} / {} | {errors} |\n",
            report["sign_ins_per_second"].as_f64().unwrap_or(0.0),
            ms(&report["server_cpu_ms_per_sign_in"]),
            ms(&report["steps"]["total"]["median_ms"]),
            ms(&report["steps"]["total"]["p99_ms"]),
            ms(&report["steps"]["delivery"]["p99_ms"]),
            ms(&report["steps"]["redirected"]["median_ms"]),
            ms(&report["steps"]["redirected"]["p99_ms"]),
            report["by_delivery"]["socket"],
            report["by_delivery"]["pull"],
        ));
    }
    table
}
