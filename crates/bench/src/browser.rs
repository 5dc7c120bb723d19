//! A browser the way the sign-in pages see one: it keeps cookies and follows redirects itself,
//! so that the bench can stop the clock on the exact response it cares about.

use anyhow::{Context, Result, anyhow, bail};
use reqwest::redirect::Policy;

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

pub struct Browser {
    base: String,
    http: reqwest::Client,
}

impl Browser {
    /// A fresh browser: no cookies, no pooled connection.
    pub fn new(base: &str) -> Result<Browser> {
        Ok(Browser {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()?,
        })
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        }
    }

    async fn page(response: reqwest::Response) -> Result<Page> {
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await?;
        Ok(Page {
            status,
            location,
            body,
        })
    }

    pub async fn get(&self, url: &str) -> Result<Page> {
        let url = self.absolute(url);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        Self::page(response).await
    }

    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<Page> {
        let url = self.absolute(url);
        let response = self
            .http
            .post(&url)
            .form(form)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        Self::page(response).await
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

    /// What the number page's script asks: is the request still waiting for an answer?
    pub async fn pending(&self) -> Result<bool> {
        let url = self.absolute("/login/status");
        let status: serde_json::Value = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .error_for_status()?
            .json()
            .await?;
        status["pending"]
            .as_bool()
            .ok_or_else(|| anyhow!("unexpected /login/status answer: {status}"))
    }
}
