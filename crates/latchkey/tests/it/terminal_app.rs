//! The terminal authenticator forgives mistakes: the real `latchkey-authenticator` binary in
//! a pseudo-terminal against a real server, typed at as a person would.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey_authenticator::Authenticator;
use latchkey_protocol::wire::{AnswerOutcome, Decision};

use crate::phone::{
    PIN, Person, Phone, activation_link, number_on, progress_path, reload, start_sign_in, unescape,
};
use crate::support::{TestServer, assert_signed_in_as, manual_clock};

/// The app's binary, built beside this test binary (`cargo nextest run --workspace` builds it
/// for the authenticator's own tests); `LATCHKEY_AUTHENTICATOR_BIN` points elsewhere.
fn authenticator_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LATCHKEY_AUTHENTICATOR_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("latchkey-authenticator");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p latchkey-authenticator` (or set LATCHKEY_AUTHENTICATOR_BIN)",
        bin.display()
    );
    bin
}

/// The app running in a pseudo-terminal that is its controlling terminal (so Ctrl-C typed
/// there interrupts it), and everything the terminal has shown so far.
struct Terminal {
    child: Child,
    keyboard: std::fs::File,
    /// The terminal side, kept open to read its settings after the app has ended.
    tty: OwnedFd,
    shown: Arc<Mutex<Vec<u8>>>,
    /// How much of `shown` the test has read past.
    read: usize,
}

impl Terminal {
    fn start(home: &Path, args: &[&str]) -> Terminal {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two new descriptors into the integers it is given.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned by nobody else.
        let (keyboard, tty) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                OwnedFd::from_raw_fd(slave),
            )
        };
        let mut command = Command::new(authenticator_bin());
        command
            .arg("--home")
            .arg(home)
            .args(args)
            .stdin(Stdio::from(tty.try_clone().unwrap()))
            .stdout(Stdio::from(tty.try_clone().unwrap()))
            .stderr(Stdio::from(tty.try_clone().unwrap()));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("the app starts");
        let shown = Arc::new(Mutex::new(Vec::new()));
        let sink = shown.clone();
        let mut screen = keyboard.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = screen.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            keyboard,
            tty,
            shown,
            read: 0,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.shown.lock().unwrap()).to_string()
    }

    /// Waits until the terminal shows `text` after what was read before, and returns what it
    /// showed up to and including it.
    async fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if let Some(at) = screen[self.read.min(screen.len())..].find(text) {
                let start = self.read;
                self.read += at + text.len();
                return screen[start..self.read].to_string();
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {text:?}; it shows:\n{}",
                &screen[self.read.min(screen.len())..]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` a key at a time.
    async fn type_keys(&mut self, text: &str) {
        for c in text.chars() {
            self.keyboard
                .write_all(c.to_string().as_bytes())
                .expect("typed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether the terminal echoes what is typed.
    fn echoes(&self) -> bool {
        // SAFETY: tcgetattr fills the struct it is given from an open descriptor.
        unsafe {
            let mut settings: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(self.tty.as_raw_fd(), &mut settings), 0);
            settings.c_lflag & libc::ECHO != 0
        }
    }

    /// Waits for the app to end; its exit code (`None` if a signal ended it).
    async fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the app did not end:\n{}",
                self.screen()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn bobby_with_phone_sign_in(server: &TestServer) -> (Person, Phone) {
    let bobby = Person::new(server, "bobby", "Bobby Smith").await;
    let phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    (bobby, phone)
}

#[tokio::test]
async fn under_attack_no_its_not_me_reports_in_one_step_and_deny_needs_no_pin() {
    let server = TestServer::start().await;
    let (bobby, phone) = bobby_with_phone_sign_in(&server).await;
    let mut terminal = Terminal::start(phone.home.path(), &["listen"]);
    terminal.expect("Listening for 1 account(s)").await;

    // A sign-in Bobby does not want now: denying it asks for no number and no PIN.
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    terminal.expect("Are you trying to sign in?").await;
    let asked = terminal.expect("(n)? ").await;
    assert!(!asked.contains("number"), "no number first: {asked:?}");
    terminal.type_keys("d\n").await;
    let answered = terminal.expect("Denied.").await;
    assert!(
        !answered.contains("number") && !answered.contains("PIN"),
        "denied in one step: {answered:?}"
    );
    let end = reload(&browser).await;
    assert!(
        end.body.contains("You denied the sign-in request"),
        "{}",
        end.body
    );

    // An attacker types Bobby's name; Bobby has no page to read a number from. The same
    // `listen` shows it, and "No, it's not me" is the one answer needed.
    let attacker = server.browser_from("81.2.69.160");
    start_sign_in(&attacker, &bobby.upn).await;
    terminal.expect("Are you trying to sign in?").await;
    let asked = terminal
        .expect("Approve (a), Deny (d), or No, it's not me (n)? ")
        .await;
    assert!(!asked.contains("number"), "no number first: {asked:?}");
    terminal.type_keys("n\n").await;
    let answered = terminal.expect("Denied and reported.").await;
    assert!(
        !answered.contains("number") && !answered.contains("PIN"),
        "reported in one step: {answered:?}"
    );
    let end = reload(&attacker).await;
    assert!(
        end.body.contains("reported this sign-in as not yours"),
        "{}",
        end.body
    );
}

#[tokio::test]
async fn a_mistyped_pin_asks_again_instead_of_leaving_the_browser_waiting() {
    let server = TestServer::start().await;
    let (bobby, phone) = bobby_with_phone_sign_in(&server).await;
    let mut terminal = Terminal::start(phone.home.path(), &["listen"]);
    terminal.expect("Listening").await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    terminal.expect("(n)? ").await;
    terminal.type_keys("a\n").await;
    terminal.expect("Enter the number shown to sign in: ").await;
    terminal.type_keys(&format!("{}\n", number_on(&page))).await;
    terminal.expect("Device PIN: ").await;
    terminal.type_keys("135790\n").await;
    let retry = terminal.expect("Device PIN: ").await;
    assert!(retry.contains("that PIN is not right"), "{retry:?}");
    assert!(retry.contains("Try again"), "{retry:?}");
    terminal.type_keys(&format!("{PIN}\n")).await;
    terminal.expect("Approved.").await;
    let screen = terminal.screen();
    assert!(
        !screen.contains("135790") && !screen.contains(PIN),
        "PINs are not shown as typed: {screen:?}"
    );
    let apps = reload(&browser).await;
    assert_signed_in_as(&apps, "Bobby Smith");
}

#[tokio::test]
async fn ctrl_c_at_the_pin_prompt_gives_the_terminal_its_echo_back() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let phone = Phone::register(&bobby, "Bobby's phone").await;
    let mut terminal = Terminal::start(phone.home.path(), &["enable-phone-sign-in"]);
    terminal.expect("Choose a device PIN").await;
    // Give the app the moment between printing the prompt and turning echo off.
    let deadline = Instant::now() + Duration::from_secs(10);
    while terminal.echoes() {
        assert!(Instant::now() < deadline, "echo is turned off for the PIN");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    terminal.type_keys("13\u{3}").await;
    assert_eq!(
        terminal.exit_code().await,
        Some(130),
        "{}",
        terminal.screen()
    );
    assert!(terminal.echoes(), "the terminal echoes again after Ctrl-C");
    let info = bobby.browser.get("/mysecurityinfo").await;
    assert!(
        info.body.contains("Authenticator app — MFA push"),
        "nothing changed: {}",
        info.body
    );
}

#[tokio::test]
async fn listen_abandons_a_prompt_when_the_request_is_answered_elsewhere_expires_or_is_cancelled() {
    let clock = manual_clock();
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(|c| c.lifetimes.approval_request_seconds = 20)
        .start()
        .await;
    let (bobby, phone) = bobby_with_phone_sign_in(&server).await;
    let mut other = Phone::with_phone_sign_in(&bobby, "Bobby's tablet").await;
    let mut terminal = Terminal::start(phone.home.path(), &["listen"]);
    terminal.expect("Listening").await;

    // Answered on the other device while the question is open.
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    terminal.expect("(n)? ").await;
    let request = other.only_request().await;
    other.approve(&request, number_on(&page)).await;
    let said = terminal
        .expect("was answered on another device; nothing was sent.")
        .await;
    assert!(said.contains(&request.id), "{said:?}");
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");

    // Expired while the number is being typed.
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    terminal.expect("(n)? ").await;
    terminal.type_keys("a\n").await;
    terminal.expect("Enter the number shown to sign in: ").await;
    clock.advance(21);
    let end = reload(&browser).await;
    assert!(end.body.contains("within 20 seconds"), "{}", end.body);
    terminal.expect("expired; nothing was sent.").await;

    // Cancelled (the person chose another way) while the PIN is asked for.
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    terminal.expect("(n)? ").await;
    terminal.type_keys("a\n").await;
    terminal.expect("Enter the number shown to sign in: ").await;
    terminal.type_keys(&format!("{}\n", number_on(&page))).await;
    terminal.expect("Device PIN: ").await;
    browser
        .post(
            "/login/other-way",
            &[("csrf", &page.csrf()), ("method", "password")],
        )
        .await;
    terminal.expect("was cancelled").await;
    terminal.expect("nothing was sent.").await;
    assert!(terminal.echoes(), "the abandoned PIN prompt gave echo back");

    // Still listening: the next request is answered at once.
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    terminal.expect("(n)? ").await;
    terminal.type_keys("a\n").await;
    terminal.expect("Enter the number").await;
    terminal.type_keys(&format!("{}\n", number_on(&page))).await;
    terminal.expect("Device PIN: ").await;
    terminal.type_keys(&format!("{PIN}\n")).await;
    terminal.expect("Approved.").await;
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
}

/// A connection between the app and the server that the test can cut and mend: a TCP relay.
struct Cable {
    base: String,
    down: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cable {
    async fn to(server: &TestServer) -> Cable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let target = server.base.trim_start_matches("http://").to_string();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (is_down, open_links) = (down.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let target = target.clone();
                open_links.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Cable { base, down, links }
    }

    /// Drops every open connection, and every new one until [`Cable::mend`].
    fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn mend(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn listen_reconnects_after_a_lost_connection_and_answers_what_waited_meanwhile() {
    let server = TestServer::start().await;
    let (bobby, phone) = bobby_with_phone_sign_in(&server).await;
    // The app reaches the server through a cable the test can cut.
    let cable = Cable::to(&server).await;
    let file = phone.home.path().join("device.json");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(stored.contains(&server.base));
    std::fs::write(&file, stored.replace(&server.base, &cable.base)).unwrap();
    let mut terminal = Terminal::start(phone.home.path(), &["listen"]);
    terminal.expect("Listening").await;

    cable.cut();
    terminal.expect("Lost the connection for account").await;
    // Made while the app cannot be told: only looking again after reconnecting finds it.
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    cable.mend();
    terminal.expect("Reconnected account").await;
    terminal.expect("Are you trying to sign in?").await;
    terminal.expect("(n)? ").await;
    terminal.type_keys("a\n").await;
    terminal.expect("Enter the number").await;
    terminal.type_keys(&format!("{}\n", number_on(&page))).await;
    terminal.expect("Device PIN: ").await;
    terminal.type_keys(&format!("{PIN}\n")).await;
    terminal.expect("Approved.").await;
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
}

/// Runs the app with `stdin` piped in (as a script would); its exit status and what it printed.
fn run_piped(home: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(authenticator_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the app starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn enable_phone_sign_in_picks_the_only_account_and_takes_a_user_name() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let phone = Phone::register(&bobby, "Bobby's phone").await;
    let home = phone.home.path().to_path_buf();
    let pins = format!("{PIN}\n{PIN}\n");
    let (ok, said) = tokio::task::spawn_blocking({
        let (home, pins) = (home.clone(), pins.clone());
        move || run_piped(&home, &["enable-phone-sign-in"], &pins)
    })
    .await
    .unwrap();
    assert!(ok, "{said}");
    assert!(
        said.contains("Phone sign-in is on for bobby@contoso.example"),
        "{said}"
    );
    let info = bobby.browser.get("/mysecurityinfo").await;
    assert!(
        info.body.contains("Authenticator app — Passwordless"),
        "{}",
        info.body
    );

    // A second account on the same device: now the app asks which, and lists them.
    let carol = Person::new(&server, "carol", "Carol Jones").await;
    let page = carol.start_adding_the_app().await;
    let mut app = Authenticator::open(&home).unwrap();
    let (account, test) = app
        .add(&activation_link(&page), "Shared phone")
        .await
        .unwrap();
    let number = number_on(&carol.browser.get(&progress_path(&page)).await);
    assert_eq!(
        app.respond(account, &test, Decision::Approve, Some(number), None)
            .await
            .unwrap(),
        AnswerOutcome::Approved
    );
    drop(app);
    let (ok, said) = tokio::task::spawn_blocking({
        let (home, pins) = (home.clone(), pins.clone());
        move || run_piped(&home, &["enable-phone-sign-in"], &pins)
    })
    .await
    .unwrap();
    assert!(!ok, "{said}");
    assert!(
        said.contains("name one by its number or user name"),
        "{said}"
    );
    assert!(
        said.contains("bobby@contoso.example") && said.contains("carol@contoso.example"),
        "{said}"
    );
    let (ok, said) = tokio::task::spawn_blocking(move || {
        run_piped(
            &home,
            &["enable-phone-sign-in", "carol@contoso.example"],
            &pins,
        )
    })
    .await
    .unwrap();
    assert!(ok, "{said}");
    assert!(
        said.contains("Phone sign-in is on for carol@contoso.example"),
        "{said}"
    );
    let info = carol.browser.get("/mysecurityinfo").await;
    assert!(
        unescape(&info.body).contains("Authenticator app — Passwordless"),
        "{}",
        info.body
    );
}

#[tokio::test]
async fn listen_shows_allow_phone_sign_in_asks_for_the_security_info_number_and_says_what_next() {
    let clock = manual_clock();
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(|c| c.lifetimes.phone_sign_in_enable_seconds = 20)
        .start()
        .await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::register(&bobby, "Bobby's phone").await;
    clock.advance(21);
    let mut terminal = Terminal::start(phone.home.path(), &["listen"]);
    terminal.expect("Listening").await;
    let device_id = phone.app.account(phone.account).device_id.clone();
    let waiting = crate::phone_sign_in_consent::allow_phone_sign_in(&bobby, &device_id).await;
    terminal.expect("Allow phone sign-in on this device?").await;
    terminal.expect("Approve (a) or Deny (d)? ").await;
    terminal.type_keys("a\n").await;
    terminal
        .expect("Enter the number the security-info page shows: ")
        .await;
    terminal
        .type_keys(&format!("{}\n", number_on(&waiting.page)))
        .await;
    terminal.expect("run enable-phone-sign-in").await;
    phone
        .app
        .enable_phone_sign_in(phone.account, PIN)
        .await
        .expect("turned on after the approval in listen");
}
