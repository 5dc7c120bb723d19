//! The idle scenario's channels: every seeded device opens its live channel and keeps reading
//! it, and nothing else of the device is kept, so that the generator's memory per channel is
//! the socket's and not the bookkeeping's.
//!
//! A loopback server sees every channel come from one client address, and one local address
//! has some 28,000 ephemeral ports to connect from: the channels are spread over the source
//! addresses 127.0.0.1, 127.0.0.2, … ([`source_addresses`]).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use tokio::task::JoinSet;

use crate::seed::VirtualDevice;

/// Channels opened per local address at most: well under Linux's default 28,232 ephemeral
/// ports (32768–60999), leaving room for the seeding's and anything else's connections.
const CHANNELS_PER_SOURCE: usize = 16_000;

/// Local addresses to connect from for `channels` channels to `base`: several of 127.0.0.0/8
/// when the server is on IPv4 loopback (all of it is this host's), else the system's choice.
pub fn source_addresses(base: &str, channels: usize) -> Vec<Option<IpAddr>> {
    let loopback = ["http://127.", "https://127."]
        .iter()
        .any(|prefix| base.starts_with(prefix));
    if !loopback {
        return vec![None];
    }
    let count = channels.div_ceil(CHANNELS_PER_SOURCE).clamp(1, 254);
    (1..=count as u8)
        .map(|n| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))))
        .collect()
}

/// The open channels: one reading task each.
pub struct IdleChannels {
    pub tasks: JoinSet<()>,
    pub open: usize,
    /// Channels the server closed since they were opened.
    pub closed: Arc<AtomicU64>,
    /// Events the idle devices received (none are sent to them).
    pub events: Arc<AtomicU64>,
}

/// Opens every device's channel, `parallel` handshakes at a time, from `sources` in turn;
/// the devices are dropped as their channels open.
pub async fn open_all(
    devices: Vec<VirtualDevice>,
    sources: &[Option<IpAddr>],
    parallel: usize,
) -> Result<IdleChannels> {
    let closed = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    let mut opening = JoinSet::new();
    let mut open = 0;
    let total = devices.len();
    for (n, device) in devices.into_iter().enumerate() {
        if opening.len() >= parallel.max(1) {
            started(&mut opening, &mut tasks, &closed, &events).await?;
            open += 1;
        }
        let source = sources[n % sources.len()];
        opening.spawn(async move {
            device
                .client
                .connect_from(source)
                .await
                .with_context(|| format!("connecting {} from {source:?}", device.upn))
        });
        if n > 0 && n % 10_000 == 0 {
            eprintln!("  opened {n} of {total} channels");
        }
    }
    while !opening.is_empty() {
        started(&mut opening, &mut tasks, &closed, &events).await?;
        open += 1;
    }
    Ok(IdleChannels {
        tasks,
        open,
        closed,
        events,
    })
}

/// Waits for one handshake to finish and leaves a task reading its channel.
async fn started(
    opening: &mut JoinSet<Result<latchkey_authenticator::EventStream>>,
    tasks: &mut JoinSet<()>,
    closed: &Arc<AtomicU64>,
    events: &Arc<AtomicU64>,
) -> Result<()> {
    let mut stream = opening
        .join_next()
        .await
        .context("no handshake in flight")???;
    let (closed, events) = (closed.clone(), events.clone());
    tasks.spawn(async move {
        while stream.next().await.is_some() {
            events.fetch_add(1, Ordering::Relaxed);
        }
        closed.fetch_add(1, Ordering::Relaxed);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_to_a_loopback_server_are_spread_over_enough_loopback_addresses() {
        let sources = source_addresses("http://127.0.0.1:8080", 100_000);
        assert_eq!(sources.len(), 7);
        assert_eq!(sources[0], Some("127.0.0.1".parse().unwrap()));
        assert_eq!(sources[6], Some("127.0.0.7".parse().unwrap()));
        assert_eq!(source_addresses("http://127.0.0.1:8080", 10).len(), 1);
        assert_eq!(source_addresses("https://idp.example", 100_000), vec![None]);
    }
}
