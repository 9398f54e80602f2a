//! The member's QUIC driver: connects to the relay (with backoff), feeds frames into
//! [`Member`], and passes submissions in and events out through channels.

use super::{read_frame, tls, write_frame};
use crate::adversary::MemberFault;
use crate::crypto::identity::{IdentityKey, PublicKey};
use crate::params::Group;
use crate::protocol::{HighWaterStore, Member, MemberEvent, MemberId, Time};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

/// What a running member reports.
#[derive(Debug, Clone)]
pub enum MemberNote {
    /// A protocol event.
    Event(MemberEvent),
    /// Connected to the relay.
    Connected,
    /// Lost (or could not reach) the relay; it retries with backoff.
    Disconnected(String),
    /// A submitted message was queued under this ticket.
    Queued {
        /// Ticket.
        ticket: u64,
        /// Messages now waiting or in flight.
        pending: usize,
    },
    /// A submitted message was refused (too long, or too many waiting).
    Refused(String),
    /// Messages from the outbox file of an earlier run were put back in the queue (they go
    /// out first, with the anonymity-set state they had).
    Restored {
        /// Their tickets, oldest first.
        tickets: Vec<u64>,
    },
    /// Input ended ([`MemberHandle::drain`]): the member leaves once this many queued
    /// messages are out.
    Draining {
        /// Messages still waiting or in flight.
        pending: usize,
    },
    /// The member left cleanly after [`MemberHandle::drain`]: every queued message is out.
    Drained,
    /// The member stopped for good (the task ends after this note), e.g. because the relay
    /// kept refusing it: another connection with its key is active.
    Fatal(String),
}

/// What the driver is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Run,
    /// Leave once every queued message is out.
    Drain,
    /// Leave now.
    Now,
}

/// A message for a running member to send.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The message bytes.
    pub message: Vec<u8>,
    /// Submit under this link ([`crate::protocol::Member::submit_linked`]): a pseudonym's
    /// post, or our side of a conversation we started anonymously.
    pub link: Option<crate::protocol::LinkId>,
}

impl From<Vec<u8>> for Submission {
    fn from(message: Vec<u8>) -> Submission {
        Submission {
            message,
            link: None,
        }
    }
}

/// A running member.
pub struct MemberHandle {
    /// Messages to send anonymously.
    pub submit: mpsc::Sender<Submission>,
    /// What happens.
    pub notes: mpsc::UnboundedReceiver<MemberNote>,
    shutdown: watch::Sender<Stop>,
    task: tokio::task::JoinHandle<()>,
}

impl MemberHandle {
    /// Stops the member now: it closes its connection (telling the relay it leaves) and the
    /// task ends. Messages not yet out stay in the outbox file, if there is one.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(Stop::Now);
        let _ = self.task.await;
    }

    /// Asks the member to leave once every queued message (and every one already submitted)
    /// is out; it then sends [`MemberNote::Drained`] and the task ends.
    pub fn drain(&self) {
        let _ = self.shutdown.send_if_modified(|s| {
            let change = *s == Stop::Run;
            if change {
                *s = Stop::Drain;
            }
            change
        });
    }
}

/// How a member runs beyond its identity and group.
#[derive(Default)]
pub struct MemberOptions {
    /// Faults to inject (tests and the demo's adversaries).
    pub faults: Vec<MemberFault>,
    /// The outbox file: messages not yet completely out, written before any of their pieces
    /// leave, read back at start (docs/PROTOCOL.md §8.1). `None`: the outbox lives in memory
    /// only and a crash loses it.
    pub outbox: Option<PathBuf>,
    /// Keep the anonymity sets of links no restored message uses
    /// ([`crate::protocol::Member::forget_idle_links`]). Leave it off unless the pseudonym and
    /// reply keys behind them also survive the restart (`dcnet member` keeps neither).
    pub keep_idle_links: bool,
}

/// First line of a state file.
const STATE_HEADER: &str = "dcnet-state v1";
/// Largest state file read (bytes).
const MAX_STATE_FILE: u64 = 4096;

