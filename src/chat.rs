//! Sealed private messages, anonymous replies and pseudonyms (docs/PROTOCOL.md §13).
//!
//! All three ride inside ordinary DC-net messages, so they inherit the sender anonymity of the
//! round and, from the content key (§8.2), the relay sees none of their bytes. This module
//! only builds and reads the message bytes; the [`crate::protocol::Member`] carries them, and
//! [`crate::protocol::Member::submit_linked`] keeps the anonymity set of messages a reader can
//! link (one pseudonym, one conversation) at or above the floor.
//!
//! - A **sealed message** goes to one roster member: an X25519 ephemeral key, then
//!   ChaCha20-Poly1305 under a key hashed from the Diffie–Hellman secret with the recipient's
//!   X25519 key (the birational image of its roster Ed25519 key). Nothing in it names the
//!   recipient: every member tries to open every sealed message ([`Mailbox::open`]). It names
//!   no sender either, and carries a fresh one-time **reply key**, so the recipient can answer
//!   ([`Mailbox::reply`]) without learning who wrote; only the writer can open the answer,
//!   which carries a reply key of its own, and so on: a two-way conversation that neither the
//!   relay nor the group can map.
//! - A **pseudonym post** ([`Nym::post`]) is signed with a fresh Ed25519 key that has nothing
//!   to do with the member's identity: readers see that two posts share an author, never who.
//!
//! Message bytes that do not start with [`MARKER`] (`0xFF`, never the first byte of UTF-8
//! text) are plain text, as before.

use crate::crypto::identity::{IdentityKey, PublicKey};
use crate::crypto::{Hash, ct_eq, hash, tags};
use crate::params::Group;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::MontgomeryPoint;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use zeroize::Zeroizing;

/// First byte of every message this module builds (never the first byte of UTF-8 text).
pub const MARKER: u8 = 0xFF;
/// Second byte of a sealed message (private message or reply; the two look alike).
pub const KIND_SEALED: u8 = 0x01;
/// Second byte of a pseudonym post.
pub const KIND_NYM: u8 = 0x02;
/// Length of the Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message adds to its text: marker, kind, ephemeral key, tag, and inside the
/// ciphertext the inner kind and the reply key.
pub const SEALED_OVERHEAD: usize = 2 + 32 + TAG_LEN + 1 + 32;
/// Bytes of a pseudonym post before its name and text.
pub const NYM_HEADER: usize = 2 + 32 + 64 + 8 + 1;
/// Longest pseudonym name, in bytes.
pub const MAX_NYM_NAME: usize = 32;
/// Reply keys a mailbox keeps (the oldest is erased first: an answer to it can no longer be
/// read). Each one costs an X25519 multiplication per sealed message delivered.
pub const MAX_REPLY_KEYS: usize = 64;
/// Received sealed messages a mailbox remembers for `/reply`.
pub const MAX_RECEIVED: usize = 1024;
/// Ephemeral keys remembered to drop a sealed message delivered twice.
pub const MAX_SEEN: usize = 4096;
/// Pseudonyms a [`NymBook`] tracks; past it, posts of pseudonyms it has not seen are refused
/// (never a forgotten one's replays shown: attack review 6, finding 3).
pub const MAX_NYMS: usize = 16384;

const INNER_DM: u8 = 1;
const INNER_REPLY: u8 = 2;

