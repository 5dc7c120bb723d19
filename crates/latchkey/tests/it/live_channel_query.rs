//! The query-signed live channel (`GET /authenticator/v1/stream?device=…&signature=…`), which
//! the web app uses because browsers cannot set headers on a WebSocket handshake. Each test
//! names what it defends against.

use futures_util::StreamExt;
use latchkey_authenticator::Authenticator;
use latchkey_protocol::wire::DeviceEvent;
use latchkey_protocol::{
    API_PREFIX, ActivationLink, DeviceKeyPair, HEADER_DEVICE, request_signing_input,
};
use tokio_tungstenite::tungstenite;
use tungstenite::client::IntoClientRequest;

use crate::phone::{Person, Phone, qr_png, start_sign_in};
use crate::support::TestServer;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const STREAM: &str = "/stream";

/// `device=…&timestamp=…&nonce=…&signature=…` for a handshake signed by `key` over `path`.
fn signed_query(
    key: &DeviceKeyPair,
    device_id: &str,
    timestamp: i64,
    nonce: &str,
    path: &str,
) -> String {
    let full = format!("{API_PREFIX}{path}");
    let signature = key.sign(&request_signing_input("GET", &full, timestamp, nonce, b""));
    format!("device={device_id}&timestamp={timestamp}&nonce={nonce}&signature={signature}")
}

fn stream_url(server: &TestServer, query: &str) -> String {
    let ws = server.base.replacen("http", "ws", 1);
    format!("{ws}{API_PREFIX}{STREAM}?{query}")
}

/// Opens the live channel at `url`: the socket, or the refusal's status, `error` code and
/// `Connection` header.
async fn open(url: &str) -> Result<Socket, (u16, String, String)> {
    open_request(url.into_client_request().unwrap()).await
}

async fn open_request(
    request: tungstenite::handshake::client::Request,
) -> Result<Socket, (u16, String, String)> {
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let body: serde_json::Value = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            let connection = response
                .headers()
                .get("connection")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            Err((
                response.status().as_u16(),
                body["error"].as_str().unwrap_or_default().to_string(),
                connection,
            ))
        }
        Err(e) => panic!("the handshake failed outside HTTP: {e}"),
    }
}

fn refusal(result: Result<Socket, (u16, String, String)>) -> (u16, String) {
    match result {
        Ok(_) => panic!("the live channel opened"),
        Err((status, code, connection)) => {
            assert_eq!(
                connection, "close",
                "a refused channel closes the connection"
            );
            (status, code)
        }
    }
}

async fn bobby_with_phone(server: &TestServer) -> (Person, Phone, DeviceKeyPair, String) {
    let bobby = Person::new(server, "bobby", "Bobby Smith").await;
    let phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    let account = phone.app.account(phone.account);
    let key = account.device_key().unwrap();
    let id = account.device_id.clone();
    (bobby, phone, key, id)
}

