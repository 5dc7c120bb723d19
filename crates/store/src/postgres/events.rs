//! Device events between instances, over PostgreSQL's `LISTEN`/`NOTIFY`.
//!
//! A device's live channel sits on one instance while the sign-in that concerns it may run on
//! another; and the browser waiting on the number page may sit on another instance than the
//! one its approval is settled on (a `settled` notification, with the approval's id only). The instance that raises an event delivers it to its own connections and
//! publishes it here; every other instance hears it and delivers it to the devices connected
//! to it. A notification carries **ids only** (the sending instance, the device, the kind of
//! event, the request's id): a listener reads the request itself from the database, so
//! nothing of a sign-in ever travels through the notification queue.
//!
//! Notifications are not stored: whatever is sent while a listener is disconnected is lost.
//! So the listener reports every (re)connection ([`Heard::Connected`]) and its owner then
//! reloads from the database what is pending for every device connected to it.
//!
//! Never logged: the connection options (they may hold a password) and payloads.

use std::str::FromStr;
use std::time::Duration;

use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ApprovalId, DeviceId};
use latchkey_domain::secret::random_hex;
use latchkey_protocol::wire::DeviceEvent;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::backend;

/// The `application_name` of every listener's connection, so an operator (or a test) can
/// find them in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "latchkey-listen";

/// The channel's name is this followed by the schema the store works in, so deployments in
/// different schemas of one database do not hear each other.
pub const CHANNEL_PREFIX: &str = "latchkey_devices:";

/// PostgreSQL's longest identifier, and so the longest channel name (`NAMEDATALEN - 1`).
const MAX_CHANNEL_BYTES: usize = 63;

/// Events waiting to be published; beyond this they are dropped (devices pull what they
/// miss) rather than piling up while the database is slow.
const PUBLISH_QUEUE: usize = 1024;

/// Events heard and not yet delivered; the listener waits for room (nothing is dropped).
const HEARD_QUEUE: usize = 256;

/// How often an idle listener checks that its connection still answers, and how long it
/// waits for the answer before reconnecting.
const CHECK_EVERY: Duration = Duration::from_secs(30);
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The first wait before reconnecting a lost listener, doubled after each failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one instance tells the others about a device: ids only, never a request's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSignal {
    /// A new request with this id waits for the device.
    Request {
        id: String,
    },
    AnsweredElsewhere {
        id: String,
    },
    Expired {
        id: String,
    },
    Cancelled {
        id: String,
    },
    /// The device was removed: close its live channels.
    Forget,
}

impl DeviceSignal {
    /// The ids-only form of `event`.
    pub fn of(event: &DeviceEvent) -> DeviceSignal {
        match event {
            DeviceEvent::Request { request } => DeviceSignal::Request {
                id: request.id.clone(),
            },
            DeviceEvent::AnsweredElsewhere { id } => {
                DeviceSignal::AnsweredElsewhere { id: id.clone() }
            }
            DeviceEvent::Expired { id } => DeviceSignal::Expired { id: id.clone() },
            DeviceEvent::Cancelled { id } => DeviceSignal::Cancelled { id: id.clone() },
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            DeviceSignal::Request { .. } => "request",
            DeviceSignal::AnsweredElsewhere { .. } => "answered_elsewhere",
            DeviceSignal::Expired { .. } => "expired",
            DeviceSignal::Cancelled { .. } => "cancelled",
            DeviceSignal::Forget => "forget",
        }
    }

    fn request_id(&self) -> Option<&str> {
        match self {
            DeviceSignal::Request { id }
            | DeviceSignal::AnsweredElsewhere { id }
            | DeviceSignal::Expired { id }
            | DeviceSignal::Cancelled { id } => Some(id),
            DeviceSignal::Forget => None,
        }
    }
}

/// The notification's payload: `{"from":…,"device":…,"event":…,"id":…}` (`id` absent for
/// `forget`).
fn encode(instance: &str, device: &DeviceId, signal: &DeviceSignal) -> String {
    let mut payload = json!({
        "from": instance,
        "device": device.as_str(),
        "event": signal.kind(),
    });
    if let Some(id) = signal.request_id() {
        payload["id"] = Value::from(id);
    }
    payload.to_string()
}

/// The payload of an approval's settlement: `{"from":…,"event":"settled","id":…}` (no
/// device: it is for the browsers waiting on the number page).
fn encode_settled(instance: &str, approval: &ApprovalId) -> String {
    json!({
        "from": instance,
        "event": "settled",
        "id": approval.as_str(),
    })
    .to_string()
}

/// The sender and what it said, from a payload; `None` for anything else.
fn decode(payload: &str) -> Option<(String, Heard)> {
    let value: Value = serde_json::from_str(payload).ok()?;
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    let id = text("id");
    if value.get("event")?.as_str()? == "settled" {
        if value.get("device").is_some() {
            return None;
        }
        return Some((
            text("from")?,
            Heard::Settled {
                approval: ApprovalId::from_string(id?),
            },
        ));
    }
    let signal = match (value.get("event")?.as_str()?, id) {
        ("request", Some(id)) => DeviceSignal::Request { id },
        ("answered_elsewhere", Some(id)) => DeviceSignal::AnsweredElsewhere { id },
        ("expired", Some(id)) => DeviceSignal::Expired { id },
        ("cancelled", Some(id)) => DeviceSignal::Cancelled { id },
        ("forget", None) => DeviceSignal::Forget,
        _ => return None,
    };
    Some((
        text("from")?,
        Heard::Signal {
            device: DeviceId::from_string(text("device")?),
            signal,
        },
    ))
}

