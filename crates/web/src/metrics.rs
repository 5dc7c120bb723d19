//! A handful of counters in Prometheus' text format. Kept in the application state (no global
//! recorder), so two servers in one process never mix their figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Why a connection was closed at accept (see `latchkey::edge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionShed {
    /// The server already had its maximum of open connections.
    Total,
    /// The client's address already had its maximum.
    PerAddress,
}

/// Which of the connection timeouts closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionTimeout {
    TlsHandshake,
    FirstRequest,
    HeaderRead,
    Idle,
}

impl ConnectionShed {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionShed::Total => "total",
            ConnectionShed::PerAddress => "per_address",
        }
    }
}

impl ConnectionTimeout {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionTimeout::TlsHandshake => "tls_handshake",
            ConnectionTimeout::FirstRequest => "first_request",
            ConnectionTimeout::HeaderRead => "header_read",
            ConnectionTimeout::Idle => "idle",
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    responses: [AtomicU64; 5],
    /// Connections open now (a gauge).
    pub connections_open: AtomicU64,
    connections_shed: [AtomicU64; 2],
    connections_timed_out: [AtomicU64; 4],
    /// Failed `accept` calls (out of file descriptors, say).
    pub accept_errors: AtomicU64,
    pub sign_ins_succeeded: AtomicU64,
    pub sign_ins_failed: AtomicU64,
    pub tokens_issued: AtomicU64,
    pub token_errors: AtomicU64,
    sign_in_waits: [AtomicU64; 4],
}

/// How a number page's long-poll (`GET /login/status?wait=…`) ended.
#[derive(Debug, Clone, Copy)]
pub enum SignInWait {
    /// The approval settled (or the sign-in was no longer waiting) while it waited, and the
    /// wait only said so.
    Settled,
    /// Its time ran out with the approval still pending.
    TimedOut,
    /// A cap on waiters refused it; it answered as a plain poll.
    Refused,
    /// The approval settled and the wait (asked to, `finish=1`) finished the sign-in in its
    /// answer.
    Finished,
}

impl SignInWait {
    pub fn label(self) -> &'static str {
        match self {
            SignInWait::Settled => "settled",
            SignInWait::TimedOut => "timed_out",
            SignInWait::Refused => "refused",
            SignInWait::Finished => "finished",
        }
    }
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn shed(&self, why: ConnectionShed) {
        Self::inc(&self.connections_shed[why as usize]);
    }

    pub fn timed_out(&self, which: ConnectionTimeout) {
        Self::inc(&self.connections_timed_out[which as usize]);
    }

    pub fn sign_in_wait(&self, how: SignInWait) {
        Self::inc(&self.sign_in_waits[how as usize]);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP latchkey_connections_open Connections open now.\n");
        out.push_str("# TYPE latchkey_connections_open gauge\n");
        out.push_str(&format!(
            "latchkey_connections_open {}\n",
            self.connections_open.load(Ordering::Relaxed)
        ));
        labelled_counter(
            &mut out,
            "latchkey_connections_shed_total",
            "Connections closed at accept: a cap was reached.",
            "cap",
            [ConnectionShed::Total, ConnectionShed::PerAddress].map(|why| {
                (
                    why.label(),
                    self.connections_shed[why as usize].load(Ordering::Relaxed),
                )
            }),
        );
        labelled_counter(
            &mut out,
            "latchkey_connections_timed_out_total",
            "Connections closed by a timeout.",
            "timeout",
            [
                ConnectionTimeout::TlsHandshake,
                ConnectionTimeout::FirstRequest,
                ConnectionTimeout::HeaderRead,
                ConnectionTimeout::Idle,
            ]
            .map(|which| {
                (
                    which.label(),
                    self.connections_timed_out[which as usize].load(Ordering::Relaxed),
                )
            }),
        );
        out.push_str(
            "# HELP latchkey_accept_errors_total Failed accepts (out of descriptors, say).\n",
        );
        out.push_str("# TYPE latchkey_accept_errors_total counter\n");
        out.push_str(&format!(
            "latchkey_accept_errors_total {}\n",
            self.accept_errors.load(Ordering::Relaxed)
        ));
        labelled_counter(
            &mut out,
            "latchkey_http_responses_total",
            "HTTP responses by status class.",
            "class",
            ["1xx", "2xx", "3xx", "4xx", "5xx"]
                .into_iter()
                .zip(&self.responses)
                .map(|(class, counter)| (class, counter.load(Ordering::Relaxed))),
        );
        labelled_counter(
            &mut out,
            "latchkey_sign_in_waits_total",
            "Number page long-polls, by how they ended.",
            "outcome",
            [
                SignInWait::Settled,
                SignInWait::TimedOut,
                SignInWait::Refused,
                SignInWait::Finished,
            ]
            .map(|how| {
                (
                    how.label(),
                    self.sign_in_waits[how as usize].load(Ordering::Relaxed),
                )
            }),
        );
        for (name, help, counter) in [
            (
                "latchkey_sign_ins_succeeded_total",
                "Browser sign-ins that started a session.",
                &self.sign_ins_succeeded,
            ),
            (
                "latchkey_sign_ins_failed_total",
                "Refused sign-in steps.",
                &self.sign_ins_failed,
            ),
            (
                "latchkey_tokens_issued_total",
                "Successful token endpoint responses.",
                &self.tokens_issued,
            ),
            (
                "latchkey_token_errors_total",
                "Token endpoint errors.",
                &self.token_errors,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                counter.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// Writes one counter family whose series differ by one label, in the Prometheus text format.
fn labelled_counter<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: impl IntoIterator<Item = (&'a str, u64)>,
) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
    for (value, count) in series {
        out.push_str(&format!("{name}{{{label}=\"{value}\"}} {count}\n"));
    }
}

pub async fn count(metrics: Arc<Metrics>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let class = (response.status().as_u16() / 100).clamp(1, 5) as usize - 1;
    metrics.responses[class].fetch_add(1, Ordering::Relaxed);
    response
}