/// What a delivered message is, read without any key.
#[derive(Debug, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// Plain bytes (text typed by a member).
    Text(&'a [u8]),
    /// A sealed message: only its recipient can open it ([`Mailbox::open`]).
    Sealed {
        /// The sender's ephemeral X25519 key.
        eph: [u8; 32],
        /// ChaCha20-Poly1305 ciphertext and tag.
        body: &'a [u8],
    },
    /// A pseudonym post; its signature is not checked yet ([`NymBook::check`]).
    Nym(NymPost),
    /// A kind this version does not read (a newer peer).
    Unknown(u8),
    /// Starts with [`MARKER`] but does not parse; `.0` says what is wrong.
    Malformed(&'static str),
}

/// Reads a delivered message's framing (docs/PROTOCOL.md §13.1). Never panics.
pub fn parse(msg: &[u8]) -> Envelope<'_> {
    match msg {
        [MARKER, KIND_SEALED, rest @ ..] => {
            if rest.len() < 32 + TAG_LEN + 1 + 32 {
                return Envelope::Malformed("sealed message too short");
            }
            let (eph, body) = rest.split_at(32);
            let mut e = [0u8; 32];
            e.copy_from_slice(eph);
            Envelope::Sealed { eph: e, body }
        }
        [MARKER, KIND_NYM, ..] => match NymPost::decode(msg) {
            Ok(p) => Envelope::Nym(p),
            Err(e) => Envelope::Malformed(e),
        },
        [MARKER, kind, ..] => Envelope::Unknown(*kind),
        [MARKER] => Envelope::Malformed("message is the marker byte alone"),
        _ => Envelope::Text(msg),
    }
}

/// The X25519 shared secret, or `None` if it is all zero (a small-order key: RFC 7748 §6.1).
fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    let shared = Zeroizing::new(MontgomeryPoint(*public).mul_clamped(*secret).to_bytes());
    if ct_eq(&shared[..], &[0u8; 32]) {
        return None;
    }
    Some(shared)
}

fn sealed_cipher(
    group_id: &Hash,
    eph: &[u8; 32],
    to: &[u8; 32],
    shared: &[u8; 32],
) -> ChaCha20Poly1305 {
    let k = Zeroizing::new(hash(tags::SEALED_KEY, &[group_id, eph, to, shared]));
    ChaCha20Poly1305::new(&Key::from(*k))
}

fn sealed_aad(eph: &[u8; 32]) -> [u8; 34] {
    let mut aad = [0u8; 34];
    aad[0] = MARKER;
    aad[1] = KIND_SEALED;
    aad[2..].copy_from_slice(eph);
    aad
}

/// Seals `plaintext` to the X25519 key `to` with the ephemeral secret `eph_secret`
/// (docs/PROTOCOL.md §13.2): `0xFF ‖ 0x01 ‖ E ‖ ChaCha20-Poly1305(k, nonce 0, aad = 0xFF ‖ 0x01
/// ‖ E, plaintext)`, `k = H("dcnet/v1/sealed-key", group_id ‖ E ‖ to ‖ X25519(e, to))`.
/// `None` if `to` is of small order.
pub fn seal_to(
    group_id: &Hash,
    to: &[u8; 32],
    eph_secret: &[u8; 32],
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let eph = MontgomeryPoint::mul_base_clamped(*eph_secret).to_bytes();
    let shared = x25519(eph_secret, to)?;
    let ct = sealed_cipher(group_id, &eph, to, &shared)
        .encrypt(
            &Nonce::from([0u8; 12]),
            Payload {
                msg: plaintext,
                aad: &sealed_aad(&eph),
            },
        )
        .ok()?;
    let mut out = Vec::with_capacity(2 + 32 + ct.len());
    out.extend_from_slice(&[MARKER, KIND_SEALED]);
    out.extend_from_slice(&eph);
    out.extend_from_slice(&ct);
    Some(out)
}

