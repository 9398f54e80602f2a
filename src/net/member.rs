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

/// A high-water store in a file: written to a temporary file, fsynced, then renamed.
pub struct FileStore {
    path: PathBuf,
    value: u64,
}

impl FileStore {
    /// Opens (or starts) the store at `path`.
    pub fn open(path: PathBuf) -> Result<FileStore, String> {
        let value = match std::fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("{}: not a round number", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(FileStore { path, value })
    }
}

impl HighWaterStore for FileStore {
    fn load(&self) -> u64 {
        self.value
    }
    fn store(&mut self, round: u64) -> Result<(), String> {
        use std::io::Write;
        let tmp = self.path.with_extension("tmp");
        let res = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(round.to_string().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        res.map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.value = round;
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
            if let Err(e) = flushed {
                break e;
            }
            tokio::select! {
                f = fr_rx.recv() => match f {
                    Some(bytes) => {
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
        warn!(reason = %reason, "lost the relay; reconnecting");
        let _ = notes.send(MemberNote::Disconnected(reason));
    }
    endpoint.wait_idle().await;
}
