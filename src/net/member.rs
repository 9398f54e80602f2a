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
use tracing::{debug, info, warn};

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
    /// A submitted message was refused (too long).
    Refused(String),
    /// The member stopped for good (the task ends after this note), e.g. because the relay
    /// kept refusing it: another connection with its key is active.
    Fatal(String),
}

/// A running member.
pub struct MemberHandle {
    /// Messages to send anonymously.
    pub submit: mpsc::Sender<Vec<u8>>,
    /// What happens.
    pub notes: mpsc::UnboundedReceiver<MemberNote>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MemberHandle {
    /// Stops the member.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
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
        use std::io::Write;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(state_text(round, epoch).as_bytes())?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &self.path)?;
            sync_parent(&self.path)
        })()
        .map_err(|e| format!("cannot write state file {}: {e}", self.path.display()))
    }
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

/// Starts member `me` of `group`, connecting to the relay at `relay_addr`.
#[allow(clippy::too_many_arguments)]
pub async fn spawn(
    group: Arc<Group>,
    relay_addr: SocketAddr,
    relay_key: PublicKey,
    key: IdentityKey,
    me: u32,
    store: Box<dyn HighWaterStore + Send>,
    seed: [u8; 32],
    faults: Vec<MemberFault>,
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
    let member = Member::with_faults(group, MemberId(me), key, seed, store, faults)?;
    let (sub_tx, sub_rx) = mpsc::channel(1024);
    let (note_tx, note_rx) = mpsc::unbounded_channel();
    let (sd_tx, sd_rx) = watch::channel(false);
    let task = tokio::spawn(run(member, endpoint, relay_addr, sub_rx, note_tx, sd_rx));
    Ok(MemberHandle {
        submit: sub_tx,
        notes: note_rx,
        shutdown: sd_tx,
        task,
    })
}

async fn run(
    mut member: Member,
    endpoint: quinn::Endpoint,
    relay_addr: SocketAddr,
    mut sub_rx: mpsc::Receiver<Vec<u8>>,
    notes: mpsc::UnboundedSender<MemberNote>,
    mut shutdown: watch::Receiver<bool>,
) {
    let start = tokio::time::Instant::now();
    let now = || Time::from_micros(start.elapsed().as_micros() as u64);
    let mut backoff = Duration::from_millis(100);
    // When the relay first refused us as a duplicate of an active connection, if it still does.
    let mut refused_since: Option<tokio::time::Instant> = None;
    let mut input_open = true;
    'outer: loop {
        if *shutdown.borrow() {
            break;
        }
        let attempt = async {
            let conn = endpoint
                .connect(relay_addr, "dcnet")
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            let (send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((conn, send, recv))
        };
        let (conn, mut send, mut recv) = tokio::select! {
            r = attempt => match r {
                Ok(x) => x,
                Err(e) => {
                    let _ = notes.send(MemberNote::Disconnected(e));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => break 'outer,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        backoff = Duration::from_millis(100);
        info!(%relay_addr, "connected to the relay");
        let _ = notes.send(MemberNote::Connected);
        member.handle_reconnect(now());
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
        let reason = loop {
            let mut flushed = Ok(());
            while let Some(f) = member.poll_transmit() {
                flushed = write_frame(&mut send, &f).await;
                if flushed.is_err() {
                    break;
                }
            }
            while let Some(e) = member.poll_event() {
                let _ = notes.send(MemberNote::Event(e));
            }
            if let Some(why) = member.relay_faulty() {
                // The relay broke a rule (it let a blame case lapse, dropped our accusation,
                // signed blame messages that do not check out): stop and say so.
                let msg = format!(
                    "{why}; this member no longer trusts the relay: configure another relay"
                );
                warn!("{msg}");
                let _ = notes.send(MemberNote::Fatal(msg));
                reader.abort();
                conn.close(0u32.into(), b"relay distrusted");
                break 'outer;
            }
            if let Err(e) = flushed {
                break e;
            }
            // The protocol's own deadline (a blame case or a Record the relay must close).
            let timer = member
                .poll_timeout()
                .map(|t| start + Duration::from_micros(t.as_micros()));
            tokio::select! {
                _ = async {
                    match timer {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => member.handle_timeout(now()),
                f = fr_rx.recv() => match f {
                    Some(bytes) => {
                        refused_since = None;
                        if let Err(e) = member.handle_message(now(), &bytes) {
                            debug!(error = %e, "frame refused");
                        }
                    }
                    None => break "the relay closed the connection".to_string(),
                },
                m = sub_rx.recv(), if input_open => match m {
                    Some(msg) => match member.submit(&msg) {
                        Ok(ticket) => {
                            let _ = notes.send(MemberNote::Queued { ticket, pending: member.pending() });
                        }
                        Err(e) => {
                            let _ = notes.send(MemberNote::Refused(e.to_string()));
                        }
                    },
                    None => input_open = false, // no more input; keep taking part
                },
                _ = shutdown.changed() => {
                    reader.abort();
                    let _ = send.finish();
                    conn.close(0u32.into(), b"member leaving");
                    break 'outer;
                }
            }
        };
        reader.abort();
        if is_duplicate_refusal(&conn) {
            // Another connection with this key is active. It may be a crashed predecessor whose
            // connection the relay has not yet seen go silent: retry for a bounded time, then
            // stop instead of fighting a live copy.
            let since = *refused_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= super::DUPLICATE_GRACE {
                let msg = format!(
                    "the relay refused this member: {} (is this member already running \
                     elsewhere with the same key? stop one of them); stopping",
                    super::DUPLICATE_REASON
                );
                warn!("{msg}");
                let _ = notes.send(MemberNote::Fatal(msg));
                break 'outer;
            }
            let _ = notes.send(MemberNote::Disconnected(format!(
                "the relay refused this member: {}; retrying for up to {} s in case it is a \
                 crashed earlier run",
                super::DUPLICATE_REASON,
                super::DUPLICATE_GRACE.as_secs()
            )));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => break 'outer,
            }
            continue;
        }
        warn!(reason = %reason, "lost the relay; reconnecting");
        let _ = notes.send(MemberNote::Disconnected(reason));
    }
    endpoint.wait_idle().await;
}

/// Whether the relay closed `conn` because another connection with this key is active.
fn is_duplicate_refusal(conn: &quinn::Connection) -> bool {
    matches!(
        conn.close_reason(),
        Some(quinn::ConnectionError::ApplicationClosed(c))
            if c.error_code == quinn::VarInt::from_u32(super::CLOSE_DUPLICATE)
    )
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