/// A member's durable state (its [`HighWaterStore`]) in a small text file:
///
/// ```text
/// dcnet-state v1
/// round N
/// epoch E
/// ```
///
/// `round` is the highest round the member committed in, `epoch` the highest epoch it acted in;
/// both are decimal u64. A file holding one bare decimal number (the format before v1) reads as
/// that round with epoch 0.
///
/// Losing this file is dangerous: a member that starts again from zero may commit a second time
/// to a round it already committed to and be convicted of equivocation. So [`FileStore::open`]
/// refuses a missing or unreadable file; only [`FileStore::create_new`] (`dcnet member --new`)
/// starts from zero, and only when no file exists.
///
/// Every write goes to `PATH.tmp`, which is fsynced, renamed over `PATH`, and then the
/// directory is fsynced so that the rename itself survives a crash.
pub struct FileStore {
    path: PathBuf,
    round: u64,
    epoch: u64,
}

/// What to tell the user when the state is gone: why it matters and what to do.
const STATE_ADVICE: &str = "if this member has joined the group before, restore it (starting \
     from zero could make it sign a round twice and be convicted); if it is new, pass --new";

impl FileStore {
    /// Opens an existing state file. A missing, unreadable or corrupt file is an error that
    /// says what to do: restore it, or pass `--new` if this key has never joined the group.
    pub fn open(path: PathBuf) -> Result<FileStore, String> {
        let shown = path.display();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("state file {shown} is missing: {STATE_ADVICE}"));
            }
            Err(e) => {
                return Err(format!(
                    "state file {shown} is unreadable ({e}): {STATE_ADVICE}"
                ));
            }
        };
        if !meta.is_file() || meta.len() > MAX_STATE_FILE {
            return Err(format!(
                "state file {shown} is not a dcnet state file (not a regular file of at most \
                 {MAX_STATE_FILE} bytes): {STATE_ADVICE}"
            ));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("state file {shown} is unreadable ({e}): {STATE_ADVICE}"))?;
        let (round, epoch) = parse_state(&text).ok_or_else(|| {
            format!("state file {shown} is corrupt (expected \"{STATE_HEADER}\", a round and an epoch line): {STATE_ADVICE}")
        })?;
        Ok(FileStore { path, round, epoch })
    }

    /// Starts the state of a member that has never joined the group: writes round 0, epoch 0
    /// durably. Refuses if the file exists (that member has state: use [`FileStore::open`]).
    pub fn create_new(path: PathBuf) -> Result<FileStore, String> {
        use std::io::Write;
        let shown = path.display();
        let mut f = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(format!(
                    "state file {shown} already exists, so this member has joined before: \
                     start it without --new (its state is needed to never sign a round twice)"
                ));
            }
            Err(e) => return Err(format!("cannot create state file {shown}: {e}")),
        };
        (|| {
            f.write_all(state_text(0, 0).as_bytes())?;
            f.sync_all()?;
            sync_parent(&path)
        })()
        .map_err(|e| format!("cannot write state file {shown}: {e}"))?;
        Ok(FileStore {
            path,
            round: 0,
            epoch: 0,
        })
    }

    /// The file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn write(&self, round: u64, epoch: u64) -> Result<(), String> {
        replace_durably(&self.path, state_text(round, epoch).as_bytes())
            .map_err(|e| format!("cannot write state file {}: {e}", self.path.display()))
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file: writes
/// `PATH.tmp` (owner-only), fsyncs it, renames it over `path`, then fsyncs the directory so the
/// rename itself survives.
fn replace_durably(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.to_path_buf().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_parent(path)
}

fn state_text(round: u64, epoch: u64) -> String {
    format!("{STATE_HEADER}\nround {round}\nepoch {epoch}\n")
}

/// Parses a v1 state file, or the older bare round number (epoch 0).
fn parse_state(text: &str) -> Option<(u64, u64)> {
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let mut lines = text.lines();
    let first = lines.next()?;
    if first != STATE_HEADER {
        // The format before v1: one decimal round number, nothing else.
        return if text.lines().count() == 1 {
            num(first.trim()).map(|r| (r, 0))
        } else {
            None
        };
    }
    let round = num(lines.next()?.strip_prefix("round ")?)?;
    let epoch = num(lines.next()?.strip_prefix("epoch ")?)?;
    if lines.any(|l| !l.is_empty()) {
        return None;
    }
    Some((round, epoch))
}

