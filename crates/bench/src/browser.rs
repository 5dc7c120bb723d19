//! A browser the way the sign-in pages see one: it keeps its own cookies and follows redirects
//! itself, so that the bench can stop the clock on the exact response it cares about.
//!
//! Every browser shares one HTTP client (and so its pool of loopback connections), as the
//! many browsers behind one corporate proxy would; cookies are kept per browser, so each is a
//! separate person to the server.

use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// The number page's long-poll, as its `data-wait-url` names it: it asks the server to finish
/// the sign-in in the answer once the phone approves.
pub const WAIT_URL: &str = "/login/status?wait=25&finish=1";

/// How often the page asks when the long-poll is not available.
const FALLBACK_POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    pub fn csrf(&self) -> Result<String> {
        hidden(&self.body, "csrf")
            .ok_or_else(|| anyhow!("no CSRF token on the page: {}", self.body))
    }

    /// The two-digit number the number page shows.
    pub fn number(&self) -> Result<u8> {
        let marker = "id=\"number\">";
        let start = self
            .body
            .find(marker)
            .ok_or_else(|| anyhow!("no number on the page: {}", self.body))?
            + marker.len();
        let end = self.body[start..]
            .find('<')
            .ok_or_else(|| anyhow!("the number is not closed"))?
            + start;
        self.body[start..end]
            .trim()
            .parse()
            .context("the number page's number")
    }
}

fn hidden(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

/// The HTTP client every browser shares: no redirects followed, no cookie store of its own.
pub fn shared_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1024)
        .build()?)
}

pub struct Browser {
    base: String,
    http: reqwest::Client,
    /// Name and value of each cookie the server set and has not cleared.
    cookies: Mutex<Vec<(String, String)>>,
}

impl Browser {
    /// A fresh browser: no cookies.
    pub fn new(base: &str, http: &reqwest::Client) -> Browser {
        Browser {
            base: base.to_string(),
            http: http.clone(),
            cookies: Mutex::new(Vec::new()),
        }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        }
    }

    fn cookie_header(&self) -> Option<String> {
        let cookies = self.cookies.lock().expect("cookie jar");
        (!cookies.is_empty()).then(|| {
            cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Keeps what `Set-Cookie` says: a new value replaces the old, an empty one or
    /// `Max-Age=0` removes the cookie.
    fn remember(&self, response: &reqwest::Response) {
        let mut cookies = self.cookies.lock().expect("cookie jar");
        for header in response.headers().get_all(SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let cleared =
                value.is_empty() || parts.any(|p| p.trim().eq_ignore_ascii_case("max-age=0"));
            cookies.retain(|(n, _)| n != name);
            if !cleared {
                cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Page> {
        let request = match self.cookie_header() {
            Some(cookies) => request.header(COOKIE, cookies),
            None => request,
        };
        let response = request.send().await.with_context(|| what.to_string())?;
        self.remember(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.with_context(|| what.to_string())?;
        Ok(Page {
            status,
            location,
            body,
        })
    }

    pub async fn get(&self, url: &str) -> Result<Page> {
        let url = self.absolute(url);
        self.send(self.http.get(&url), &format!("GET {url}")).await
    }

    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<Page> {
        let url = self.absolute(url);
        self.send(self.http.post(&url).form(form), &format!("POST {url}"))
            .await
    }

    /// Follows redirects on this server; stops at the first page, or at a redirect elsewhere.
    pub async fn follow(&self, mut page: Page) -> Result<Page> {
        for _ in 0..10 {
            match &page.location {
                Some(location) if location.starts_with('/') || location.starts_with(&self.base) => {
                    page = self.get(&location.clone()).await?;
                }
                _ => return Ok(page),
            }
        }
        bail!("too many redirects")
    }

    /// What the number page's script does (`static/wait.js`) until the request is settled: it
    /// asks [`WAIT_URL`], which the server holds until the answer comes (or 25 s pass: it asks
    /// again); when that fails, or the server says it did not wait (`"waited": false`: too
    /// many waiters), it falls back to asking `/login/status` every second. Returns where the
    /// server's answer sends the browser when the long-poll finished the sign-in (its cookies
    /// are kept), or `None` when the page would reload `/login` to learn what happened.
    pub async fn wait_settled(&self) -> Result<Option<String>> {
        let mut polling = false;
        loop {
            if polling {
                tokio::time::sleep(FALLBACK_POLL_EVERY).await;
                if !self.pending().await? {
                    return Ok(None);
                }
                continue;
            }
            let page = match self.get(WAIT_URL).await {
                Ok(page) if page.status == 200 => page,
                _ => {
                    polling = true;
                    continue;
                }
            };
            let Ok(status) = serde_json::from_str::<serde_json::Value>(&page.body) else {
                // The page shows an answer that is not JSON in its own place: the sign-in
                // ended there rather than going on.
                bail!(
                    "the sign-in ended on a page: {}",
                    page.body.chars().take(300).collect::<String>()
                );
            };
            match (status["pending"].as_bool(), status["waited"].as_bool()) {
                (Some(false), _) => return Ok(status["next"].as_str().map(str::to_owned)),
                (Some(true), Some(true)) => {}
                _ => polling = true,
            }
        }
    }

    /// What the number page's script asks: is the request still waiting for an answer?
    pub async fn pending(&self) -> Result<bool> {
        let page = self.get("/login/status").await?;
        if page.status != 200 {
            bail!("/login/status answered {}: {}", page.status, page.body);
        }
        let status: serde_json::Value = serde_json::from_str(&page.body)
            .with_context(|| format!("unexpected /login/status answer: {}", page.body))?;
        status["pending"]
            .as_bool()
            .ok_or_else(|| anyhow!("unexpected /login/status answer: {status}"))
    }
}
