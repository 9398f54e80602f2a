//! The relay's QUIC driver: accepts members, feeds frames into [`Relay`], routes its output.
//!
//! Tasks: one accept loop; per connection a reader and a writer; one core task that owns the
//! engine and is the only place protocol state changes. The core never awaits the network:
//! each member has a bounded outbound queue, and a member that cannot keep up is disconnected
//! (it then misses deadlines and is left out, as if absent) rather than stalling everyone.
//!
//! One key, one connection: a second connection with the key of an *active* connection (anything
//! received in the last [`ACTIVE_WINDOW`]) is closed with [`CLOSE_DUPLICATE`]; a silent one is
//! replaced (closed with [`CLOSE_REPLACED`]).

use super::{
    ACTIVE_WINDOW, CLOSE_BYE, CLOSE_DUPLICATE, CLOSE_NO_STREAM, CLOSE_NOT_IN_ROSTER,
    CLOSE_REPLACED, CLOSE_WRONG_GROUP, DUPLICATE_REASON, read_frame, tls, write_frame,
};
use crate::crypto::identity::IdentityKey;
use crate::params::Group;
use crate::protocol::{MemberId, ProtocolError, Relay, RelayEvent, Time};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// A member's outbound frame queue.
type Outbound = mpsc::Sender<Arc<[u8]>>;

/// Outbound frames queued per member before it is considered too slow.
const OUTBOUND_QUEUE: usize = 256;

/// How often a connection's received-datagram count is sampled to track its activity.
const ACTIVITY_SAMPLE: Duration = Duration::from_millis(250);

/// The connection the relay uses for a member.
struct Live {
    conn: u64,
    tx: Outbound,
    quic: quinn::Connection,
    /// Milliseconds since the relay started at which it last received anything on `quic`.
    seen: Arc<AtomicU64>,
}

fn ms_since(base: Instant) -> u64 {
    base.elapsed().as_millis() as u64
}

enum Inbound {
    Connected {
        member: u32,
        conn: u64,
        tx: mpsc::Sender<Arc<[u8]>>,
        quic: quinn::Connection,
        seen: Arc<AtomicU64>,
    },
    Frame {
        member: u32,
        conn: u64,
        bytes: Vec<u8>,
    },
    Gone {
        member: u32,
        conn: u64,
    },
}

/// A running relay.
pub struct RelayHandle {
    /// Where it listens.
    pub local_addr: SocketAddr,
    /// Its events.
    pub events: mpsc::UnboundedReceiver<RelayEvent>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    endpoint: quinn::Endpoint,
}

impl RelayHandle {
    /// Stops the relay and closes every connection.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.endpoint
            .close(CLOSE_BYE.into(), b"relay shutting down");
        self.endpoint.wait_idle().await;
    }
}

/// A relay transcript file (docs/PROTOCOL.md §12.1): every frame the relay received and sent,
/// as on the wire, for auditors and researchers who want to see what a relay sees.
pub struct Transcript {
    out: std::io::BufWriter<std::fs::File>,
    path: std::path::PathBuf,
    failed: bool,
}

/// First bytes of a relay transcript.
pub const TRANSCRIPT_MAGIC: &[u8; 8] = b"dcnetRT1";

impl Transcript {
    /// Creates the file (never overwriting one; owner-only, since what a relay sees is
    /// sensitive) and writes the magic.
    pub fn create(path: &std::path::Path) -> Result<Transcript, String> {
        use std::io::Write;
        let f = crate::config::create_private(path).map_err(|e| {
            format!(
                "cannot create the transcript {}: {e} (it is never overwritten: choose a new name)",
                path.display()
            )
        })?;
        let mut out = std::io::BufWriter::new(f);
        out.write_all(TRANSCRIPT_MAGIC)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Transcript {
            out,
            path: path.to_path_buf(),
            failed: false,
        })
    }

    /// One record: direction (0 received, 1 sent), member, microseconds since the relay
    /// started, then the frame exactly as on the wire (`u32be` length, bytes).
    fn record(&mut self, sent: bool, member: u32, micros: u64, frame: &[u8]) {
        use std::io::Write;
        if self.failed {
            return;
        }
        let mut head = [0u8; 17];
        head[0] = u8::from(sent);
        head[1..5].copy_from_slice(&member.to_le_bytes());
        head[5..13].copy_from_slice(&micros.to_le_bytes());
        head[13..17].copy_from_slice(&(frame.len() as u32).to_be_bytes());
        if let Err(e) = self
            .out
            .write_all(&head)
            .and_then(|_| self.out.write_all(frame))
        {
            warn!(path = %self.path.display(), error = %e, "cannot write the transcript; no more records");
            self.failed = true;
        }
    }

    fn flush(&mut self) {
        use std::io::Write;
        if !self.failed && self.out.flush().is_err() {
            warn!(path = %self.path.display(), "cannot write the transcript; no more records");
            self.failed = true;
        }
    }
}