/// What a listener hands its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// The listener is (again) listening: what was sent meanwhile is lost, so reload.
    Connected,
    /// Another instance's event for `device`.
    Signal {
        device: DeviceId,
        signal: DeviceSignal,
    },
    /// Another instance settled this approval: wake the browsers waiting for it here.
    Settled { approval: ApprovalId },
}

/// One instance's end of the cross-instance device events: its id, the channel, a
/// connection to publish on and the options to listen with.
pub struct DeviceSignals {
    instance: String,
    channel: String,
    publish: PgPool,
    listen: PgConnectOptions,
}

impl std::fmt::Debug for DeviceSignals {
    // Not derived: the connection options hold the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSignals")
            .field("instance", &self.instance)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl DeviceSignals {
    /// Connects to the database at `url` (as the store does) and names the channel after
    /// the schema connections work in. Each call is a new instance with a fresh random id.
    pub async fn open(url: &str) -> Result<DeviceSignals, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|_| {
            StoreError::Backend("the database URL is not a valid PostgreSQL URL".into())
        })?;
        DeviceSignals::open_with(options).await
    }

    /// As [`open`](Self::open), with the connection options already built.
    pub async fn open_with(options: PgConnectOptions) -> Result<DeviceSignals, StoreError> {
        // One connection publishes, in order; a NOTIFY is instant, so it never needs more.
        let publish = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(
                options
                    .clone()
                    .application_name("latchkey")
                    .options([("statement_timeout", "5000")]),
            )
            .await
            .map_err(|e| backend("connecting to the database for device events", e))?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&publish)
            .await
            .map_err(|e| backend("reading the current schema", e))?;
        Ok(DeviceSignals {
            instance: random_hex(8),
            channel: channel_name(&schema),
            publish,
            listen: options.application_name(LISTENER_APPLICATION_NAME),
        })
    }

    /// The channel every instance on this schema publishes to and listens on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Starts the task that publishes, one at a time and in order, what the returned
    /// [`SignalPublisher`] queues. It ends when every publisher is dropped (or when aborted).
    pub fn start_publisher(&self) -> (SignalPublisher, JoinHandle<()>) {
        let (queue, mut queued) = mpsc::channel::<String>(PUBLISH_QUEUE);
        let pool = self.publish.clone();
        let channel = self.channel.clone();
        let task = tokio::spawn(async move {
            while let Some(payload) = queued.recv().await {
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(&channel)
                    .bind(&payload)
                    .execute(&pool)
                    .await;
                if let Err(e) = sent {
                    // Lost for other instances; their devices pull it.
                    tracing::warn!(error = %e, "publishing a device event to other instances failed");
                }
            }
        });
        let publisher = SignalPublisher {
            instance: self.instance.clone(),
            queue,
        };
        (publisher, task)
    }

    /// Starts the task that listens to the other instances. It reports
    /// [`Heard::Connected`] after every (re)connection and then what it hears; its own
    /// instance's events are left out. The connection is checked every 30 s; a lost one is
    /// reopened after 1 s, doubling up to 30 s while it keeps failing. The task ends when the
    /// receiver is dropped.
    pub fn start_listener(&self) -> (mpsc::Receiver<Heard>, JoinHandle<()>) {
        let (heard, receiver) = mpsc::channel(HEARD_QUEUE);
        let listener = Listener {
            instance: self.instance.clone(),
            channel: self.channel.clone(),
            options: self.listen.clone(),
            heard,
        };
        (receiver, tokio::spawn(listener.run()))
    }
}

