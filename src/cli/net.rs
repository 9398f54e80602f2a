//! `dcnet keygen`, `dcnet group new`, `dcnet relay`, `dcnet member`: what a real group runs.

use crate::config::{self, GroupFile};
use crate::crypto::identity::PublicKey;
use crate::net::member::{FileStore, MemberNote};
use crate::params::{RosterEntry, RoundParams};
use crate::protocol::MemberEvent;
use crate::protocol::blame::Culprit;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncBufReadExt;

/// Options of `dcnet keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key (mode 0600; never overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

/// `dcnet group …`.
#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Write a new group file (roster, relay, round parameters) in TOML.
    New(GroupNewArgs),
}

/// Options of `dcnet group new`.
#[derive(Args, Debug)]
pub struct GroupNewArgs {
    /// Group name.
    #[arg(long)]
    pub name: String,
    /// Where the relay listens, HOST:PORT.
    #[arg(long)]
    pub relay: String,
    /// The relay's public key (as printed by `dcnet keygen`).
    #[arg(long)]
    pub relay_key: PublicKey,
    /// A member, NAME=PUBKEY; repeat for each member. Order fixes member indices.
    #[arg(long = "member", value_parser = parse_member, required = true)]
    pub members: Vec<(String, PublicKey)>,
    /// Reservation cells (default: twice the members).
    #[arg(long)]
    pub cells: Option<u32>,
    /// Slots per round (default: one per member).
    #[arg(long)]
    pub slots: Option<u32>,
    /// Bytes per slot, framing included.
    #[arg(long, default_value_t = 256)]
    pub slot_bytes: u32,
    /// Probability of reserving a trap while a message is pending.
    #[arg(long, default_value_t = 0.2)]
    pub p_trap: f64,
    /// Probability that an idle member reserves a cover trap.
    #[arg(long, default_value_t = 1.0)]
    pub p_cover: f64,
    /// Tolerated shrinkage t of the anonymity set: a message goes out only while at least
    /// members − t of the roster are present (default: the floor is half the roster, at least 2).
    #[arg(long)]
    pub tolerance: Option<u32>,
    /// Commit/reveal/unblind deadline at the relay, in ms.
    #[arg(long, default_value_t = 2000)]
    pub deadline_ms: u64,
    /// Where to write the group file.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_member(s: &str) -> Result<(String, PublicKey), String> {
    let (name, key) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=PUBKEY"))?;
    Ok((name.to_string(), key.parse()?))
}

/// Options of `dcnet relay`.
#[derive(Args, Debug)]
pub struct RelayArgs {
    /// The group file.
    #[arg(long)]
    pub group: PathBuf,
    /// The relay's secret key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Address to listen on (default: the group file's relay address).
    #[arg(long)]
    pub listen: Option<String>,
}

