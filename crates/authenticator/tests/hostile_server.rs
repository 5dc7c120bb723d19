//! The terminal authenticator against a hostile server (one an activation link can name):
//! it must not let the server draw on the terminal or make it read without end, and it must
//! not show the PIN as it is typed. The app runs as the real binary where the terminal matters.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use latchkey_authenticator::client::{DeviceClient, MAX_RESPONSE_BYTES, http_client};
use latchkey_protocol::DeviceKeyPair;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey-authenticator");

/// What the server puts in every text it sends: clear the screen, move the cursor home, draw
/// a fake prompt in red, set the window title, reverse text with a bidi override, and break
/// lines with a Unicode line separator.
const HOSTILE: &str = "\u{1b}[2J\u{1b}[H\u{1b}[31mContoso\u{1b}[0m\u{1b}]0;pwned\u{7}\u{202e}nipSPI\u{2028}Enter your PIN: \r";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Answers with escapes in every field.
    Escapes,
    /// Declares a 768 MiB body and starts sending it.
    DeclaredHuge,
    /// Sends a body without a length, without end.
    EndlessBody,
}

struct Hostile {
    url: String,
    /// Body bytes the server managed to write before the client went away.
    written: Arc<AtomicU64>,
}

fn request_json() -> serde_json::Value {
    json!({
        "id": format!("req{HOSTILE}"),
        "kind": "mfa_push",
        "nonce": "n",
        "user_principal_name": format!("bobby{HOSTILE}@contoso.example"),
        "application": format!("Contoso VPN{HOSTILE}"),
        "location": format!("Sydney{HOSTILE}"),
        "location_attribution": HOSTILE,
        "report_allowed": true,
        "created_at": 1_800_000_000,
        "expires_at": 1_800_000_090,
    })
}

async fn respond(stream: &mut TcpStream, status: &str, body: &serde_json::Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
}

async fn endless(stream: &mut TcpStream, head: &str, written: &AtomicU64) {
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let chunk = vec![b'A'; 64 * 1024];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        match stream.write_all(&chunk).await {
            Ok(()) => written.fetch_add(chunk.len() as u64, Ordering::Relaxed),
            Err(_) => return,
        };
    }
}

async fn serve(mut stream: TcpStream, mode: Mode, written: Arc<AtomicU64>) {
    let mut peek = [0u8; 512];
    let n = stream.peek(&mut peek).await.unwrap_or(0);
    let first = String::from_utf8_lossy(&peek[..n]).to_string();
    if first.contains("/stream") {
        let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        use tokio_tungstenite::tungstenite::Message;
        let event = json!({"type": "request", "request": request_json()});
        let _ = socket.send(Message::text(event.to_string())).await;
        let huge = "A".repeat(2 * MAX_RESPONSE_BYTES);
        let _ = socket.send(Message::text(huge)).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        return;
    }
    // Read the head and the body it announces.
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    match mode {
        Mode::DeclaredHuge => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 805306368\r\n\r\n";
            endless(&mut stream, head, &written).await;
        }
        Mode::EndlessBody => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
            endless(&mut stream, head, &written).await;
        }
        Mode::Escapes if path.ends_with("/activate") => {
            let body = json!({
                "device_id": "dev1",
                "account": {
                    "user_id": "u1",
                    "user_principal_name": format!("bobby{HOSTILE}@contoso.example"),
                    "display_name": format!("Bobby{HOSTILE}"),
                    "issuer": "http://localhost",
                },
                "test_request": request_json(),
            });
            respond(&mut stream, "201 Created", &body).await;
        }
        Mode::Escapes if path.ends_with("/requests") => {
            respond(
                &mut stream,
                "200 OK",
                &json!({"requests": [request_json()]}),
            )
            .await;
        }
        Mode::Escapes => {
            let error =
                json!({"error": format!("refused{HOSTILE}"), "message": format!("no{HOSTILE}")});
            respond(&mut stream, "403 Forbidden", &error).await;
        }
    }
}

async fn hostile(mode: Mode) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, mode, counter.clone()));
        }
    });
    Hostile { url, written }
}

