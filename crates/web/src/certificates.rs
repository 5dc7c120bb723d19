//! Certificate-based sign-in's pages (docs/certificates.md): the sign-in page's "Use a
//! certificate or smart card" on the main host, the certificate host's `/login/certificate`
//! (behind Latchkey's own certificate listener, or a trusted TLS-terminating proxy), and the
//! way back to the main host.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use latchkey_domain::location::TrustedProxies;
use latchkey_domain::service::{CertificateRefusal, PresentedChain};
use serde::Deserialize;

use crate::AppState;
use crate::cookies;
use crate::error::{PageError, error_page};
use crate::extract::{CsrfForm, Origin, SignInForm};
use crate::metrics::Metrics;

/// The longest client certificate header a trusted proxy may send (URL-encoded PEM).
pub const MAX_PROXY_HEADER_BYTES: usize = 16 * 1024;

/// The client certificate chain the certificate listener's TLS handshake received (DER, leaf
/// first), added to every request on that connection. The handshake proved possession of the
/// leaf's key; the chain itself is validated by the certificate service.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<Vec<Vec<u8>>>);

/// Where the certificate host is and whom to believe about certificates.
#[derive(Debug)]
pub struct CertificateHost {
    /// The certificate host's https URL, without a trailing slash.
    pub public_url: String,
    /// The header trusted proxies forward the client certificate in.
    pub proxy_header: HeaderName,
    /// Who may send `proxy_header`.
    pub trusted_proxies: TrustedProxies,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login/certificate/start", post(start))
        .route("/login/certificate/return", get(come_back))
        .route("/login/certificate", get(certificate_host))
}

/// The certificate listener's whole site: the certificate page and nothing else.
pub fn host_routes() -> Router<AppState> {
    Router::new().route("/login/certificate", get(certificate_host))
}

/// The sign-in page's "Use a certificate or smart card": a single-use reference to this
/// browser's sign-in, and off to the certificate host with it.
async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    SignInForm { id, .. }: SignInForm<CsrfForm>,
) -> Result<Response, PageError> {
    let Some(host) = state.certificate.clone() else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "Certificate sign-in is not set up",
            "Your organisation hasn't set up signing in with a certificate or smart card. Sign in another way.",
        ));
    };
    // The first page's sign-in is only drafted: choosing a certificate stores it, as posting
    // a user name does, and the cookie then keeps only its id.
    if let Err(failure) = state
        .latchkey
        .sign_in
        .store_drafted_sign_in(
            &id,
            crate::pages::drafted_return_to(&state, &jar).as_deref(),
        )
        .await
    {
        return crate::pages::failure_page(&state, jar, &id, failure, false).await;
    }
    let jar = jar.add(cookies::build(
        &state,
        cookies::SIGN_IN,
        id.to_string(),
        SameSite::Lax,
    ));
    match state.latchkey.sign_in.certificate_reference(&id).await {
        Ok(reference) => {
            let target = format!("{}/login/certificate?ref={reference}", host.public_url);
            Ok((jar, Redirect::to(&target)).into_response())
        }
        Err(failure) => crate::pages::failure_page(&state, jar, &id, failure, false).await,
    }
}

#[derive(Deserialize)]
struct ReferenceQuery {
    #[serde(rename = "ref")]
    reference: Option<String>,
}