/// Opens a sealed message with the X25519 key pair (`secret`, `public`); `None` if it was not
/// sealed to that key (or was altered).
pub fn open_with(
    group_id: &Hash,
    secret: &[u8; 32],
    public: &[u8; 32],
    eph: &[u8; 32],
    body: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let shared = x25519(secret, eph)?;
    sealed_cipher(group_id, eph, public, &shared)
        .decrypt(
            &Nonce::from([0u8; 12]),
            Payload {
                msg: body,
                aad: &sealed_aad(eph),
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// Why a private message, reply or pseudonym could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatError {
    /// No roster member has that index.
    #[error("no member {0} in the roster")]
    NoSuchMember(u32),
    /// A member cannot seal a message to itself.
    #[error("that is you: a private message goes to another member")]
    ToSelf,
    /// The recipient's roster key has no usable X25519 form.
    #[error("member {0}'s roster key cannot receive sealed messages")]
    UnusableKey(u32),
    /// No received private message has that number.
    #[error("no private message #{0} to answer (numbers are shown as [dm N])")]
    NoSuchMessage(u32),
    /// Its one-time reply key was used already.
    #[error(
        "private message #{0} was answered already: each carries a one-time reply key; answer their latest message instead"
    )]
    AlreadyAnswered(u32),
    /// A pseudonym name that is empty, too long, or has control characters.
    #[error(
        "a pseudonym name is 1 to {MAX_NYM_NAME} bytes of text without spaces or control characters"
    )]
    BadName,
}

/// Who a conversation is with, as far as this member can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correspondent {
    /// We wrote first, to this roster member: only it can hold our reply keys.
    Member(u32),
    /// They wrote to us first: we cannot tell who they are.
    Anonymous,
}

/// A sealed message ready to submit.
#[derive(Debug)]
pub struct Sealed {
    /// The message bytes.
    pub message: Vec<u8>,
    /// Submit with [`crate::protocol::Member::submit_linked`] under this link when present:
    /// we are the anonymous side of the conversation, and the other side can link every
    /// message we send in it.
    pub link: Option<[u8; 32]>,
    /// The local conversation number.
    pub thread: u32,
}

/// A sealed message this member opened.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    /// Local number, for [`Mailbox::reply`] (the CLI shows it as `[dm N]`).
    pub number: u32,
    /// The local conversation number.
    pub thread: u32,
    /// Who wrote it, as far as we can tell.
    pub from: Correspondent,
    /// It answers one of ours.
    pub is_reply: bool,
    /// The text.
    pub text: Vec<u8>,
}

/// Where a message belongs: its conversation number, who it is with, and the link our side of
/// it goes out under. Carried by every reply key and every received message itself (never
/// looked up in a table others could make us evict: attack review 6, finding 1, where a flood
/// of private messages pushed a conversation out and our answers went out unlinked).
#[derive(Clone, Copy)]
struct Conversation {
    thread: u32,
    with: Correspondent,
    link: Option<[u8; 32]>,
}

struct ReplyKey {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
    conv: Conversation,
}

struct Received {
    reply_to: [u8; 32],
    conv: Conversation,
    answered: bool,
    /// It answers one of ours (opened with a reply key), rather than starting a conversation.
    is_reply: bool,
}

/// One member's private messages: the X25519 half of its identity, its outstanding one-time
/// reply keys, and what it received (docs/PROTOCOL.md §13.2). Reply keys live in memory only:
/// an answer that arrives after a restart cannot be read (nothing on disk opens it later).
pub struct Mailbox {
    group_id: Hash,
    me: u32,
    roster: Vec<PublicKey>,
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
    reply_keys: VecDeque<ReplyKey>,
    received: BTreeMap<u32, Received>,
    seen: VecDeque<[u8; 32]>,
    seen_set: BTreeSet<[u8; 32]>,
    next_thread: u32,
    next_number: u32,
    rng: ChaCha20Rng,
}

impl Mailbox {
    /// A mailbox for roster member `me` holding `key`; `seed` seeds its ephemeral and reply
    /// keys (draw it from the OS).
    pub fn new(group: &Group, me: u32, key: &IdentityKey, seed: [u8; 32]) -> Mailbox {
        let secret = key.x25519_secret();
        let public = MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
        Mailbox {
            group_id: *group.id(),
            me,
            roster: group.members().iter().map(|m| m.key).collect(),
            secret,
            public,
            reply_keys: VecDeque::new(),
            received: BTreeMap::new(),
            seen: VecDeque::new(),
            seen_set: BTreeSet::new(),
            next_thread: 1,
            next_number: 1,
            rng: ChaCha20Rng::from_seed(seed),
        }
    }