/// UDP buffer size the relay asks for (the kernel may grant less: Linux caps it at
/// `net.core.rmem_max` / `wmem_max` unless the process may raise it). Every member's Reveal
/// arrives in the same few milliseconds: L bytes from each of N members.
pub const UDP_BUFFER: usize = 8 << 20;

/// The relay's endpoint on a UDP socket with large buffers.
pub(crate) fn bind(
    server: quinn::ServerConfig,
    listen: SocketAddr,
) -> std::io::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(listen)?;
    let s = socket2::SockRef::from(&socket);
    // A smaller buffer than asked for is not an error: the relay works, only slower.
    let _ = s.set_recv_buffer_size(UDP_BUFFER);
    let _ = s.set_send_buffer_size(UDP_BUFFER);
    debug!(
        recv = s.recv_buffer_size().unwrap_or(0),
        send = s.send_buffer_size().unwrap_or(0),
        "relay UDP buffers"
    );
    let runtime =
        quinn::default_runtime().ok_or_else(|| std::io::Error::other("no async runtime found"))?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        runtime,
    )
}

/// Starts a relay for `group` on `listen`.
pub async fn spawn(
    group: Arc<Group>,
    key: IdentityKey,
    listen: SocketAddr,
    faults: Vec<crate::adversary::RelayFault>,
) -> Result<RelayHandle, String> {
    spawn_with_transcript(group, key, listen, faults, None).await
}

/// [`spawn`], writing every frame to `transcript` as well.
pub async fn spawn_with_transcript(
    group: Arc<Group>,
    key: IdentityKey,
    listen: SocketAddr,
    faults: Vec<crate::adversary::RelayFault>,
    transcript: Option<Transcript>,
) -> Result<RelayHandle, String> {
    let cert = tls::node_cert(&key)?;
    let roster = group.members().iter().map(|m| m.key).collect();
    let server = tls::server_config(cert, roster)?;
    let endpoint = bind(server, listen).map_err(|e| format!("listen on {listen}: {e}"))?;
    let local_addr = endpoint.local_addr().map_err(|e| e.to_string())?;
    let relay = Relay::with_faults(group.clone(), key, faults)?;
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(4096);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (sd_tx, sd_rx) = watch::channel(false);
    // Largest frame a member may send: a Reveal of L bytes plus headers, or a disclosure.
    let max_in = group.params().vector_len() + 64 * 1024;
    let base = Instant::now();
    tokio::spawn(accept_loop(
        endpoint.clone(),
        group.clone(),
        in_tx,
        sd_rx.clone(),
        max_in,
        base,
    ));
    let names: Vec<String> = group.members().iter().map(|m| m.name.clone()).collect();
    let task = tokio::spawn(core(
        relay,
        in_rx,
        ev_tx,
        sd_rx,
        base,
        (hex::encode(group.id()), names),
        transcript,
    ));
    info!(%local_addr, group = %hex::encode(group.id()), "relay listening");
    Ok(RelayHandle {
        local_addr,
        events: ev_rx,
        shutdown: sd_tx,
        task,
        endpoint,
    })
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    group: Arc<Group>,
    in_tx: mpsc::Sender<Inbound>,
    mut shutdown: watch::Receiver<bool>,
    max_in: usize,
    base: Instant,
) {
    let mut next_conn = 0u64;
    let refusals = Arc::new(Throttle::new(Duration::from_secs(10)));
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => match i { Some(i) => i, None => return },
            _ = shutdown.changed() => return,
        };
        next_conn += 1;
        let conn_id = next_conn;
        let group = group.clone();
        let in_tx = in_tx.clone();
        let refusals = refusals.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    if let Some(suppressed) = refusals.allow() {
                        warn!(%remote, error = %e, suppressed, "handshake refused (at most one warning every 10 s)");
                    } else {
                        debug!(%remote, error = %e, "handshake refused");
                    }
                    return;
                }
            };
            let Some(member) = tls::peer_key(&conn).and_then(|k| {
                group
                    .members()
                    .iter()
                    .position(|m| m.key == k)
                    .map(|i| i as u32)
            }) else {
                conn.close(CLOSE_NOT_IN_ROSTER.into(), b"not in the roster");
                return;
            };
            let accept =
                tokio::time::timeout(std::time::Duration::from_secs(10), conn.accept_bi()).await;
            let Ok(Ok((mut send, mut recv))) = accept else {
                conn.close(CLOSE_NO_STREAM.into(), b"no stream");
                return;
            };
            info!(member, %remote, "member connected");
            // Activity: anything received (frames, keep-alives) moves the datagram count.
            let seen = Arc::new(AtomicU64::new(ms_since(base)));
            let sampler = {
                let (quic, seen) = (conn.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut last = quic.stats().udp_rx.datagrams;
                    let mut tick = tokio::time::interval(ACTIVITY_SAMPLE);
                    while quic.close_reason().is_none() {
                        tick.tick().await;
                        let n = quic.stats().udp_rx.datagrams;
                        if n != last {
                            last = n;
                            seen.store(ms_since(base), Ordering::Relaxed);
                        }
                    }
                })
            };
            let (tx, mut rx) = mpsc::channel::<Arc<[u8]>>(OUTBOUND_QUEUE);
            if in_tx
                .send(Inbound::Connected {
                    member,
                    conn: conn_id,
                    tx,
                    quic: conn.clone(),
                    seen,
                })
                .await
                .is_err()
            {
                sampler.abort();
                return;
            }
            let writer = tokio::spawn(async move {
                while let Some(f) = rx.recv().await {
                    if write_frame(&mut send, &f).await.is_err() {
                        break;
                    }
                }
                let _ = send.finish();
            });
            loop {
                match read_frame(&mut recv, max_in).await {
                    Ok(Some(bytes)) => {
                        if in_tx
                            .send(Inbound::Frame {
                                member,
                                conn: conn_id,
                                bytes,
                            })
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        debug!(member, error = %e, "connection ended");
                        break;
                    }
                }
            }
            writer.abort();
            sampler.abort();
            conn.close(CLOSE_BYE.into(), b"bye");
            let _ = in_tx
                .send(Inbound::Gone {
                    member,
                    conn: conn_id,
                })
                .await;
            info!(member, "member disconnected");
        });
    }
}

