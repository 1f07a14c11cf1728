//! The workload every peer gets, in the shape of `spine-bench load`:
//! producers that keep a window of publishes in flight (or send at a fixed
//! open-loop rate), consumers that receive and acknowledge, then a drain
//! and the lost/duplicate check of `load_bench::finish`.
//!
//! A peer plugs in through [`Peer`]: a producer is one connection whose
//! publish future resolves when the peer acknowledged the message; a
//! consumer is a loop that hands each received body to an [`Inbox`] and
//! acknowledges it, until the inbox says stop.
//!
//! Invariants:
//! - Every body is `size` bytes and starts with an 8-byte key unique in the
//!   run: `run << 56 | producer << 40 | sequence`. The producer records a
//!   key only once the peer acknowledged its publish; the consumers record
//!   every key they receive; `lost` is acknowledged keys never received,
//!   a key received twice is a duplicate, and a key of another run (left
//!   over in the peer) is ignored.
//! - Latency is publish-to-acknowledgement; in `--rate` mode it counts from
//!   the publish's scheduled time (coordinated omission), as in
//!   `load_bench`.
//! - Each producer is one task polling its own in-flight futures (no task
//!   per message), so the generator's overhead stays small.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;

use crate::load_bench::{finish, measure, LoadArgs, Output, Tally};
use crate::report::latency_histogram;

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One producer connection of a peer.
pub(crate) trait Publish: Send {
    /// Publishes `body`; resolves once the peer acknowledged it (`Err`
    /// with the peer's reason otherwise).
    fn publish(&self, body: Bytes) -> BoxFuture<Result<(), String>>;
}

/// A peer under test, already started and set up.
pub(crate) trait Peer: Sync {
    /// Opens one producer connection.
    fn producer(&self) -> BoxFuture<anyhow::Result<Box<dyn Publish>>>;
    /// Opens one consumer connection; the returned future receives and
    /// acknowledges until `inbox.running()` turns false. It must wake at
    /// least every few hundred milliseconds to notice.
    fn consumer(&self, index: usize, inbox: Inbox) -> BoxFuture<anyhow::Result<BoxFuture<()>>>;
}

/// What consumers report received keys to.
#[derive(Clone)]
pub(crate) struct Inbox {
    run: u64,
    tally: Arc<Tally<u64>>,
    running: Arc<AtomicBool>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("run", &self.run).finish()
    }
}

impl Inbox {
    /// Whether consumers should keep going.
    pub(crate) fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Records a received body (a short body or another run's key is
    /// ignored).
    pub(crate) fn received(&self, body: &[u8]) {
        let Some(key) = key_of(body) else {
            self.tally.consumer_errors.fetch_add(1, Ordering::Relaxed);
            self.tally
                .error(format!("short body: {} bytes", body.len()));
            return;
        };
        if key >> 56 != self.run {
            return;
        }
        self.tally.record_received(key);
    }

    /// Counts a consumer-side failure.
    pub(crate) fn error(&self, what: String) {
        self.tally.consumer_errors.fetch_add(1, Ordering::Relaxed);
        self.tally.error(what);
    }
}

/// The key a body starts with.
pub(crate) fn key_of(body: &[u8]) -> Option<u64> {
    let head: [u8; 8] = body.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(head))
}

/// A `size`-byte body (at least 8) starting with `key`.
pub(crate) fn body_with_key(template: &[u8], key: u64) -> Bytes {
    let mut b = BytesMut::with_capacity(template.len().max(8));
    b.extend_from_slice(&key.to_be_bytes());
    if template.len() > 8 {
        b.extend_from_slice(&template[8..]);
    }
    b.freeze()
}