    fn fresh(&mut self) -> Zeroizing<[u8; 32]> {
        let mut k = Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(&mut k[..]);
        k
    }

    /// A new one-time reply key for `conv`, and the inner plaintext that carries it.
    fn inner(&mut self, kind: u8, conv: Conversation, text: &[u8]) -> Zeroizing<Vec<u8>> {
        let secret = self.fresh();
        let public = MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
        if self.reply_keys.len() >= MAX_REPLY_KEYS {
            self.reply_keys.pop_front();
        }
        self.reply_keys.push_back(ReplyKey {
            secret,
            public,
            conv,
        });
        let mut pt = Zeroizing::new(Vec::with_capacity(1 + 32 + text.len()));
        pt.push(kind);
        pt.extend_from_slice(&public);
        pt.extend_from_slice(text);
        pt
    }

    fn seal(&mut self, to: &[u8; 32], pt: &[u8]) -> Option<Vec<u8>> {
        let eph = self.fresh();
        seal_to(&self.group_id, to, &eph, pt)
    }

    fn new_thread(&mut self, with: Correspondent, link: Option<[u8; 32]>) -> Conversation {
        let thread = self.next_thread;
        self.next_thread = self.next_thread.wrapping_add(1).max(1);
        Conversation { thread, with, link }
    }

    /// Seals `text` to roster member `to`: only `to` can read it, nothing in it names `to` or
    /// us, and it carries a one-time reply key so `to` can answer without learning who wrote.
    pub fn dm(&mut self, to: u32, text: &[u8]) -> Result<Sealed, ChatError> {
        if to == self.me {
            return Err(ChatError::ToSelf);
        }
        let key = self
            .roster
            .get(to as usize)
            .ok_or(ChatError::NoSuchMember(to))?;
        let x = key.x25519().ok_or(ChatError::UnusableKey(to))?;
        let mut link = [0u8; 32];
        self.rng.fill_bytes(&mut link);
        let conv = self.new_thread(Correspondent::Member(to), Some(link));
        let pt = self.inner(INNER_DM, conv, text);
        let message = self.seal(&x, &pt).ok_or(ChatError::UnusableKey(to))?;
        Ok(Sealed {
            message,
            link: Some(link),
            thread: conv.thread,
        })
    }

    /// Answers received message `number` with `text`, sealed to its one-time reply key (only
    /// its writer can open it); the answer carries a reply key of its own.
    pub fn reply(&mut self, number: u32, text: &[u8]) -> Result<Sealed, ChatError> {
        let r = self
            .received
            .get(&number)
            .ok_or(ChatError::NoSuchMessage(number))?;
        if r.answered {
            return Err(ChatError::AlreadyAnswered(number));
        }
        let (to, conv) = (r.reply_to, r.conv);
        let pt = self.inner(INNER_REPLY, conv, text);
        let message = self
            .seal(&to, &pt)
            .ok_or(ChatError::NoSuchMessage(number))?;
        if let Some(r) = self.received.get_mut(&number) {
            r.answered = true;
        }
        Ok(Sealed {
            message,
            link: conv.link,
            thread: conv.thread,
        })
    }

    /// The answer to received message `number` was not sent after all (the member refused it:
    /// too long, queue full): allow another. Its reply key stays until evicted.
    pub fn unanswer(&mut self, number: u32) {
        if let Some(r) = self.received.get_mut(&number) {
            r.answered = false;
        }
    }

