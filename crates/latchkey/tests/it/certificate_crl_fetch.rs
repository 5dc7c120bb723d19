//! The binary's revocation list fetcher: size cap read incrementally, no redirects, http(s)
//! only.

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use latchkey::crl::HttpCrlSource;
use latchkey_domain::service::CrlSource;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn app() -> Router {
    Router::new()
        .route("/small.crl", get(|| async { vec![7u8; 100] }))
        .route("/big.crl", get(|| async { vec![7u8; 5_000] }))
        .route(
            "/streamed.crl",
            get(|| async {
                let chunks = (0..50).map(|_| Ok::<_, std::io::Error>(vec![7u8; 100]));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
        .route(
            "/moved.crl",
            get(|| async { Redirect::temporary("/small.crl") }),
        )
}

#[tokio::test]
async fn a_crl_within_the_limit_is_fetched() {
    let base = serve(app()).await;
    let source = HttpCrlSource::with_limit(1_000);
    assert_eq!(
        source
            .fetch(&format!("{base}/small.crl"))
            .await
            .unwrap()
            .len(),
        100
    );
}

/// A huge list (a hostile or broken CA endpoint) must not exhaust memory.
#[tokio::test]
async fn an_oversized_crl_is_refused_declared_or_streamed() {
    let base = serve(app()).await;
    let source = HttpCrlSource::with_limit(1_000);
    assert!(source.fetch(&format!("{base}/big.crl")).await.is_err());
    assert!(source.fetch(&format!("{base}/streamed.crl")).await.is_err());
}

/// A redirect could lead the fetch to another scheme or an internal host.
#[tokio::test]
async fn a_crl_redirect_is_not_followed() {
    let base = serve(app()).await;
    let source = HttpCrlSource::with_limit(1_000);
    assert!(source.fetch(&format!("{base}/moved.crl")).await.is_err());
}

#[tokio::test]
async fn a_crl_url_of_another_scheme_is_not_fetched() {
    let source = HttpCrlSource::with_limit(1_000);
    assert!(source.fetch("file:///etc/passwd").await.is_err());
}