/// Runs one measured phase against `peer` with `args`' producers,
/// consumers, window, rate and seconds; `run` (0..=255) tags its keys.
pub(crate) async fn drive(peer: &dyn Peer, args: &LoadArgs, run: u8) -> anyhow::Result<Output> {
    let tally = Arc::new(Tally::<u64>::default());
    let running = Arc::new(AtomicBool::new(true));
    let inbox = Inbox {
        run: u64::from(run),
        tally: Arc::clone(&tally),
        running: Arc::clone(&running),
    };
    let mut consumer_tasks = Vec::new();
    for c in 0..args.consumers {
        let fut = peer.consumer(c, inbox.clone()).await?;
        consumer_tasks.push(tokio::spawn(fut));
    }
    let mut producers = Vec::new();
    for _ in 0..args.producers {
        producers.push(peer.producer().await?);
    }
    let per_producer_rate = args.rate.map(|r| r / args.producers as f64);
    let template = vec![0x5a; args.size.max(8)];
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let mut tasks = Vec::new();
    for (p, producer) in producers.into_iter().enumerate() {
        let prefix = (u64::from(run) << 56) | ((p as u64 & 0xffff) << 40);
        tasks.push(tokio::spawn(produce(
            producer,
            template.clone(),
            prefix,
            args.window,
            per_producer_rate,
            deadline,
            Arc::clone(&tally),
        )));
    }
    let measured = measure(tasks, start, args.seconds, &tally).await?;
    Ok(finish(
        args,
        1,
        args.consumers,
        &tally,
        measured,
        &running,
        consumer_tasks,
    )
    .await)
}

/// One producer: up to `window` publishes in flight until `deadline`;
/// returns its latency histogram (one sample per acknowledged message).
async fn produce(
    producer: Box<dyn Publish>,
    template: Vec<u8>,
    prefix: u64,
    window: usize,
    rate: Option<f64>,
    deadline: Instant,
    tally: Arc<Tally<u64>>,
) -> anyhow::Result<Histogram<u64>> {
    type Done = (Instant, u64, Result<(), String>);
    let mut hist = latency_histogram()?;
    let mut acked_keys = Vec::new();
    let start = Instant::now();
    let mut i: u64 = 0;
    let mut pending: FuturesUnordered<BoxFuture<Done>> = FuturesUnordered::new();
    loop {
        let now = Instant::now();
        let due = match rate {
            Some(r) => start + Duration::from_secs_f64(i as f64 / r),
            None => now,
        };
        let issuing = due < deadline && now < deadline;
        if issuing && due <= now && pending.len() < window {
            let issued = if rate.is_some() { due } else { now };
            let key = prefix | (i & 0xff_ffff_ffff);
            let fut = producer.publish(body_with_key(&template, key));
            pending.push(Box::pin(async move { (issued, key, fut.await) }));
            tally.sent.fetch_add(1, Ordering::Relaxed);
            i += 1;
            continue;
        }
        if !issuing && pending.is_empty() {
            break;
        }
        let wake = if issuing && pending.len() < window {
            due
        } else {
            deadline.max(now + Duration::from_secs(3600))
        };
        tokio::select! {
            Some((issued, key, result)) = pending.next(), if !pending.is_empty() => {
                let us = (issued.elapsed().as_micros() as u64).max(1);
                match result {
                    Ok(()) => {
                        let _ = hist.record(us);
                        acked_keys.push(key);
                    }
                    Err(e) => {
                        tally.send_errors.fetch_add(1, Ordering::Relaxed);
                        tally.error(format!("publish: {e}"));
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    tally
        .acked
        .fetch_add(acked_keys.len() as u64, Ordering::Relaxed);
    if let Ok(mut ids) = tally.acked_ids.lock() {
        ids.extend(acked_keys);
    }
    Ok(hist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_the_body_and_short_bodies_have_none() {
        let template = vec![0u8; 1024];
        let body = body_with_key(&template, 0x0102_0304_0506_0708);
        assert_eq!(body.len(), 1024);
        assert_eq!(key_of(&body), Some(0x0102_0304_0506_0708));
        assert_eq!(key_of(&body[..7]), None);
        assert_eq!(body_with_key(&[], 7).len(), 8);
    }

    #[test]
    fn the_inbox_counts_duplicates_and_ignores_other_runs() {
        let tally = Arc::new(Tally::<u64>::default());
        let inbox = Inbox {
            run: 2,
            tally: Arc::clone(&tally),
            running: Arc::new(AtomicBool::new(true)),
        };
        let mine = body_with_key(&[0; 16], (2 << 56) | 5);
        let other = body_with_key(&[0; 16], (1 << 56) | 5);
        inbox.received(&mine);
        inbox.received(&mine);
        inbox.received(&other);
        inbox.received(&[1, 2]);
        assert_eq!(tally.received.load(Ordering::SeqCst), 1);
        assert_eq!(tally.duplicates.load(Ordering::SeqCst), 1);
        assert_eq!(tally.consumer_errors.load(Ordering::SeqCst), 1);
    }
}