/// Fsyncs the directory holding `path`, so that a create or rename in it is durable. Where the
/// platform cannot sync a directory (an `Unsupported` error), that alone is ignored.
fn sync_parent(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Ok(()),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened as files here; the rename is as durable as the OS makes it.
        let _ = path;
        Ok(())
    }
}

impl HighWaterStore for FileStore {
    fn load(&self) -> u64 {
        self.round
    }
    fn store(&mut self, round: u64) -> Result<(), String> {
        self.write(round, self.epoch)?;
        self.round = round;
        Ok(())
    }
    fn load_epoch(&self) -> u64 {
        self.epoch
    }
    fn store_epoch(&mut self, epoch: u64) -> Result<(), String> {
        self.write(self.round, epoch)?;
        self.epoch = epoch;
        Ok(())
    }
}

/// The outbox file of a member: the snapshot [`Member::outbox_snapshot`] writes, replaced
/// atomically (temporary file, fsync, rename, directory fsync) and readable by its owner only,
/// since it holds messages not yet sent.
pub struct OutboxFile {
    path: PathBuf,
}

impl OutboxFile {
    /// The outbox at `path` (it need not exist yet).
    pub fn new(path: PathBuf) -> OutboxFile {
        OutboxFile { path }
    }

    /// The file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The snapshot it holds; `None` if there is no file.
    pub fn read(&self) -> Result<Option<Vec<u8>>, String> {
        use std::io::Read;
        let shown = self.path.display();
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the outbox file {shown}: {e}")),
        };
        let mut bytes = Vec::new();
        f.take(crate::protocol::member::MAX_OUTBOX_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read the outbox file {shown}: {e}"))?;
        Ok(Some(bytes))
    }

    /// Removes the file (durably), if it exists.
    pub fn remove(&self) -> Result<(), String> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => sync_parent(&self.path)
                .map_err(|e| format!("cannot remove the outbox file {}: {e}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!(
                "cannot remove the outbox file {}: {e}",
                self.path.display()
            )),
        }
    }

    /// Replaces the file with `snapshot`, durably.
    pub fn write(&self, snapshot: &[u8]) -> Result<(), String> {
        replace_durably(&self.path, snapshot)
            .map_err(|e| format!("cannot write the outbox file {}: {e}", self.path.display()))
    }
}

/// Starts member `me` of `group`, connecting to the relay at `relay_addr`. With an outbox file
/// in `opts`, the messages it holds from an earlier run are queued first (an outbox of another
/// group, or one that does not decode, is an error: nothing is dropped silently).
#[allow(clippy::too_many_arguments)]
pub async fn spawn(
    group: Arc<Group>,
    relay_addr: SocketAddr,
    relay_key: PublicKey,
    key: IdentityKey,
    me: u32,
    store: Box<dyn HighWaterStore + Send>,
    seed: [u8; 32],
    opts: MemberOptions,
) -> Result<MemberHandle, String> {
    let cert = tls::node_cert(&key)?;
    let client = tls::client_config(cert, relay_key)?;
    let bind: SocketAddr = if relay_addr.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|e| format!("{e}"))?
    } else {
        "[::]:0".parse().map_err(|e| format!("{e}"))?
    };
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(client);
    let group_hex = hex::encode(group.id());
    let mut member = Member::with_faults(group, MemberId(me), key, seed, store, opts.faults)?;
    let (note_tx, note_rx) = mpsc::unbounded_channel();
    let outbox = opts.outbox.map(OutboxFile::new);
    if let Some(o) = &outbox {
        if let Some(bytes) = o.read()? {
            let tickets = member.restore_outbox(&bytes).map_err(|e| {
                format!(
                    "the outbox file {} cannot be used ({e}); move it away to start without \
                     the messages it holds",
                    o.path().display()
                )
            })?;
            if !opts.keep_idle_links {
                member.forget_idle_links();
            }
            if !tickets.is_empty() {
                info!(
                    count = tickets.len(),
                    "messages restored from the outbox file"
                );
                let _ = note_tx.send(MemberNote::Restored { tickets });
            }
        }
    }
    let (sub_tx, sub_rx) = mpsc::channel(1024);
    let (sd_tx, sd_rx) = watch::channel(Stop::Run);
    let task = tokio::spawn(run(
        Driver {
            member,
            outbox,
            saved_rev: None,
            group_hex,
        },
        endpoint,
        relay_addr,
        sub_rx,
        note_tx,
        sd_rx,
    ));
    Ok(MemberHandle {
        submit: sub_tx,
        notes: note_rx,
        shutdown: sd_tx,
        task,
    })
}