/// The certificate host: the certificate this connection presented (or a trusted proxy
/// forwarded), checked by the certificate service for the sign-in the reference names.
async fn certificate_host(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    certificate: Option<axum::Extension<ClientCertificate>>,
    query: Result<Query<ReferenceQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let back = format!("{}/login", state.issuer().trim_end_matches('/'));
    let refused = |status: StatusCode, title: &str, message: &str| {
        error_page(status, title, message, &back, "Back to sign-in")
    };
    let Some(host) = state.certificate.clone() else {
        return refused(
            StatusCode::NOT_FOUND,
            "Certificate sign-in is not set up",
            "Your organisation hasn't set up signing in with a certificate or smart card.",
        );
    };
    let chain = match certificate {
        Some(axum::Extension(ClientCertificate(chain))) => Some(chain.as_ref().clone()),
        None => forwarded_certificate(&host, peer, &headers),
    };
    let Some(mut chain) = chain.filter(|c| !c.is_empty()) else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "No certificate was presented",
            "Your browser didn't send a certificate. Make sure your smart card is inserted or your certificate is installed, then go back and try again, or sign in another way.",
        );
    };
    let reference = match query {
        Ok(Query(ReferenceQuery {
            reference: Some(reference),
        })) => reference,
        _ => String::new(),
    };
    let sign_in = match state
        .latchkey
        .sign_in
        .open_certificate_reference(&reference)
        .await
    {
        Ok(sign_in) => sign_in,
        Err(refusal) => return refusal_page(&refusal, &back),
    };
    let context = state.sign_in_context(peer, &headers);
    let leaf = chain.remove(0);
    let presented = PresentedChain {
        leaf,
        intermediates: chain,
    };
    let verdict = state.latchkey.certificates.verify(&presented).await;
    match state
        .latchkey
        .sign_in
        .record_certificate(sign_in, verdict, &context)
        .await
    {
        Ok(result) => Redirect::to(&format!(
            "{}/login/certificate/return?result={result}",
            state.issuer().trim_end_matches('/')
        ))
        .into_response(),
        Err(refusal) => {
            Metrics::inc(&state.metrics.sign_ins_failed);
            refusal_page(&refusal, &back)
        }
    }
}

fn refusal_page(refusal: &CertificateRefusal, back: &str) -> Response {
    let message = if refusal.error_code == 0 {
        refusal.message.clone()
    } else {
        format!("{} (error {})", refusal.message, refusal.error_code)
    };
    error_page(
        StatusCode::UNAUTHORIZED,
        refusal.title,
        &message,
        back,
        "Sign in another way",
    )
}

/// The client certificate a trusted proxy forwarded in its header. From any other address the
/// header is ignored: anyone can send one.
fn forwarded_certificate(
    host: &CertificateHost,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Option<Vec<Vec<u8>>> {
    let value = headers.get(&host.proxy_header)?;
    if !host.trusted_proxies.contains(peer.ip()) {
        tracing::debug!(
            client = %peer.ip(),
            header = %host.proxy_header,
            "ignored a client certificate header from an address that is not a trusted proxy"
        );
        return None;
    }
    if value.len() > MAX_PROXY_HEADER_BYTES {
        return None;
    }
    let pem = percent_decode(value.as_bytes())?;
    pem_certificates(&pem)
}

fn percent_decode(bytes: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The DER of every `CERTIFICATE` block in `pem`, in order.
fn pem_certificates(pem: &str) -> Option<Vec<Vec<u8>>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let end = after.find(END)?;
        let body: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        out.push(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).ok()?);
        rest = &after[end + END.len()..];
    }
    (!out.is_empty()).then_some(out)
}

#[derive(Deserialize)]
struct ResultQuery {
    result: Option<String>,
}

/// Back on the main host: completes the sign-in this browser's cookie names, if the result is
/// that sign-in's.
async fn come_back(
    State(state): State<AppState>,
    Origin(context): Origin,
    jar: CookieJar,
    query: Result<Query<ResultQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let result = match query {
        Ok(Query(ResultQuery {
            result: Some(result),
        })) => result,
        _ => String::new(),
    };
    let Some(id) = cookies::sign_in_id(&state, &jar) else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Start your sign-in again",
            latchkey_domain::service::CERTIFICATE_RESULT_REFUSED,
        ));
    };
    match state
        .latchkey
        .sign_in
        .complete_certificate(&id, &result, &context)
        .await
    {
        Ok(signed_in) => {
            Metrics::inc(&state.metrics.sign_ins_succeeded);
            tracing::info!(user = %signed_in.user.id, method = ?signed_in.session.method, "signed in");
            crate::pages::finish_sign_in(&state, jar, signed_in, &context).await
        }
        Err(failure) => crate::pages::failure_page(&state, jar, &id, failure, false).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escaped_pem_header_decodes_to_its_certificates_and_junk_to_none() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
        let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        let escaped: String = pem
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let decoded = percent_decode(escaped.as_bytes()).unwrap();
        assert_eq!(pem_certificates(&decoded), Some(vec![der]));
        assert_eq!(percent_decode(b"%G1"), None);
        assert_eq!(percent_decode(b"%4"), None);
        assert_eq!(pem_certificates("no certificate here"), None);
        assert_eq!(
            pem_certificates("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----"),
            None
        );
    }
}