/// Options of `dcnet member`.
#[derive(Args, Debug)]
pub struct MemberArgs {
    /// The group file.
    #[arg(long)]
    pub group: PathBuf,
    /// This member's secret key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The member's state file: the highest round and epoch it acted in (default: KEY.state).
    /// It must exist, unless --new is given; losing it could make the member sign a round
    /// twice and be convicted, so keep it with the key.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// This key has never joined the group: start with an empty state file (refused if the
    /// state file exists). Never pass it when restarting a member that has run before.
    #[arg(long)]
    pub new: bool,
    /// One JSON object per line on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// The outbox file: messages typed but not yet completely out, kept across a crash and
    /// sent after a restart (default: the state file with extension `.outbox`; mode 0600).
    #[arg(long)]
    pub outbox: Option<PathBuf>,
    /// Append every delivered message to this file, one JSON object per line (round, slot,
    /// text; never a sender).
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Keep taking part after stdin ends (by default the member leaves once its queued
    /// messages are out).
    #[arg(long)]
    pub stay: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn fail(cmd: &str, e: impl std::fmt::Display) -> i32 {
    eprintln!("dcnet {cmd}: {e}");
    1
}

/// `dcnet keygen`.
pub fn keygen(a: &KeygenArgs) -> i32 {
    match config::write_new_key(&a.out) {
        Ok(public) => {
            eprintln!(
                "secret key written to {} (keep it private)",
                a.out.display()
            );
            println!("{public}");
            0
        }
        Err(e) => fail("keygen", e),
    }
}

/// `dcnet group new`.
pub fn group_new(a: &GroupNewArgs) -> i32 {
    let members = a
        .members
        .iter()
        .map(|(name, key)| RosterEntry {
            name: name.clone(),
            key: *key,
        })
        .collect();
    let params = RoundParams {
        cells: a.cells.unwrap_or(0),
        slots: a.slots.unwrap_or(0),
        slot_bytes: a.slot_bytes,
        p_trap: a.p_trap,
        p_cover: a.p_cover,
        tolerance: a.tolerance.unwrap_or(crate::params::AUTO_TOLERANCE),
        commit_ms: a.deadline_ms,
        reveal_ms: a.deadline_ms,
        unblind_ms: a.deadline_ms,
        ..RoundParams::default()
    };
    let gf = match GroupFile::new(&a.name, &a.relay, a.relay_key, members, params) {
        Ok(g) => g,
        Err(e) => return fail("group new", e),
    };
    if let Err(e) = std::fs::write(&a.out, gf.to_toml()) {
        return fail("group new", format!("{}: {e}", a.out.display()));
    }
    println!(
        "group {:?} with {} members written to {} (group id {})",
        gf.group.name(),
        gf.group.size(),
        a.out.display(),
        hex::encode(gf.group.id())
    );
    0
}

/// `dcnet relay`.
pub fn relay(a: &RelayArgs) -> i32 {
    let res = (|| -> Result<(), String> {
        let gf = GroupFile::read(&a.group).map_err(|e| e.to_string())?;
        let key = config::read_key(&a.key).map_err(|e| e.to_string())?;
        if &key.public() != gf.group.relay_key() {
            return Err(format!(
                "{} is not the relay key named in {}",
                a.key.display(),
                a.group.display()
            ));
        }
        let listen = match &a.listen {
            Some(l) => l.parse().map_err(|e| format!("--listen {l}: {e}"))?,
            None => gf.relay_socket()?,
        };
        let rt = runtime()?;
        rt.block_on(async move {
            let group = Arc::new(gf.group.clone());
            let mut h = crate::net::relay::spawn(group, key, listen, vec![]).await?;
            println!(
                "relay listening on {} for group {}",
                h.local_addr,
                gf.group.name()
            );
            loop {
                tokio::select! {
                    e = h.events.recv() => match e {
                        Some(e) => print_relay_event(&e),
                        None => break,
                    },
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
            println!("relay shutting down");
            h.shutdown().await;
            Ok::<(), String>(())
        })
    })();
    match res {
        Ok(()) => 0,
        Err(e) => fail("relay", e),
    }
}

fn print_relay_event(e: &crate::protocol::RelayEvent) {
    use crate::protocol::RelayEvent as E;
    match e {
        E::EpochStarted { epoch, members } => println!("epoch {epoch}: members {members:?}"),
        E::Excluded {
            member,
            reason,
            round,
        } => {
            println!("member {member} excluded ({reason:?}) at round {round}")
        }
        E::Verdict { verdict, .. } => println!(
            "verdict in round {}: {:?} ({})",
            verdict.round,
            verdict.culprit,
            verdict.rule.name()
        ),
        E::Stalled { available } => println!("waiting: {available} member(s) available"),
        _ => {}
    }
}

/// `dcnet member`. Exit status: 0 when it left as asked (Ctrl-C, SIGTERM, or stdin ended and
/// every queued message is out), 1 on an error (a configuration the relay refuses, a relay that
/// broke the protocol, an unusable state or outbox file), 2 for bad command-line usage.
pub fn member(a: &MemberArgs) -> i32 {
    let res = (|| -> Result<(), String> {
        let gf = GroupFile::read(&a.group).map_err(|e| e.to_string())?;
        let key = config::read_key(&a.key).map_err(|e| e.to_string())?;
        let me = gf.index_of(&key.public()).ok_or_else(|| {
            format!(
                "the key in {} is not in the roster of {}",
                a.key.display(),
                a.group.display()
            )
        })?;
        let state = a
            .state
            .clone()
            .unwrap_or_else(|| a.key.with_extension("state"));
        let outbox = a
            .outbox
            .clone()
            .unwrap_or_else(|| state.with_extension("outbox"));
        let store = if a.new {
            FileStore::create_new(state)?
        } else {
            FileStore::open(state)?
        };
        let mut history = match &a.history {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("cannot open the history file {}: {e}", p.display()))?,
            ),
            None => None,
        };
        let relay_addr = gf.relay_socket()?;
        let json = a.json;
        let stay = a.stay;
        let rt = runtime()?;
        let res = rt.block_on(async move {
            let group = Arc::new(gf.group.clone());
            let relay_key = *gf.group.relay_key();
            let mut h = crate::net::member::spawn(
                group,
                relay_addr,
                relay_key,
                key,
                me,
                Box::new(store),
                config::os_random32(),
                crate::net::member::MemberOptions {
                    faults: vec![],
                    outbox: Some(outbox),
                },
            )
            .await?;
            let submit = h.submit.clone();
            let (eof_tx, mut eof_rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.is_empty() {
                        continue;
                    }
                    if submit.send(line.into_bytes()).await.is_err() {
                        break;
                    }
                }
                let _ = eof_tx.send(());
            });
            if !json {
                println!(
                    "member {me} of {}; type a line to send it anonymously",
                    gf.group.name()
                );
            }
            let mut term = terminate_signal()?;
            let mut fatal = None;
            let mut input_done = false;
            loop {
                tokio::select! {
                    n = h.notes.recv() => match n {
                        Some(n) => {
                            print_note(&n, json);
                            if let (Some(f), MemberNote::Event(MemberEvent::Delivered { round, slot, message })) = (history.as_mut(), &n) {
                                use std::io::Write;
                                let line = serde_json::json!({"round": round, "slot": slot,
                                    "text": String::from_utf8_lossy(message)});
                                if let Err(e) = writeln!(f, "{line}") {
                                    eprintln!("dcnet member: cannot append to the history file: {e}");
                                }
                            }
                            match n {
                                MemberNote::Fatal(e) => {
                                    fatal = Some(e);
                                    break;
                                }
                                MemberNote::Drained => break,
                                _ => {}
                            }
                        }
                        None => break,
                    },
                    r = &mut eof_rx, if !input_done => {
                        input_done = true;
                        if r.is_ok() && !stay {
                            h.drain();
                        }
                    }
                    _ = tokio::signal::ctrl_c() => break,
                    _ = term.recv() => break,
                }
            }
            // Ctrl-C or SIGTERM: close the connection (the relay is told) and end, bounded.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(1500), h.shutdown()).await;
            match fatal {
                Some(e) => Err(e),
                None => Ok::<(), String>(()),
            }
        });
        // The stdin reader may be blocked in a read: do not wait for it.
        rt.shutdown_background();
        res
    })();
    match res {
        Ok(()) => 0,
        Err(e) => fail("member", e),
    }
}

