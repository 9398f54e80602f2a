//! A UDP delay line on loopback, for measuring the real QUIC group as if it ran across a WAN
//! (`dcnet bench --delay-ms`). Members send to the proxy's address; each member (each client
//! address) gets its own upstream socket towards the relay; every datagram, in either
//! direction, is held for the one-way delay and then forwarded, in arrival order. Buffers are
//! large and queues unbounded (what is in flight is one delay's worth of traffic), so the delay
//! line itself drops nothing; the kernel's loopback adds its few microseconds.
//!
//! Loopback only: the proxy binds 127.0.0.1 and forwards to the given relay address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Socket buffer the proxy asks for in each direction (the kernel may grant less).
const BUFFER: usize = 8 << 20;
/// Largest UDP datagram.
const MAX_DATAGRAM: usize = 65_535;
/// Clients (member addresses) one proxy serves; datagrams from further addresses are dropped.
const MAX_CLIENTS: usize = 4096;

/// A running delay line; dropping it stops it.
pub struct DelayProxy {
    /// Where members send (in place of the relay's address).
    pub local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    clients: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let c = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        for t in c.iter() {
            t.abort();
        }
    }
}

fn bind_big(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(addr)?;
    let r = socket2::SockRef::from(&s);
    // A smaller buffer than asked for is not an error (only drops become possible under load).
    let _ = r.set_recv_buffer_size(BUFFER);
    let _ = r.set_send_buffer_size(BUFFER);
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

/// Sends each queued datagram once its time has come, in queue order.
async fn deliver(
    mut rx: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    out: Arc<UdpSocket>,
    to: Option<SocketAddr>,
) {
    while let Some((at, d)) = rx.recv().await {
        tokio::time::sleep_until(at).await;
        let r = match to {
            Some(a) => out.send_to(&d, a).await,
            None => out.send(&d).await,
        };
        if r.is_err() {
            // The peer went away (ICMP unreachable on loopback): nothing to deliver to.
            continue;
        }
    }
}

/// Starts a delay line in front of `relay` (a loopback address) with the given one-way delay.
pub async fn spawn(relay: SocketAddr, one_way: Duration) -> std::io::Result<DelayProxy> {
    if !relay.ip().is_loopback() {
        return Err(std::io::Error::other(format!(
            "the delay line forwards to loopback only, not {relay}"
        )));
    }
    let front = Arc::new(bind_big("127.0.0.1:0".parse().expect("literal address"))?);
    let local_addr = front.local_addr()?;
    let clients: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let task = {
        let front = front.clone();
        let clients = clients.clone();
        tokio::spawn(async move {
            // Client address → queue of datagrams towards the relay.
            let mut up: HashMap<SocketAddr, mpsc::UnboundedSender<(Instant, Vec<u8>)>> =
                HashMap::new();
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                let Ok((n, from)) = front.recv_from(&mut buf).await else {
                    continue;
                };
                let at = Instant::now() + one_way;
                if !up.contains_key(&from) {
                    if up.len() >= MAX_CLIENTS {
                        continue;
                    }
                    let Ok(sock) = bind_big("127.0.0.1:0".parse().expect("literal address")) else {
                        continue;
                    };
                    if sock.connect(relay).await.is_err() {
                        continue;
                    }
                    let sock = Arc::new(sock);
                    let (tx, rx) = mpsc::unbounded_channel();
                    let (back_tx, back_rx) = mpsc::unbounded_channel();
                    let mut tasks = vec![
                        tokio::spawn(deliver(rx, sock.clone(), None)),
                        tokio::spawn(deliver(back_rx, front.clone(), Some(from))),
                    ];
                    // Relay → this client: read, stamp, queue.
                    let reader = sock.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut buf = vec![0u8; MAX_DATAGRAM];
                        loop {
                            let Ok(n) = reader.recv(&mut buf).await else {
                                continue;
                            };
                            let at = Instant::now() + one_way;
                            if back_tx.send((at, buf[..n].to_vec())).is_err() {
                                return;
                            }
                        }
                    }));
                    clients
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(tasks);
                    up.insert(from, tx);
                }
                if let Some(tx) = up.get(&from) {
                    let _ = tx.send((at, buf[..n].to_vec()));
                }
            }
        })
    };
    Ok(DelayProxy {
        local_addr,
        tasks: vec![task],
        clients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram through the line takes at least the delay each way and arrives intact.
    #[tokio::test]
    async fn delays_both_ways_and_keeps_order() {
        let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let proxy = spawn(relay.local_addr().unwrap(), Duration::from_millis(30))
            .await
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let t0 = Instant::now();
        for i in 0..5u8 {
            client.send_to(&[i; 100], proxy.local_addr).await.unwrap();
        }
        let mut buf = [0u8; 200];
        let mut from = None;
        for i in 0..5u8 {
            let (n, f) = relay.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i; 100][..]);
            from = Some(f);
        }
        assert!(t0.elapsed() >= Duration::from_millis(30));
        relay.send_to(b"back", from.unwrap()).await.unwrap();
        let (n, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
        assert!(t0.elapsed() >= Duration::from_millis(60));
    }
}
