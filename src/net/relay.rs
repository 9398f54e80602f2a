//! The relay's QUIC driver: accepts members, feeds frames into [`Relay`], routes its output.
//!
//! Tasks: one accept loop; per connection a reader and a writer; one core task that owns the
//! engine and is the only place protocol state changes. The core never awaits the network:
//! each member has a bounded outbound queue, and a member that cannot keep up is disconnected
//! (it then misses deadlines and is left out, as if absent) rather than stalling everyone.

use super::{read_frame, tls, write_frame};
use crate::crypto::identity::IdentityKey;
use crate::params::Group;
use crate::protocol::{MemberId, Relay, RelayEvent, Time};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// A member's outbound frame queue.
type Outbound = mpsc::Sender<Arc<[u8]>>;

/// Outbound frames queued per member before it is considered too slow.
const OUTBOUND_QUEUE: usize = 256;

enum Inbound {
    Connected {
        member: u32,
        conn: u64,
        tx: mpsc::Sender<Arc<[u8]>>,
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
        self.endpoint.close(0u32.into(), b"relay shutting down");
        self.endpoint.wait_idle().await;
    }
}

/// Starts a relay for `group` on `listen`.
pub async fn spawn(
    group: Arc<Group>,
    key: IdentityKey,
    listen: SocketAddr,
    faults: Vec<crate::adversary::RelayFault>,
) -> Result<RelayHandle, String> {
    let cert = tls::node_cert(&key)?;
    let roster = group.members().iter().map(|m| m.key).collect();
    let server = tls::server_config(cert, roster)?;
    let endpoint =
        quinn::Endpoint::server(server, listen).map_err(|e| format!("listen on {listen}: {e}"))?;
    let local_addr = endpoint.local_addr().map_err(|e| e.to_string())?;
    let relay = Relay::with_faults(group.clone(), key, faults)?;
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(4096);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (sd_tx, sd_rx) = watch::channel(false);
    // Largest frame a member may send: a Reveal of L bytes plus headers, or a disclosure.
    let max_in = group.params().vector_len() + 64 * 1024;
    tokio::spawn(accept_loop(
        endpoint.clone(),
        group.clone(),
        in_tx,
        sd_rx.clone(),
        max_in,
    ));
    let task = tokio::spawn(core(relay, in_rx, ev_tx, sd_rx));
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
) {
    let mut next_conn = 0u64;
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => match i { Some(i) => i, None => return },
            _ = shutdown.changed() => return,
        };
        next_conn += 1;
        let conn_id = next_conn;
        let group = group.clone();
        let in_tx = in_tx.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    warn!(%remote, error = %e, "handshake refused");
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
                conn.close(1u32.into(), b"not in the roster");
                return;
            };
            let accept =
                tokio::time::timeout(std::time::Duration::from_secs(10), conn.accept_bi()).await;
            let Ok(Ok((mut send, mut recv))) = accept else {
                conn.close(2u32.into(), b"no stream");
                return;
            };
            info!(member, %remote, "member connected");
            let (tx, mut rx) = mpsc::channel::<Arc<[u8]>>(OUTBOUND_QUEUE);
            if in_tx
                .send(Inbound::Connected {
                    member,
                    conn: conn_id,
                    tx,
                })
                .await
                .is_err()
            {
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
            conn.close(0u32.into(), b"bye");
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
) {
    let start = tokio::time::Instant::now();
    let now = |start: tokio::time::Instant| Time::from_micros(start.elapsed().as_micros() as u64);
    // member → (connection id, its outbound queue)
    let mut writers: BTreeMap<u32, (u64, Outbound)> = BTreeMap::new();
    let mut started = false;
    loop {
        let deadline = relay
            .poll_timeout()
            .map(|t| start + std::time::Duration::from_micros(t.as_micros()));
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = in_rx.recv() => {
                let Some(msg) = msg else { return };
                let t = now(start);
                match msg {
                    Inbound::Connected { member, conn, tx } => {
                        // A new connection replaces an older one for the same member; dropping
                        // the old queue finishes its stream, so that client reconnects.
                        if writers.insert(member, (conn, tx)).is_some() {
                            info!(member, "replaced an older connection");
                        }
                        if !started {
                            // The first epoch starts when the first member is here.
                            started = true;
                            relay.start(t);
                        }
                        relay.handle_connected(t, MemberId(member));
                    }
                    Inbound::Frame { member, conn, bytes } => {
                        if writers.get(&member).is_some_and(|w| w.0 == conn) {
                            if let Err(e) = relay.handle_message(t, MemberId(member), &bytes) {
                                debug!(member, error = %e, "frame refused");
                            }
                        }
                    }
                    Inbound::Gone { member, conn } => {
                        if writers.get(&member).is_some_and(|w| w.0 == conn) {
                            writers.remove(&member);
                        }
                    }
                }
            }
            _ = sleep => relay.handle_timeout(now(start)),
            _ = shutdown.changed() => return,
        }
        while let Some(tx) = relay.poll_transmit() {
            let m = tx.to.0;
            if let Some((_, w)) = writers.get(&m) {
                match w.try_send(tx.frame) {
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
            warn!(?verdict.culprit, rule = verdict.rule.name(), round = verdict.round, "verdict")
        }
        RelayEvent::Stalled { available } => info!(available, "waiting for members"),
        _ => {}
    }
}
