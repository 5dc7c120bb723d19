//! A handful of counters in Prometheus' text format. Kept in the application state (no global
//! recorder), so two servers in one process never mix their figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

#[derive(Debug, Default)]
pub struct Metrics {
    responses: [AtomicU64; 5],
    pub sign_ins_succeeded: AtomicU64,
    pub sign_ins_failed: AtomicU64,
    pub tokens_issued: AtomicU64,
    pub token_errors: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP latchkey_http_responses_total HTTP responses by status class.\n");
        out.push_str("# TYPE latchkey_http_responses_total counter\n");
        for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let value = self.responses[i].load(Ordering::Relaxed);
            out.push_str(&format!(
                "latchkey_http_responses_total{{class=\"{class}\"}} {value}\n"
            ));
        }
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

pub async fn count(metrics: Arc<Metrics>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let class = (response.status().as_u16() / 100).clamp(1, 5) as usize - 1;
    metrics.responses[class].fetch_add(1, Ordering::Relaxed);
    response
}