    /// Tries to open a delivered message. `None` for anything that is not a sealed message
    /// for us: another member's, a replay of one we opened, or altered bytes. Costs one
    /// X25519 multiplication per key tried (our identity, then each outstanding reply key).
    pub fn open(&mut self, message: &[u8]) -> Option<Opened> {
        let Envelope::Sealed { eph, body } = parse(message) else {
            return None;
        };
        if self.seen_set.contains(&eph) {
            return None;
        }
        let (pt, conv, is_reply) =
            if let Some(pt) = open_with(&self.group_id, &self.secret, &self.public, &eph, body) {
                if pt.first() != Some(&INNER_DM) {
                    return None;
                }
                (pt, self.new_thread(Correspondent::Anonymous, None), false)
            } else {
                let (i, pt) = self.reply_keys.iter().enumerate().find_map(|(i, k)| {
                    open_with(&self.group_id, &k.secret, &k.public, &eph, body).map(|pt| (i, pt))
                })?;
                let k = self.reply_keys.remove(i)?;
                if pt.first() != Some(&INNER_REPLY) {
                    return None;
                }
                (pt, k.conv, true)
            };
        if pt.len() < 33 {
            return None;
        }
        if self.seen.len() >= MAX_SEEN {
            if let Some(old) = self.seen.pop_front() {
                self.seen_set.remove(&old);
            }
        }
        self.seen.push_back(eph);
        self.seen_set.insert(eph);
        let mut reply_to = [0u8; 32];
        reply_to.copy_from_slice(&pt[1..33]);
        let number = self.next_number;
        self.next_number = self.next_number.wrapping_add(1).max(1);
        if self.received.len() >= MAX_RECEIVED {
            // Others can send us any number of new private messages: forget the oldest of
            // those first, and an answer in a conversation we started only when nothing else
            // is left to forget.
            let oldest_new = self
                .received
                .iter()
                .find(|(_, r)| !r.is_reply)
                .map(|(n, _)| *n);
            match oldest_new {
                Some(n) => {
                    self.received.remove(&n);
                }
                None => {
                    self.received.pop_first();
                }
            }
        }
        self.received.insert(
            number,
            Received {
                reply_to,
                conv,
                answered: false,
                is_reply,
            },
        );
        Some(Opened {
            number,
            thread: conv.thread,
            from: conv.with,
            is_reply,
            text: pt[33..].to_vec(),
        })
    }

    /// Reply keys outstanding (each is erased once an answer opens with it).
    pub fn reply_keys(&self) -> usize {
        self.reply_keys.len()
    }
}

/// A pseudonym post as read off the wire (its signature unchecked until [`NymBook::check`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NymPost {
    /// The pseudonym's Ed25519 key (fresh, unrelated to any roster key).
    pub key: PublicKey,
    /// Its signature over [`nym_digest`].
    pub sig: [u8; 64],
    /// The pseudonym's post counter (strictly increasing).
    pub seq: u64,
    /// The name the pseudonym goes by.
    pub name: String,
    /// The text.
    pub text: Vec<u8>,
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NYM_NAME
        && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// What a pseudonym signs: `H("dcnet/v1/nym-post", group_id ‖ key ‖ u64le(seq) ‖ name ‖ text)`.
pub fn nym_digest(group_id: &Hash, key: &PublicKey, seq: u64, name: &str, text: &[u8]) -> Hash {
    hash(
        tags::NYM_POST,
        &[group_id, &key.0, &seq.to_le_bytes(), name.as_bytes(), text],
    )
}

/// A fingerprint of a pseudonym key, to tell apart two pseudonyms with one name: 8 bytes, so
/// that grinding a key to match one takes about 2⁶⁴ tries (4 bytes took 2³²: attack review 6).
pub fn fingerprint(key: &PublicKey) -> String {
    hex::encode(&key.0[..8])
}