/// Runs the binary with `args` in `home`; returns what it printed (stdout and stderr).
async fn run(home: &std::path::Path, args: &[&str]) -> String {
    let home = home.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("--home")
            .arg(&home)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_nothing_drawn(output: &str) {
    for (bad, what) in [
        ('\u{1b}', "an escape"),
        ('\u{7}', "a bell"),
        ('\u{202e}', "a bidi override"),
        ('\u{2028}', "a line separator"),
        ('\r', "a carriage return"),
    ] {
        assert!(
            !output.contains(bad),
            "{what} reached the terminal: {output:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_server_cannot_draw_fake_prompts_with_escapes_or_bidi_controls() {
    let server = hostile(Mode::Escapes).await;
    let home = tempfile::tempdir().unwrap();
    let added = run(
        home.path(),
        &["add", "--code", "abc", "--url", &server.url, "--skip-test"],
    )
    .await;
    assert!(added.contains("Added account 1 (bobby"), "{added}");
    assert_nothing_drawn(&added);
    let accounts = run(home.path(), &["accounts"]).await;
    assert!(accounts.contains("Contoso"), "{accounts}");
    assert_nothing_drawn(&accounts);
    let pending = run(home.path(), &["pending"]).await;
    // The text is still there, without what would have drawn on the screen.
    assert!(pending.contains("Contoso VPNContoso"), "{pending}");
    assert!(pending.contains("Sydney"), "{pending}");
    assert_nothing_drawn(&pending);
    // Refusals are the server's words too.
    let refused = run(home.path(), &["remove", "1"]).await;
    assert!(refused.contains("refused"), "{refused}");
    assert_nothing_drawn(&refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_from_a_hostile_server_is_refused_not_read() {
    for mode in [Mode::DeclaredHuge, Mode::EndlessBody] {
        let server = hostile(mode).await;
        let client = DeviceClient::new(
            http_client().unwrap(),
            &server.url,
            "dev1",
            DeviceKeyPair::generate().unwrap(),
        );
        let started = Instant::now();
        let refused = client
            .pending()
            .await
            .expect_err("a 768 MiB answer is refused");
        assert!(
            refused.to_string().contains("larger than 1024 KiB"),
            "{refused}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        // The client hung up: the server could not push more than the cap and the socket
        // buffers, far from 768 MiB.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let written = server.written.load(Ordering::Relaxed);
        assert!(
            written < 32 * 1024 * 1024,
            "the server wrote {written} bytes"
        );
    }
    // The live channel: a message over the cap ends it; the ones before still arrive.
    let server = hostile(Mode::Escapes).await;
    let client = DeviceClient::new(
        http_client().unwrap(),
        &server.url,
        "dev1",
        DeviceKeyPair::generate().unwrap(),
    );
    let mut stream = client.connect().await.unwrap();
    assert!(stream.next().await.is_some(), "the small event arrives");
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the oversized message ends the channel at once");
    assert_eq!(end, None);
}

/// Runs `command` in a pseudo-terminal (util-linux `script`), types each of `typed` after the
/// output contains the matching prompt, and returns everything the terminal showed.
fn in_a_terminal(command: &str, typed: &[(&str, &str)]) -> Option<String> {
    let mut child = Command::new("script")
        .args(["-q", "-f", "-e", "-c", command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = shown.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let text =
        |shown: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&shown.lock().unwrap()).to_string();
    let mut seen = 0;
    for (prompt, input) in typed {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = text(&shown);
            if let Some(at) = now[seen..].find(prompt) {
                seen += at + prompt.len();
                break;
            }
            assert!(Instant::now() < deadline, "no prompt {prompt:?} in {now:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Typed as a person would, a key at a time.
        for c in input.chars() {
            stdin.write_all(c.to_string().as_bytes()).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the app did not finish: {}",
            text(&shown)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    reader.join().unwrap();
    Some(text(&shown))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_prompt_does_not_echo_the_pin_typed_at_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("util-linux `script` is not installed; this test needs a pseudo-terminal");
        return;
    }
    let server = hostile(Mode::Escapes).await;
    let home = tempfile::tempdir().unwrap();
    let added = run(
        home.path(),
        &["add", "--code", "abc", "--url", &server.url, "--skip-test"],
    )
    .await;
    assert!(added.contains("Added account"), "{added}");
    // The control: a number typed at the same kind of terminal is echoed (so the check below
    // would see a PIN if the app let it be shown).
    let other = tempfile::tempdir().unwrap();
    let control = format!(
        "{BIN} --home {} add --code abc --url {}",
        other.path().display(),
        server.url
    );
    let shown = tokio::task::spawn_blocking(move || {
        in_a_terminal(&control, &[("Enter the number", "57\n")])
    })
    .await
    .unwrap()
    .expect("script runs");
    assert!(
        shown.contains("57"),
        "the terminal echoes typed text: {shown:?}"
    );
    let command = format!(
        "{BIN} --home {} enable-phone-sign-in 1",
        home.path().display()
    );
    let shown = tokio::task::spawn_blocking(move || {
        in_a_terminal(
            &command,
            &[
                ("Choose a device PIN", "135790\n"),
                ("Enter it again", "135790\n"),
            ],
        )
    })
    .await
    .unwrap()
    .expect("script runs");
    assert!(shown.contains("Choose a device PIN"), "{shown:?}");
    assert!(shown.contains("Enter it again"), "{shown:?}");
    assert!(
        !shown.contains("135790"),
        "the PIN was shown as it was typed: {shown:?}"
    );
    // The app went on to the server (which refused): the PIN was read, not lost.
    assert!(shown.contains("refused"), "{shown:?}");
}
