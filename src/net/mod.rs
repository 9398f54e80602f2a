//! QUIC drivers: thin glue between quinn/tokio and the sans-IO engines.
//!
//! One bidirectional stream per member connection carries length-prefixed frames
//! (`u32` big-endian length, at most [`crate::wire::MAX_FRAME`] bytes). Protocol logic lives in
//! `crate::protocol`; nothing here interprets a frame beyond its length.

pub mod delay;
pub mod member;
pub mod relay;
pub mod tls;

use crate::wire::MAX_FRAME;
use std::time::Duration;

/// QUIC application close code: the connection's key is not in the relay's roster.
pub const CLOSE_NOT_IN_ROSTER: u32 = 1;
/// QUIC application close code: the member opened no stream within 10 s.
pub const CLOSE_NO_STREAM: u32 = 2;
/// QUIC application close code: the member's frames carry another group id than the relay's
/// (their group files differ). The reason is the relay's group id in lowercase hex.
pub const CLOSE_WRONG_GROUP: u32 = 5;
/// QUIC application close code: a clean goodbye (a member leaving, the relay shutting down).
pub const CLOSE_BYE: u32 = 0;
/// QUIC application close code: the relay refused this connection because another connection
/// authenticated with the same member key is active (docs/PROTOCOL.md, transport).
pub const CLOSE_DUPLICATE: u32 = 3;
/// Reason sent with [`CLOSE_DUPLICATE`].
pub const DUPLICATE_REASON: &str = "another connection with this key is active";
/// QUIC application close code: this connection was replaced by a newer one with the same
/// member key, after it had been silent for [`ACTIVE_WINDOW`].
pub const CLOSE_REPLACED: u32 = 4;
/// A connection is *active* if the relay received anything on it (a frame or a QUIC
/// keep-alive, sent every second) this recently. A second connection with the key of an active
/// one is refused; an inactive one (a crashed process whose connection has not yet reached the
/// 4 s idle timeout) is replaced.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(3);
/// How long a member keeps retrying after [`CLOSE_DUPLICATE`] before it gives up: long enough
/// for the connection of a crashed predecessor to go silent or time out, so that a member
/// restarted at once after a crash gets in, while a second live copy ends with an error.
pub const DUPLICATE_GRACE: Duration = Duration::from_secs(6);

/// Writes one frame.
pub async fn write_frame(s: &mut quinn::SendStream, frame: &[u8]) -> Result<(), String> {
    if frame.len() > MAX_FRAME {
        return Err(format!("frame of {} bytes exceeds the limit", frame.len()));
    }
    s.write_all(&(frame.len() as u32).to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(frame).await.map_err(|e| e.to_string())
}

/// Reads one frame of at most `max` bytes; `Ok(None)` when the peer finished the stream
/// cleanly.
pub async fn read_frame(s: &mut quinn::RecvStream, max: usize) -> Result<Option<Vec<u8>>, String> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max.min(MAX_FRAME) {
        return Err(format!(
            "peer announced a frame of {len} bytes; limit {}",
            max.min(MAX_FRAME)
        ));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(Some(buf))
}

/// A relay and all members of a [`crate::sim::TestGroup`] in this process, over real QUIC on
/// 127.0.0.1 (the demo and the benchmark use it).
pub async fn spawn_local_group(
    tg: &crate::sim::TestGroup,
    seed: u64,
    relay_faults: Vec<crate::adversary::RelayFault>,
    member_faults: &std::collections::BTreeMap<u32, Vec<crate::adversary::MemberFault>>,
) -> Result<(relay::RelayHandle, Vec<member::MemberHandle>), String> {
    let (relay, members, _) =
        spawn_local_group_delayed(tg, seed, relay_faults, member_faults, None).await?;
    Ok((relay, members))
}

/// [`spawn_local_group`] with every member reaching the relay through a [`delay`] line of
/// `one_way` each way (WAN emulation on loopback); the line runs as long as the returned proxy
/// is kept.
pub async fn spawn_local_group_delayed(
    tg: &crate::sim::TestGroup,
    seed: u64,
    relay_faults: Vec<crate::adversary::RelayFault>,
    member_faults: &std::collections::BTreeMap<u32, Vec<crate::adversary::MemberFault>>,
    one_way: Option<Duration>,
) -> Result<
    (
        relay::RelayHandle,
        Vec<member::MemberHandle>,
        Option<delay::DelayProxy>,
    ),
    String,
> {
    use crate::crypto::identity::IdentityKey;
    use crate::sim::derive_seed;
    let group = tg.group.clone();
    let listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let relay = relay::spawn(
        group.clone(),
        IdentityKey::from_secret_bytes(&tg.relay_key.secret_bytes()),
        listen,
        relay_faults,
    )
    .await?;
    let proxy = match one_way {
        Some(d) => Some(
            delay::spawn(relay.local_addr, d)
                .await
                .map_err(|e| format!("cannot start the delay line: {e}"))?,
        ),
        None => None,
    };
    let relay_addr = proxy.as_ref().map_or(relay.local_addr, |p| p.local_addr);
    let mut members = Vec::new();
    for (i, k) in tg.member_keys.iter().enumerate() {
        members.push(
            member::spawn(
                group.clone(),
                relay_addr,
                *group.relay_key(),
                IdentityKey::from_secret_bytes(&k.secret_bytes()),
                i as u32,
                // Every member here is new (a fresh group each run): an empty store.
                Box::new(crate::protocol::MemoryStore::default()),
                derive_seed(seed, "member-rng", i as u64),
                member::MemberOptions {
                    faults: member_faults.get(&(i as u32)).cloned().unwrap_or_default(),
                    outbox: None,
                    keep_idle_links: false,
                },
            )
            .await?,
        );
    }
    Ok((relay, members, proxy))
}