/// SIGTERM (where the platform has it).
struct Terminate(#[cfg(unix)] tokio::signal::unix::Signal);

impl Terminate {
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            self.0.recv().await;
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    }
}

fn terminate_signal() -> Result<Terminate, String> {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map(Terminate)
            .map_err(|e| format!("cannot listen for SIGTERM: {e}"))
    }
    #[cfg(not(unix))]
    Ok(Terminate())
}

fn print_note(n: &MemberNote, json: bool) {
    use serde_json::json;
    let (text, j) = match n {
        MemberNote::Connected => (
            "connected to the relay".to_string(),
            json!({"event": "connected"}),
        ),
        MemberNote::Disconnected(r) => (
            format!("relay unreachable ({r}); retrying"),
            json!({"event": "disconnected", "reason": r}),
        ),
        MemberNote::Queued { ticket, pending } => (
            format!("queued message #{ticket} ({pending} waiting or in flight)"),
            json!({"event": "queued", "ticket": ticket, "pending": pending}),
        ),
        MemberNote::Fatal(r) => (
            format!("stopped: {r}"),
            json!({"event": "fatal", "reason": r}),
        ),
        MemberNote::Refused(r) => (
            format!("not sent: {r}"),
            json!({"event": "refused", "reason": r}),
        ),
        MemberNote::Restored { tickets } => (
            format!(
                "{} message(s) from before the last stop are queued again and go out first",
                tickets.len()
            ),
            json!({"event": "restored", "tickets": tickets}),
        ),
        MemberNote::Draining { pending } => (
            format!(
                "input ended: leaving once the {pending} queued message(s) are out (Ctrl-C leaves now; they stay in the outbox)"
            ),
            json!({"event": "draining", "pending": pending}),
        ),
        MemberNote::Drained => (
            "every queued message is out; leaving".to_string(),
            json!({"event": "drained"}),
        ),
        MemberNote::Event(e) => match e {
            MemberEvent::Delivered {
                round,
                slot,
                message,
            } => {
                let t = String::from_utf8_lossy(message).into_owned();
                (
                    format!("[round {round}, slot {slot}] {t}"),
                    json!({"event": "delivered", "round": round, "slot": slot, "text": t}),
                )
            }
            MemberEvent::EpochStarted { epoch, members } => (
                format!("epoch {epoch}: {} members present", members.len()),
                json!({"event": "epoch", "epoch": epoch, "members": members}),
            ),
            MemberEvent::Sent {
                ticket,
                round,
                anonymity,
            } => (
                format!(
                    "message #{ticket} went out completely (round {round}); |A| = {anonymity} members were present for all of it"
                ),
                json!({"event": "sent", "ticket": ticket, "round": round, "anonymity": anonymity}),
            ),
            MemberEvent::HeldBack {
                ticket,
                round,
                reason,
                anonymity,
                floor,
            } => (
                format!(
                    "holding back message #{ticket} in round {round}: {reason} (|A| = {anonymity}, floor {floor}); it goes out when enough members are back"
                ),
                json!({"event": "held_back", "ticket": ticket, "round": round, "reason": reason,
                       "anonymity": anonymity, "floor": floor}),
            ),
            MemberEvent::Verdict { verdict, .. } => {
                let who = match verdict.culprit {
                    Some(Culprit::Member(i)) => json!(i),
                    Some(Culprit::Relay) => json!("relay"),
                    None => serde_json::Value::Null,
                };
                (
                    format!(
                        "verdict in round {}: {} ({}); unresponsive {:?}",
                        verdict.round,
                        who,
                        verdict.rule.name(),
                        verdict.unresponsive
                    ),
                    json!({"event": "verdict", "round": verdict.round, "culprit": who,
                           "rule": verdict.rule.name(), "unresponsive": verdict.unresponsive}),
                )
            }
            MemberEvent::Aborted { round, missing } => (
                format!("round {round} aborted; missing {missing:?}"),
                json!({"event": "aborted", "round": round, "missing": missing}),
            ),
            MemberEvent::Spliced { round, .. } => (
                format!(
                    "round {round}: a message's fragments do not match its digest (someone \
                     spliced in a fragment); it was not delivered"
                ),
                json!({"event": "spliced", "round": round}),
            ),
            MemberEvent::RelayFaulty { reason } => (
                format!("the relay broke the protocol: {reason}"),
                json!({"event": "relay_faulty", "reason": reason}),
            ),
            _ => return,
        },
    };
    if json {
        println!("{j}");
    } else {
        println!("{text}");
    }
}