async fn core(
    mut relay: Relay,
    mut in_rx: mpsc::Receiver<Inbound>,
    ev_tx: mpsc::UnboundedSender<RelayEvent>,
    mut shutdown: watch::Receiver<bool>,
    base: Instant,
    (group_hex, group_names): (String, Vec<String>),
    mut transcript: Option<Transcript>,
) {
    let start = tokio::time::Instant::now();
    let now = |start: tokio::time::Instant| Time::from_micros(start.elapsed().as_micros() as u64);
    // member → the connection in use
    let mut writers: BTreeMap<u32, Live> = BTreeMap::new();
    let duplicates = Throttle::new(Duration::from_secs(10));
    let mut started = false;
    loop {
        let deadline = relay
            .poll_timeout()
            .map(|t| start + std::time::Duration::from_micros(t.as_micros()));
        // A deadline already due (the next Open right after a round, with post_round_ms and
        // round_ms 0) is acted on at once: a timer would round it up to tokio's next 1 ms tick.
        let due = deadline.is_some_and(|d| d <= tokio::time::Instant::now());
        let sleep = async {
            match deadline {
                Some(d) if !due => tokio::time::sleep_until(d).await,
                Some(_) => {}
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = async {}, if due => relay.handle_timeout(now(start)),
            msg = in_rx.recv() => {
                let Some(msg) = msg else { return };
                let t = now(start);
                match msg {
                    Inbound::Connected { member, conn, tx, quic, seen } => {
                        // Two connections with one key must not knock each other off (each
                        // new one would abort the round the other is in). An active one stays
                        // and the newcomer is refused; a silent one (a crashed process whose
                        // connection has not timed out yet) is replaced.
                        let old = writers.get(&member).map(|w| {
                            let silent_ms =
                                ms_since(base).saturating_sub(w.seen.load(Ordering::Relaxed));
                            let active = w.quic.close_reason().is_none()
                                && silent_ms < ACTIVE_WINDOW.as_millis() as u64;
                            (active, silent_ms)
                        });
                        match old {
                            Some((true, silent_ms)) => {
                                if let Some(suppressed) = duplicates.allow() {
                                    warn!(member = %relay_name(&group_names, member), silent_ms, suppressed, "refused a second connection with the key of an active member (at most one warning every 10 s)");
                                }
                                quic.close(CLOSE_DUPLICATE.into(), DUPLICATE_REASON.as_bytes());
                            }
                            _ => {
                                let live = Live { conn, tx, quic, seen };
                                if let Some(w) = writers.insert(member, live) {
                                    info!(member, silent_ms = ?old.map(|o| o.1), "replaced a silent connection");
                                    w.quic.close(
                                        CLOSE_REPLACED.into(),
                                        b"replaced by a newer connection with this key",
                                    );
                                }
                                if !started {
                                    // The first epoch starts when the first member is here.
                                    started = true;
                                    relay.start(t);
                                }
                                relay.handle_connected(t, MemberId(member));
                            }
                        }
                    }
                    Inbound::Frame { member, conn, bytes } => {
                        if let Some(tr) = transcript.as_mut() {
                            tr.record(false, member, start.elapsed().as_micros() as u64, &bytes);
                        }
                        if writers.get(&member).is_some_and(|w| w.conn == conn) {
                            match relay.handle_message(t, MemberId(member), &bytes) {
                                Ok(()) => {}
                                Err(ProtocolError::WrongGroup) => {
                                    // The transport authenticated this member, and its frame
                                    // names another group: its group file differs from ours.
                                    // Say so (the reason is our group id) and let it go.
                                    let name = relay_name(&group_names, member);
                                    warn!(member = %name, "closed the connection of a member whose group file differs from the relay's");
                                    if let Some(w) = writers.remove(&member) {
                                        w.quic.close(CLOSE_WRONG_GROUP.into(), group_hex.as_bytes());
                                    }
                                }
                                Err(e) => debug!(member, error = %e, "frame refused"),
                            }
                        }
                    }
                    Inbound::Gone { member, conn } => {
                        if writers.get(&member).is_some_and(|w| w.conn == conn) {
                            writers.remove(&member);
                        }
                    }
                }
            }
            _ = sleep => relay.handle_timeout(now(start)),
            _ = shutdown.changed() => {
                if let Some(tr) = transcript.as_mut() {
                    tr.flush();
                }
                return;
            }
        }
        while let Some(tx) = relay.poll_transmit() {
            let m = tx.to.0;
            if let Some(w) = writers.get(&m) {
                if let Some(tr) = transcript.as_mut() {
                    tr.record(true, m, start.elapsed().as_micros() as u64, &tx.frame);
                }
                match w.tx.try_send(tx.frame) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        warn!(member = m, "member too slow (queue full); disconnecting it");
                        writers.remove(&m);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        writers.remove(&m);
                    }
                }
            }
        }
        while let Some(e) = relay.poll_event() {
            log_event(&e);
            let _ = ev_tx.send(e);
        }
        if let Some(tr) = transcript.as_mut() {
            tr.flush();
        }
    }
}