impl NymPost {
    /// `0xFF ‖ 0x02 ‖ key ‖ sig ‖ u64le(seq) ‖ u8(len name) ‖ name ‖ text`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(NYM_HEADER + self.name.len() + self.text.len());
        out.extend_from_slice(&[MARKER, KIND_NYM]);
        out.extend_from_slice(&self.key.0);
        out.extend_from_slice(&self.sig);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.text);
        out
    }

    fn decode(msg: &[u8]) -> Result<NymPost, &'static str> {
        if msg.len() < NYM_HEADER {
            return Err("pseudonym post too short");
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&msg[2..34]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&msg[34..98]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&msg[98..106]);
        let n = msg[106] as usize;
        let rest = &msg[NYM_HEADER..];
        if n > rest.len() {
            return Err("pseudonym name runs past the message");
        }
        let name = std::str::from_utf8(&rest[..n]).map_err(|_| "pseudonym name is not UTF-8")?;
        if !name_ok(name) {
            return Err("pseudonym name is empty, too long, or has spaces or control characters");
        }
        Ok(NymPost {
            key: PublicKey(key),
            sig,
            seq: u64::from_le_bytes(seq),
            name: name.to_string(),
            text: rest[n..].to_vec(),
        })
    }

    /// The signature verifies under the post's own key, for this group.
    pub fn verifies(&self, group_id: &Hash) -> bool {
        let d = nym_digest(group_id, &self.key, self.seq, &self.name, &self.text);
        self.key.verify(&d, &self.sig)
    }
}

/// A pseudonym: a fresh Ed25519 key and a name (docs/PROTOCOL.md §13.3). Its messages go out
/// with [`crate::protocol::Member::submit_linked`] under [`Nym::link`], so that the set of
/// members who could be it — the intersection of the present sets of every round it posted
/// in — never falls below the floor.
pub struct Nym {
    key: IdentityKey,
    name: String,
    seq: u64,
}

impl Nym {
    /// A new pseudonym called `name`, its key from `seed` (draw it from the OS).
    pub fn new(name: &str, seed: [u8; 32]) -> Result<Nym, ChatError> {
        if !name_ok(name) {
            return Err(ChatError::BadName);
        }
        Ok(Nym {
            key: IdentityKey::from_secret_bytes(&seed),
            name: name.to_string(),
            seq: 0,
        })
    }

    /// The pseudonym's public key.
    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The link its posts are submitted under (its public key).
    pub fn link(&self) -> [u8; 32] {
        self.key.public().0
    }

    /// Signs `text` as the next post of this pseudonym.
    pub fn post(&mut self, group_id: &Hash, text: &[u8]) -> Vec<u8> {
        let key = self.key.public();
        let seq = self.seq;
        self.seq = self.seq.saturating_add(1);
        let sig = self
            .key
            .sign(&nym_digest(group_id, &key, seq, &self.name, text));
        NymPost {
            key,
            sig,
            seq,
            name: self.name.clone(),
            text: text.to_vec(),
        }
        .encode()
    }
}

/// Why a reader did not show a pseudonym post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NymRefusal {
    /// The signature does not verify under the post's key for this group.
    #[error("its signature does not verify")]
    BadSignature,
    /// A post of this pseudonym with this or a later counter was shown already.
    #[error("it repeats an earlier post of that pseudonym")]
    Replayed,
    /// [`MAX_NYMS`] pseudonyms are known already and this is a new one.
    #[error(
        "this member has seen {MAX_NYMS} pseudonyms already and shows no new ones until it restarts"
    )]
    TooMany,
}

/// What a reader knows of pseudonyms: the last counter seen per key, so a replayed post is
/// not shown twice. Bounded at [`MAX_NYMS`] keys, none ever forgotten (a forgotten key's old
/// posts could be replayed as new); in memory only, so a reader that restarts can be shown an
/// old post again (docs/SECURITY.md).
#[derive(Default)]
pub struct NymBook {
    last: BTreeMap<[u8; 32], u64>,
}