async fn next_event(socket: &mut Socket) -> DeviceEvent {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an event in time")
            .expect("the channel is open")
            .unwrap();
        if let tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn a_query_signed_live_channel_receives_requests_and_its_url_works_once() {
    let server = TestServer::start().await;
    let (bobby, _phone, key, id) = bobby_with_phone(&server).await;
    let now = server.latchkey.now().0;
    let url = stream_url(
        &server,
        &signed_query(&key, &id, now, "live-query-0123456789", STREAM),
    );
    let mut socket = open(&url).await.expect("the query-signed channel opens");
    let browser = server.browser();
    let _page = start_sign_in(&browser, &bobby.upn).await;
    let DeviceEvent::Request { request } = next_event(&mut socket).await else {
        panic!("a request event")
    };
    assert_eq!(request.user_principal_name, bobby.upn);
    // A captured URL (from a log, a proxy, the browser's history) cannot open a second channel.
    assert_eq!(
        refusal(open(&url).await),
        (401, "replayed_request".to_string())
    );
}

#[tokio::test]
async fn stale_forged_and_misdirected_query_signatures_are_refused() {
    let server = TestServer::start().await;
    let (_bobby, _phone, key, id) = bobby_with_phone(&server).await;
    let now = server.latchkey.now().0;
    let stale = signed_query(&key, &id, now - 600, "stale-query-0123456789", STREAM);
    assert_eq!(
        refusal(open(&stream_url(&server, &stale)).await),
        (401, "stale_request".to_string())
    );
    let stranger = DeviceKeyPair::generate().unwrap();
    let forged = signed_query(&stranger, &id, now, "forged-query-012345678", STREAM);
    assert_eq!(
        refusal(open(&stream_url(&server, &forged)).await),
        (401, "bad_signature".to_string())
    );
    // A signature for another endpoint (a signed GET /requests) does not open the channel.
    let elsewhere = signed_query(&key, &id, now, "elsewhere-query-012345", "/requests");
    assert_eq!(
        refusal(open(&stream_url(&server, &elsewhere)).await),
        (401, "bad_signature".to_string())
    );
    let unknown = signed_query(
        &key,
        "0123456789abcdef0123456789abcdef",
        now,
        "unknown-device-012345",
        STREAM,
    );
    assert_eq!(
        refusal(open(&stream_url(&server, &unknown)).await),
        (401, "unknown_device".to_string())
    );
    // The refused attempts used up no nonce: the genuine handshake still opens.
    let genuine = signed_query(&key, &id, now, "forged-query-012345678", STREAM);
    open(&stream_url(&server, &genuine))
        .await
        .expect("the genuine handshake opens");
}

#[tokio::test]
async fn malformed_oversized_and_mixed_live_channel_queries_are_refused() {
    let server = TestServer::start().await;
    let (_bobby, _phone, key, id) = bobby_with_phone(&server).await;
    let now = server.latchkey.now().0;
    let query = signed_query(&key, &id, now, "malformed-query-012345", STREAM);
    let without_signature = query.split("&signature=").next().unwrap().to_string();
    assert_eq!(
        refusal(open(&stream_url(&server, &without_signature)).await),
        (401, "unsigned_request".to_string())
    );
    let duplicated = format!("{query}&nonce=another-nonce-0123456");
    assert_eq!(
        refusal(open(&stream_url(&server, &duplicated)).await),
        (400, "invalid_query".to_string())
    );
    let unknown = format!("{query}&callback=x");
    assert_eq!(
        refusal(open(&stream_url(&server, &unknown)).await),
        (400, "invalid_query".to_string())
    );
    let oversized = format!("{query}&device={}", "a".repeat(1024));
    assert_eq!(
        refusal(open(&stream_url(&server, &oversized)).await),
        (400, "invalid_query".to_string())
    );
    // Headers and query together: refused, not one silently chosen.
    let mut mixed = stream_url(&server, &query).into_client_request().unwrap();
    mixed
        .headers_mut()
        .insert(HEADER_DEVICE, id.parse().unwrap());
    assert_eq!(
        refusal(open_request(mixed).await),
        (400, "invalid_query".to_string())
    );
    // None of these used the nonce up: the well-formed query still opens the channel.
    open(&stream_url(&server, &query))
        .await
        .expect("the well-formed query opens");
}

#[tokio::test]
async fn an_unconfirmed_device_cannot_open_the_query_signed_live_channel() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let page = bobby.start_adding_the_app().await;
    let link = ActivationLink::parse(
        &latchkey_authenticator::qr::decode(&qr_png(&page)).expect("the QR code decodes"),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut app = Authenticator::open(home.path()).unwrap();
    // Activated, but the test notification is never answered.
    let (account, _test) = app
        .add(&link, "Half-added phone")
        .await
        .expect("activation");
    let account = app.account(account);
    let key = account.device_key().unwrap();
    let query = signed_query(
        &key,
        &account.device_id,
        server.latchkey.now().0,
        "unconfirmed-0123456789",
        STREAM,
    );
    assert_eq!(
        refusal(open(&stream_url(&server, &query)).await),
        (409, "registration_incomplete".to_string())
    );
}