/// A member's roster name, for logs.
fn relay_name(names: &[String], member: u32) -> &str {
    names.get(member as usize).map_or("?", |s| s.as_str())
}

/// At most one warning per period for a repeated condition; counts what it held back.
struct Throttle {
    period_ms: u64,
    base: Instant,
    /// Milliseconds since `base` of the last warning let through (u64::MAX: none yet).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    fn new(period: Duration) -> Throttle {
        Throttle {
            period_ms: period.as_millis() as u64,
            base: Instant::now(),
            last: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)`: warn now, `n` warnings were held back since the last one; `None`: hold back.
    fn allow(&self) -> Option<u64> {
        let now = ms_since(self.base);
        let last = self.last.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= self.period_ms;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

fn log_event(e: &RelayEvent) {
    match e {
        RelayEvent::EpochStarted { epoch, members } => info!(epoch, ?members, "epoch started"),
        RelayEvent::Completed { round, present } => {
            debug!(round, present = present.len(), "round completed")
        }
        RelayEvent::Aborted { round, missing } => info!(round, ?missing, "attempt aborted"),
        RelayEvent::Excluded {
            member,
            reason,
            round,
        } => info!(member, ?reason, round, "member excluded"),
        RelayEvent::Verdict { verdict, .. } => {
            // `dcnet relay` prints verdicts on stdout; the log has them at info level.
            info!(?verdict.culprit, rule = verdict.rule.name(), round = verdict.round, "verdict")
        }
        RelayEvent::Stalled { available } => info!(available, "waiting for members"),
        _ => {}
    }
}