impl NymBook {
    /// Checks a post for this group: signature first, then the counter.
    pub fn check(&mut self, group_id: &Hash, post: &NymPost) -> Result<(), NymRefusal> {
        if !post.verifies(group_id) {
            return Err(NymRefusal::BadSignature);
        }
        match self.last.get(&post.key.0) {
            Some(seq) if post.seq <= *seq => return Err(NymRefusal::Replayed),
            None if self.last.len() >= MAX_NYMS => return Err(NymRefusal::TooMany),
            _ => {}
        }
        self.last.insert(post.key.0, post.seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::RoundParams;

    fn group(n: u8) -> (Group, Vec<IdentityKey>) {
        let tg = crate::sim::TestGroup::new(n as usize, RoundParams::default(), 1).unwrap();
        ((*tg.group).clone(), tg.member_keys)
    }

    #[test]
    fn a_dm_opens_for_its_recipient_only_and_the_reply_for_its_writer_only() {
        let (g, keys) = group(4);
        let mut boxes: Vec<Mailbox> = (0..4)
            .map(|i| Mailbox::new(&g, i as u32, &keys[i], [i as u8 + 40; 32]))
            .collect();
        let dm = boxes[0].dm(2, b"hello two").unwrap();
        assert!(dm.link.is_some());
        for (i, b) in boxes.iter_mut().enumerate() {
            let got = b.open(&dm.message);
            if i == 2 {
                let o = got.unwrap();
                assert_eq!(o.text, b"hello two");
                assert_eq!(o.from, Correspondent::Anonymous);
                assert!(!o.is_reply);
            } else {
                assert_eq!(got, None, "member {i} opened a DM for member 2");
            }
        }
        // Delivered again (a replay): not shown twice.
        assert_eq!(boxes[2].open(&dm.message), None);
        let reply = boxes[2].reply(1, b"who are you?").unwrap();
        assert_eq!(reply.link, None);
        assert_eq!(
            boxes[2].reply(1, b"again").unwrap_err(),
            ChatError::AlreadyAnswered(1)
        );
        for (i, b) in boxes.iter_mut().enumerate() {
            let got = b.open(&reply.message);
            if i == 0 {
                let o = got.unwrap();
                assert_eq!(o.text, b"who are you?");
                assert_eq!(o.from, Correspondent::Member(2));
                assert!(o.is_reply);
            } else {
                assert_eq!(got, None, "member {i} opened a reply meant for member 0");
            }
        }
        // Member 0 answers in the same conversation, under the same link.
        let again = boxes[0].reply(1, b"a friend").unwrap();
        assert_eq!(again.link, dm.link);
        let o = boxes[2].open(&again.message).unwrap();
        assert_eq!((o.from, o.is_reply), (Correspondent::Anonymous, true));
        assert_eq!(o.thread, 1);
        // The reply key was one-time: the same bytes do not open twice.
        assert_eq!(boxes[0].open(&reply.message), None);
    }

    /// Attack review 6, finding 1: a flood of private messages to the anonymous writer does not
    /// strip the link from its answers, nor the name from its correspondent's answers.
    #[test]
    fn a_flood_of_private_messages_keeps_a_conversations_link_and_name() {
        let (g, keys) = group(3);
        let mut a = Mailbox::new(&g, 0, &keys[0], [1; 32]);
        let mut b = Mailbox::new(&g, 1, &keys[1], [2; 32]);
        let mut flood = Mailbox::new(&g, 2, &keys[2], [3; 32]);
        let dm = a.dm(1, b"hello").unwrap();
        let o = b.open(&dm.message).unwrap();
        let answer = b.reply(o.number, b"hi, who?").unwrap();
        for k in 0..(MAX_RECEIVED + 10) {
            let f = flood.dm(0, format!("flood {k}").as_bytes()).unwrap();
            assert!(a.open(&f.message).is_some());
        }
        let got = a.open(&answer.message).unwrap();
        assert_eq!(got.from, Correspondent::Member(1));
        let again = a.reply(got.number, b"a friend").unwrap();
        assert_eq!(again.link, dm.link, "the writer's answer lost its link");
        let o = b.open(&again.message).unwrap();
        for k in 0..(MAX_RECEIVED + 10) {
            let f = flood.dm(0, format!("more {k}").as_bytes()).unwrap();
            let _ = a.open(&f.message);
        }
        let last = b.reply(o.number, b"ok").unwrap();
        assert_eq!(
            a.open(&last.message).unwrap().from,
            Correspondent::Member(1)
        );
    }

    #[test]
    fn sealed_messages_refuse_tampering_self_and_small_order_keys() {
        let (g, keys) = group(3);
        let mut a = Mailbox::new(&g, 0, &keys[0], [1; 32]);
        let mut b = Mailbox::new(&g, 1, &keys[1], [2; 32]);
        assert_eq!(a.dm(0, b"me").unwrap_err(), ChatError::ToSelf);
        assert_eq!(a.dm(7, b"x").unwrap_err(), ChatError::NoSuchMember(7));
        let dm = a.dm(1, b"intact").unwrap();
        for i in 2..dm.message.len() {
            let mut bad = dm.message.clone();
            bad[i] ^= 0x01;
            assert_eq!(b.open(&bad), None, "byte {i} altered and still opened");
        }
        assert!(b.open(&dm.message).is_some());
        // The identity point and other small-order u give an all-zero secret: refused.
        assert_eq!(seal_to(g.id(), &[0u8; 32], &[5; 32], b"x"), None);
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(seal_to(g.id(), &one, &[5; 32], b"x"), None);
        // A sealed message for another group does not open.
        let (g2, _) = group(3);
        let other = Group::new(
            "other",
            g2.members().to_vec(),
            *g2.relay_key(),
            RoundParams::default(),
        )
        .unwrap();
        let mut b2 = Mailbox::new(&other, 1, &keys[1], [3; 32]);
        let dm = a.dm(1, b"for group t").unwrap();
        assert_eq!(b2.open(&dm.message), None);
    }

    #[test]
    fn parse_never_panics_and_keeps_text_apart() {
        assert_eq!(parse(b"hello"), Envelope::Text(b"hello"));
        assert_eq!(parse(b""), Envelope::Text(b""));
        assert!(matches!(parse(&[MARKER]), Envelope::Malformed(_)));
        assert_eq!(parse(&[MARKER, 9, 1]), Envelope::Unknown(9));
        for n in 0..200 {
            let mut m = vec![MARKER, KIND_SEALED];
            m.extend(std::iter::repeat_n(7u8, n));
            let _ = parse(&m);
            m[1] = KIND_NYM;
            let _ = parse(&m);
        }
        // UTF-8 text never starts with the marker.
        assert!(std::str::from_utf8(&[MARKER]).is_err());
    }

    #[test]
    fn nym_posts_verify_link_and_do_not_replay() {
        let (g, keys) = group(3);
        let mut nym = Nym::new("owl", [77; 32]).unwrap();
        assert!(Nym::new("", [1; 32]).is_err());
        assert!(Nym::new("two words", [1; 32]).is_err());
        assert!(Nym::new(&"x".repeat(33), [1; 32]).is_err());
        let p1 = nym.post(g.id(), b"first");
        let p2 = nym.post(g.id(), b"second");
        let (Envelope::Nym(a), Envelope::Nym(b)) = (parse(&p1), parse(&p2)) else {
            panic!("not nym posts");
        };
        assert_eq!(a.key, b.key);
        assert_eq!((a.seq, b.seq), (0, 1));
        assert!(keys.iter().all(|k| k.public() != a.key));
        let mut book = NymBook::default();
        assert_eq!(book.check(g.id(), &a), Ok(()));
        assert_eq!(book.check(g.id(), &b), Ok(()));
        assert_eq!(book.check(g.id(), &a), Err(NymRefusal::Replayed));
        let mut forged = b.clone();
        forged.text = b"edited".to_vec();
        forged.seq = 5;
        assert_eq!(book.check(g.id(), &forged), Err(NymRefusal::BadSignature));
        // Under another group's id the signature does not verify.
        let mut other = *g.id();
        other[0] ^= 1;
        assert!(!b.verifies(&other));
    }
}