/// The engine and what the driver keeps beside it.
struct Driver {
    member: Member,
    outbox: Option<OutboxFile>,
    /// The outbox revision last written to the outbox file.
    saved_rev: Option<u64>,
    group_hex: String,
}

impl Driver {
    /// Writes the outbox file if the outbox changed since the last write. Called before any
    /// frame goes out, so that what the relay is about to see of a message (a piece exposed,
    /// the sets R and A) is on disk first.
    fn persist(&mut self) -> Result<(), String> {
        let Some(o) = &self.outbox else {
            return Ok(());
        };
        let rev = self.member.outbox_rev();
        if self.saved_rev == Some(rev) {
            return Ok(());
        }
        if self.member.pending() == 0 && self.member.convicted().is_empty() {
            // Nothing waiting and nothing learnt: no file (nothing unsent stays on disk).
            o.remove()?;
        } else {
            o.write(&self.member.outbox_snapshot())?;
        }
        self.saved_rev = Some(rev);
        Ok(())
    }
}

/// How a connection to the relay ended.
enum Ended {
    /// Stop for good with this error.
    Fatal(String),
    /// The user asked to stop (or the drain finished).
    Stop,
    /// Lost the relay: reconnect after a backoff.
    Lost(String),
    /// The relay refused this member as a duplicate of an active connection.
    Duplicate,
    /// The relay ended the handshake with a TLS alert (not authenticated: retried for a while).
    Refused { why: String, advice: &'static str },
}

/// How long handshake refusals (a TLS alert from the relay, a relay certificate with another
/// key) must go on, at least [`MIN_REFUSALS`] of them with nothing else in between, before the
/// member gives up. Such
/// evidence is not authenticated (an on-path attacker can forge a close in an Initial packet),
/// so one refusal never stops a member; refusals that persist mean a configuration to fix.
pub const HANDSHAKE_GRACE: Duration = Duration::from_secs(20);

async fn run(
    mut d: Driver,
    endpoint: quinn::Endpoint,
    relay_addr: SocketAddr,
    mut sub_rx: mpsc::Receiver<Submission>,
    notes: mpsc::UnboundedSender<MemberNote>,
    mut shutdown: watch::Receiver<Stop>,
) {
    let start = tokio::time::Instant::now();
    let now = move || Time::from_micros(start.elapsed().as_micros() as u64);
    let mut backoff = Duration::from_millis(100);
    // When the relay first refused us as a duplicate of an active connection, if it still does.
    let mut refused_since: Option<tokio::time::Instant> = None;
    // When the relay first refused a handshake, if it still does.
    let mut refusals = Refusals::default();
    let mut input_open = true;
    let mut draining = false;
    // What the user must see goes through the notes (the CLI prints them); the log only
    // repeats it at info level, so that a default log never says a thing twice.
    let fatal = |msg: String| {
        info!("stopping: {msg}");
        let _ = notes.send(MemberNote::Fatal(msg));
    };
    if let Err(e) = d.persist() {
        fatal(format!("{e}; stopping"));
        endpoint.wait_idle().await;
        return;
    }
    'outer: loop {
        if *shutdown.borrow() == Stop::Now {
            break;
        }
        if *shutdown.borrow() == Stop::Drain && sub_rx.is_empty() && d.member.pending() == 0 {
            // Input ended and nothing is queued: no need to reach the relay to leave.
            let _ = notes.send(MemberNote::Drained);
            break;
        }
        let attempt = async {
            let conn = endpoint
                .connect(relay_addr, "dcnet")
                .map_err(|e| ConnectFail::Other(e.to_string()))?
                .await
                .map_err(ConnectFail::from)?;
            let (send, recv) = conn.open_bi().await.map_err(ConnectFail::from)?;
            Ok::<_, ConnectFail>((conn, send, recv))
        };
        let (conn, mut send, mut recv) = tokio::select! {
            r = attempt => match r {
                Ok(x) => x,
                Err(ConnectFail::Fatal(msg)) => {
                    fatal(msg);
                    break 'outer;
                }
                Err(ConnectFail::Refused { why, advice }) => {
                    match refusals.note(&why, advice) {
                        Err(msg) => {
                            fatal(msg);
                            break 'outer;
                        }
                        Ok(retry) => {
                            let _ = notes.send(MemberNote::Disconnected(retry));
                        }
                    }
                    if wait_or_stop(backoff, &mut shutdown).await {
                        break 'outer;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
                Err(ConnectFail::Other(e)) => {
                    refusals = Refusals::default();
                    let _ = notes.send(MemberNote::Disconnected(e));
                    if wait_or_stop(backoff, &mut shutdown).await {
                        break 'outer;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
            _ = stop_now(&mut shutdown) => break,
        };
        let connected_at = tokio::time::Instant::now();
        info!(%relay_addr, "connected to the relay");
        let _ = notes.send(MemberNote::Connected);
        d.member.handle_reconnect(now());
        // A reader task, so that a half-read frame is never lost to a select branch.
        let (fr_tx, mut fr_rx) = mpsc::channel::<Vec<u8>>(64);
        let reader = tokio::spawn(async move {
            loop {
                match read_frame(&mut recv, crate::wire::MAX_FRAME).await {
                    Ok(Some(f)) => {
                        if fr_tx.send(f).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        debug!(error = %e, "relay stream ended");
                        break;
                    }
                }
            }
        });
        let mut got_frame = false;
        let ended = loop {
            // The outbox file first: nothing of a message leaves before its state is on disk.
            if let Err(e) = d.persist() {
                break Ended::Fatal(format!(
                    "{e}; stopping before anything more goes out (a message's anonymity \
                     set must be recorded before its pieces leave)"
                ));
            }
            // Then the events (a message reported sent is off the disk already), then frames.
            while let Some(e) = d.member.poll_event() {
                let _ = notes.send(MemberNote::Event(e));
            }
            let mut flushed = Ok(());
            while let Some(f) = d.member.poll_transmit() {
                flushed = write_frame(&mut send, &f).await;
                if flushed.is_err() {
                    break;
                }
            }
            if let Some(why) = d.member.relay_faulty() {
                // The relay broke a rule (it let a blame case lapse, dropped our accusation,
                // signed blame messages that do not check out): stop and say so.
                break Ended::Fatal(format!(
                    "{why}; this member no longer trusts the relay: configure another relay"
                ));
            }
            if let Err(e) = flushed {
                break Ended::Lost(e);
            }
            if *shutdown.borrow() != Stop::Run && !draining {
                draining = true;
                input_open = false;
                let _ = notes.send(MemberNote::Draining {
                    pending: d.member.pending(),
                });
            }
            if draining && sub_rx.is_empty() && d.member.pending() == 0 {
                let _ = notes.send(MemberNote::Drained);
                break Ended::Stop;
            }
            // The protocol's own deadline (a blame case or a Record the relay must close).
            let timer = d
                .member
                .poll_timeout()
                .map(|t| start + Duration::from_micros(t.as_micros()));
            tokio::select! {
                _ = async {
                    match timer {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => d.member.handle_timeout(now()),
                f = fr_rx.recv() => match f {
                    Some(bytes) => {
                        got_frame = true;
                        refused_since = None;
                        refusals = Refusals::default();
                        if let Err(e) = d.member.handle_message(now(), &bytes) {
                            debug!(error = %e, "frame refused");
                        }
                    }
                    None => break Ended::Lost("the relay closed the connection".to_string()),
                },
                m = sub_rx.recv(), if input_open || draining => match m {
                    Some(sub) => match match sub.link {
                        Some(l) => d.member.submit_linked(&sub.message, l),
                        None => d.member.submit(&sub.message),
                    } {
                        Ok(ticket) => {
                            // On disk before the user is told it is queued.
                            if let Err(e) = d.persist() {
                                break Ended::Fatal(format!("{e}; stopping"));
                            }
                            let _ = notes.send(MemberNote::Queued {
                                ticket,
                                pending: d.member.pending(),
                            });
                        }
                        Err(e) => {
                            let _ = notes.send(MemberNote::Refused(e.to_string()));
                        }
                    },
                    None => input_open = false, // no more input; keep taking part
                },
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() == Stop::Now {
                        break Ended::Stop;
                    }
                }
            }
        };
        reader.abort();
        let ended = match ended {
            Ended::Lost(reason) => {
                classify_close(&conn, &d.group_hex).unwrap_or(Ended::Lost(reason))
            }
            e => e,
        };
        match ended {
            Ended::Stop => {
                let _ = send.finish();
                conn.close(super::CLOSE_BYE.into(), b"member leaving");
                break 'outer;
            }
            Ended::Fatal(msg) => {
                conn.close(super::CLOSE_BYE.into(), b"member stopping");
                fatal(msg);
                break 'outer;
            }
            Ended::Refused { why, advice } => {
                match refusals.note(&why, advice) {
                    Err(msg) => {
                        fatal(msg);
                        break 'outer;
                    }
                    Ok(retry) => {
                        let _ = notes.send(MemberNote::Disconnected(retry));
                    }
                }
                if wait_or_stop(backoff, &mut shutdown).await {
                    break 'outer;
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Ended::Duplicate => {
                refusals = Refusals::default();
                // Another connection with this key is active. It may be a crashed predecessor
                // whose connection the relay has not yet seen go silent: retry for a bounded
                // time, then stop instead of fighting a live copy.
                let since = *refused_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= super::DUPLICATE_GRACE {
                    fatal(format!(
                        "the relay refused this member: {} (is this member already running \
                         elsewhere with the same key? stop one of them); stopping",
                        super::DUPLICATE_REASON
                    ));
                    break 'outer;
                }
                let _ = notes.send(MemberNote::Disconnected(format!(
                    "the relay refused this member: {}; retrying for up to {} s in case it is \
                     a crashed earlier run",
                    super::DUPLICATE_REASON,
                    super::DUPLICATE_GRACE.as_secs()
                )));
                if wait_or_stop(Duration::from_secs(1), &mut shutdown).await {
                    break 'outer;
                }
            }
            Ended::Lost(reason) => {
                refusals = Refusals::default();
                // A connection that worked for a while starts the backoff afresh; one the
                // relay ends at once (a refusal we did not recognise, a crash loop) does not,
                // so that a misconfigured member never hammers the relay.
                if got_frame && connected_at.elapsed() >= Duration::from_secs(10) {
                    backoff = Duration::from_millis(100);
                }
                info!(reason = %reason, "lost the relay; reconnecting");
                let _ = notes.send(MemberNote::Disconnected(reason));
                if wait_or_stop(backoff, &mut shutdown).await {
                    break 'outer;
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
    // Bounded: a relay that does not answer the close must not hold the process.
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

/// Handshake refusals in a row (nothing else in between): the member stops only when there
/// were at least [`MIN_REFUSALS`] of them over at least [`HANDSHAKE_GRACE`] (attack review 4,
/// finding D: two forged closes 20 s apart must not stop a member for good).
#[derive(Default)]
struct Refusals {
    since: Option<tokio::time::Instant>,
    count: u32,
}

/// Fewest refusals in a row before a member stops.
pub const MIN_REFUSALS: u32 = 5;

impl Refusals {
    /// Counts one refusal: `Ok` with what to tell the user while it retries, `Err` with the
    /// error to stop on.
    fn note(&mut self, why: &str, advice: &str) -> Result<String, String> {
        let since = *self.since.get_or_insert_with(tokio::time::Instant::now);
        self.count = self.count.saturating_add(1);
        let grace = HANDSHAKE_GRACE.as_secs();
        if self.count >= MIN_REFUSALS && since.elapsed() >= HANDSHAKE_GRACE {
            Err(format!("{why}, for {grace} s: {advice}; stopping"))
        } else {
            Ok(format!("{why}; retrying for up to {grace} s"))
        }
    }
}

/// Sleeps `d`, or returns `true` at once if the member is told to stop now.
async fn wait_or_stop(d: Duration, shutdown: &mut watch::Receiver<Stop>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow() == Stop::Now,
        _ = stop_now(shutdown) => true,
    }
}

/// Completes when the member is told to stop now (or its handle is gone).
async fn stop_now(shutdown: &mut watch::Receiver<Stop>) {
    loop {
        if *shutdown.borrow() == Stop::Now {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Why a connection attempt failed.
enum ConnectFail {
    /// Nothing to retry: this member's configuration is wrong.
    Fatal(String),
    /// The handshake failed in a way that points at a configuration error (retried for
    /// [`HANDSHAKE_GRACE`], since it is not authenticated): what happened and what to fix.
    Refused { why: String, advice: &'static str },
    /// Anything else (unreachable, timed out): retry with backoff.
    Other(String),
}

impl From<quinn::ConnectionError> for ConnectFail {
    fn from(e: quinn::ConnectionError) -> ConnectFail {
        use quinn::ConnectionError as E;
        match &e {
            // Our own check of the relay's certificate failed: the key differs from the group file.
            E::TransportError(t) if is_crypto(u64::from(t.code)) => {
                if let Some(at) = t.reason.find(tls::RELAY_KEY_MISMATCH) {
                    ConnectFail::Refused {
                        why: t.reason[at..].to_string(),
                        advice: RELAY_KEY_ADVICE,
                    }
                } else {
                    ConnectFail::Other(e.to_string())
                }
            }
            // The relay ended the handshake with a TLS alert: it refused our certificate.
            E::ConnectionClosed(c) if is_crypto(u64::from(c.error_code)) => ConnectFail::Refused {
                why: handshake_refusal(&c.reason),
                advice: ROSTER_ADVICE,
            },
            E::ApplicationClosed(c)
                if c.error_code.into_inner() == u64::from(super::CLOSE_NOT_IN_ROSTER) =>
            {
                // Sent in an authenticated packet: no doubt about it.
                ConnectFail::Fatal(format!(
                    "the relay says this key is not in its roster: {ROSTER_ADVICE}; stopping"
                ))
            }
            _ => ConnectFail::Other(e.to_string()),
        }
    }
}

/// QUIC CRYPTO_ERROR codes (0x100 + TLS alert).
fn is_crypto(code: u64) -> bool {
    (0x100..0x200).contains(&code)
}

const ROSTER_ADVICE: &str = "this member's key is not in the roster the relay runs. Check that \
     --key is this member's key and that the relay uses the same group file (compare `dcnet \
     group show` on both sides)";

const RELAY_KEY_ADVICE: &str = "check the relay address and relay key in the group file (the \
     relay's operator can print its key with `dcnet key show`)";

fn handshake_refusal(reason: &[u8]) -> String {
    format!(
        "the relay refused this member's key at the handshake ({})",
        String::from_utf8_lossy(reason)
    )
}

/// What the relay's close of `conn` says, if it says something the member must act on.
fn classify_close(conn: &quinn::Connection, group_hex: &str) -> Option<Ended> {
    use quinn::ConnectionError as E;
    match conn.close_reason()? {
        E::ApplicationClosed(c) => {
            let code = c.error_code.into_inner();
            if code == u64::from(super::CLOSE_DUPLICATE) {
                Some(Ended::Duplicate)
            } else if code == u64::from(super::CLOSE_WRONG_GROUP) {
                let theirs = String::from_utf8_lossy(&c.reason);
                let theirs = if theirs.len() == 64 && theirs.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    theirs.into_owned()
                } else {
                    "not given".to_string()
                };
                Some(Ended::Fatal(format!(
                    "this member's group file differs from the relay's: this member has group id \
                     {group_hex}, the relay runs group id {theirs}. Use the group file the relay \
                     uses (`dcnet group show FILE` prints a file's group id); stopping"
                )))
            } else if code == u64::from(super::CLOSE_NOT_IN_ROSTER) {
                Some(Ended::Fatal(format!(
                    "the relay says this key is not in its roster: {ROSTER_ADVICE}; stopping"
                )))
            } else {
                None
            }
        }
        E::ConnectionClosed(c) if is_crypto(u64::from(c.error_code)) => Some(Ended::Refused {
            why: handshake_refusal(&c.reason),
            advice: ROSTER_ADVICE,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dcnet-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn open_err(p: &std::path::Path) -> String {
        match FileStore::open(p.to_path_buf()) {
            Ok(_) => panic!("{} opened", p.display()),
            Err(e) => e,
        }
    }

    #[test]
    fn a_missing_state_file_is_refused_unless_the_member_is_new() {
        let d = dir("missing");
        let p = d.join("alice.state");
        let e = open_err(&p);
        assert!(e.contains("is missing") && e.contains("--new"), "{e}");
        assert!(e.contains(&p.display().to_string()), "{e}");
        // --new starts from zero and writes the file at once.
        let s = FileStore::create_new(p.clone()).unwrap();
        assert_eq!((s.load(), s.load_epoch()), (0, 0));
        let s = FileStore::open(p.clone()).unwrap();
        assert_eq!((s.load(), s.load_epoch()), (0, 0));
        // --new on a member that has state is refused.
        let e = match FileStore::create_new(p.clone()) {
            Ok(_) => panic!("create_new overwrote"),
            Err(e) => e,
        };
        assert!(
            e.contains("already exists") && e.contains("without --new"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn round_and_epoch_survive_a_restart() {
        let d = dir("persist");
        let p = d.join("bob.state");
        let mut s = FileStore::create_new(p.clone()).unwrap();
        s.store_epoch(3).unwrap();
        s.store(41).unwrap();
        s.store(42).unwrap();
        drop(s);
        let mut s = FileStore::open(p.clone()).unwrap();
        assert_eq!((s.load(), s.load_epoch()), (42, 3));
        s.store_epoch(4).unwrap();
        let s = FileStore::open(p.clone()).unwrap();
        assert_eq!((s.load(), s.load_epoch()), (42, 4));
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "dcnet-state v1\nround 42\nepoch 4\n"
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("bob.state")]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn old_bare_round_files_still_read_and_corrupt_ones_are_refused() {
        let d = dir("formats");
        let p = d.join("carol.state");
        std::fs::write(&p, "17\n").unwrap();
        let s = FileStore::open(p.clone()).unwrap();
        assert_eq!((s.load(), s.load_epoch()), (17, 0));
        for bad in [
            "",
            "\n",
            "x",
            "-1",
            "17\n18\n",
            "dcnet-state v1\n",
            "dcnet-state v1\nround 5\n",
            "dcnet-state v1\nround 5\nepoch\n",
            "dcnet-state v1\nround +5\nepoch 1\n",
            "dcnet-state v1\nround 99999999999999999999\nepoch 1\n",
            "dcnet-state v1\nepoch 1\nround 5\n",
            "dcnet-state v1\nround 5\nepoch 1\nextra\n",
            "dcnet-state v2\nround 5\nepoch 1\n",
        ] {
            std::fs::write(&p, bad).unwrap();
            let e = open_err(&p);
            assert!(e.contains("corrupt") && e.contains("--new"), "{bad:?}: {e}");
        }
        std::fs::write(&p, vec![b'1'; 5000]).unwrap();
        assert!(open_err(&p).contains("not a dcnet state file"));
        // A directory where the file should be.
        let e = open_err(&d);
        assert!(e.contains("not a dcnet state file"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