/// `latchkey_devices:` and the schema, cut to PostgreSQL's 63 bytes (on a character boundary).
fn channel_name(schema: &str) -> String {
    let mut name = format!("{CHANNEL_PREFIX}{schema}");
    let mut end = name.len().min(MAX_CHANNEL_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

/// Queues device events for the other instances; cheap to clone, never blocks.
#[derive(Clone)]
pub struct SignalPublisher {
    instance: String,
    queue: mpsc::Sender<String>,
}

impl SignalPublisher {
    /// Queues `signal` for `device`. A full queue (the database is stalled) drops it: the
    /// other instances' devices pull what they miss.
    pub fn publish(&self, device: &DeviceId, signal: &DeviceSignal) {
        let payload = encode(&self.instance, device, signal);
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(payload) {
            tracing::warn!(device = %device, "too many device events waiting to be published; one is dropped (the device pulls)");
        }
    }

    /// Queues the news that `approval` was settled here, for browsers waiting for it on other
    /// instances. A full queue drops it: those browsers read the approval again within
    /// seconds anyway.
    pub fn publish_settled(&self, approval: &ApprovalId) {
        let payload = encode_settled(&self.instance, approval);
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(payload) {
            tracing::warn!(
                "too many device events waiting to be published; a settlement is dropped (waiting browsers re-read)"
            );
        }
    }
}

struct Listener {
    instance: String,
    channel: String,
    options: PgConnectOptions,
    heard: mpsc::Sender<Heard>,
}

/// Why the listener stopped hearing.
enum Stopped {
    /// Its owner is gone: stop for good.
    Owner,
    /// The connection failed or was lost: reconnect.
    Lost(String),
}

impl Listener {
    async fn run(self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let stopped = match self.connect().await {
                Ok(listener) => {
                    backoff = FIRST_BACKOFF;
                    tracing::info!(channel = %self.channel, "listening for other instances' device events");
                    self.hear(listener).await
                }
                Err(e) => Stopped::Lost(format!("connecting: {e}")),
            };
            match stopped {
                Stopped::Owner => return,
                Stopped::Lost(why) => tracing::warn!(
                    channel = %self.channel,
                    error = %why,
                    retry_in_seconds = backoff.as_secs(),
                    "not listening for other instances' device events; devices connected here get them when it reconnects"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.heard.closed() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// A fresh connection (a pool of one, as `PgListener` wants) listening on the channel.
    async fn connect(&self) -> Result<PgListener, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(self.options.clone());
        let mut listener = PgListener::connect_with(&pool).await?;
        // A lost connection ends `hear`, which reconnects here and reports it.
        listener.eager_reconnect(false);
        listener.listen(&self.channel).await?;
        Ok(listener)
    }

    /// Reports the connection, then passes on what other instances send until the connection
    /// is lost or the owner goes away.
    async fn hear(&self, mut listener: PgListener) -> Stopped {
        if self.heard.send(Heard::Connected).await.is_err() {
            return Stopped::Owner;
        }
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.tick().await;
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => Some(received),
                _ = check.tick() => None,
                _ = self.heard.closed() => return Stopped::Owner,
            };
            let Some(received) = received else {
                // A connection that silently died (a network partition) would otherwise wait
                // for notifications forever.
                let checked = sqlx::query("SELECT 1").execute(&mut listener);
                match tokio::time::timeout(CHECK_TIMEOUT, checked).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => return Stopped::Lost(e.to_string()),
                    Err(_) => return Stopped::Lost("the database did not answer a check".into()),
                }
            };
            let notification = match received {
                Ok(Some(notification)) => notification,
                Ok(None) => return Stopped::Lost("the connection was closed".into()),
                Err(e) => return Stopped::Lost(e.to_string()),
            };
            let Some((from, heard)) = decode(notification.payload()) else {
                tracing::debug!("ignored a malformed device event notification");
                continue;
            };
            if from == self.instance {
                continue;
            }
            if self.heard.send(heard).await.is_err() {
                return Stopped::Owner;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_carries_ids_only_and_round_trips() {
        let device = DeviceId::from_string("d1");
        for signal in [
            DeviceSignal::Request { id: "r1".into() },
            DeviceSignal::AnsweredElsewhere { id: "r2".into() },
            DeviceSignal::Expired { id: "r3".into() },
            DeviceSignal::Cancelled { id: "r4".into() },
            DeviceSignal::Forget,
        ] {
            let payload = encode("i1", &device, &signal);
            let value: Value = serde_json::from_str(&payload).unwrap();
            let mut keys: Vec<&str> = value
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            let expected: &[&str] = if signal == DeviceSignal::Forget {
                &["device", "event", "from"]
            } else {
                &["device", "event", "from", "id"]
            };
            assert_eq!(keys, expected, "{payload}");
            assert_eq!(
                decode(&payload),
                Some((
                    "i1".to_string(),
                    Heard::Signal {
                        device: device.clone(),
                        signal
                    }
                ))
            );
        }
        let approval = ApprovalId::from_string("a1");
        let payload = encode_settled("i2", &approval);
        let value: Value = serde_json::from_str(&payload).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["event", "from", "id"], "{payload}");
        assert_eq!(
            decode(&payload),
            Some(("i2".to_string(), Heard::Settled { approval }))
        );
        for junk in [
            "",
            "[]",
            r#"{"from":"i","device":"d","event":"request"}"#,
            r#"{"from":"i","device":"d","event":"forget","id":"x"}"#,
            r#"{"from":"i","device":"d","event":"unknown","id":"x"}"#,
            r#"{"device":"d","event":"expired","id":"x"}"#,
            r#"{"from":"i","event":"settled"}"#,
            r#"{"from":"i","device":"d","event":"settled","id":"x"}"#,
        ] {
            assert_eq!(decode(junk), None, "{junk}");
        }
    }

    #[test]
    fn the_channel_is_named_after_the_schema_within_postgresql_s_identifier_limit() {
        assert_eq!(channel_name("public"), "latchkey_devices:public");
        let long = "é".repeat(40);
        let name = channel_name(&long);
        assert!(name.len() <= MAX_CHANNEL_BYTES && name.starts_with(CHANNEL_PREFIX));
    }
}
