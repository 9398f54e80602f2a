//! Wire format: signed, typed messages in bincode 2 with a size limit on every decode.
//!
//! Every message is a [`Signed`] envelope: a [`Header`] (group, epoch, round, sender, kind), a
//! typed body, and an Ed25519 signature over
//! `H("dcnet/v1/signature"; bincode(header), bincode(body))`. The header's `kind` must match the
//! body, so a signature for one type, round, epoch or group is useless for any other
//! (docs/PROTOCOL.md §4).
//!
//! bincode configuration: `bincode::config::standard()` (little-endian, variable-length
//! integers) with a limit of [`MAX_FRAME`] bytes; a frame must be consumed exactly.

use crate::crypto::dleq::DleqProof;
use crate::crypto::identity::{IdentityKey, PublicKey};
use crate::crypto::keys::EpochPublic;
use crate::crypto::merkle::ChunkProof;
use crate::crypto::{Hash, hash, tags};
use bincode::{Decode, Encode};
use std::sync::Arc;

/// The protocol version this code speaks (docs/PROTOCOL.md, "Version"): in every domain tag
/// (`dcnet/v1/…`), the ALPN (`dcnet/1`), the group file (`protocol = 1`) and the Hello.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame accepted from the network, in bytes.
pub const MAX_FRAME: usize = 16 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes a value with the wire configuration. Encoding our own types cannot fail short of
/// exceeding [`MAX_FRAME`], which parameter validation rules out.
pub fn encode<T: Encode>(v: &T) -> Vec<u8> {
    bincode::encode_to_vec(v, config()).unwrap_or_default()
}

/// Why bytes from the network were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum WireError {
    /// The frame is larger than allowed.
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// bincode refused the bytes.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Bytes left over after the message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    /// The bytes decode, but are not the canonical encoding of what they decode to (a varint
    /// in a longer form than needed).
    #[error("not the canonical encoding (a varint longer than needed)")]
    NonCanonical,
    /// Header kind and body type disagree.
    #[error("header kind does not match the body")]
    KindMismatch,
}

/// Kinds that travel unsigned (all-zero signature): see [`Signed::unsigned`]. The relay refuses
/// them with any other signature bytes.
pub const UNSIGNED_KINDS: [Kind; 2] = [Kind::Reveal, Kind::Unblind];

/// Decodes exactly one value from `bytes`, refusing oversize input, trailing bytes and any
/// encoding that is not the canonical one (bincode accepts a varint in a longer form than
/// needed; signatures and digests are over the canonical encoding, so a frame is accepted only
/// if it *is* that encoding: every implementation then accepts the same frames).
pub fn decode<T: Decode<()> + Encode>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_FRAME {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let (v, used) = bincode::decode_from_slice(bytes, config())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(WireError::Trailing(bytes.len() - used));
    }
    if encode(&v) != bytes {
        return Err(WireError::NonCanonical);
    }
    Ok(v)
}

/// Who signed a message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Encode, Decode)]
pub enum Sender {
    /// The relay.
    Relay,
    /// The member with this roster index.
    Member(u32),
}

/// Message types. Part of every signed header.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
#[repr(u8)]
pub enum Kind {
    /// Relay → members: start an epoch, send your epoch key.
    EpochRequest = 1,
    /// Member → relay: my epoch key.
    EpochKey = 2,
    /// Relay → members: every epoch key of the epoch.
    EpochKeys = 3,
    /// Relay → members: open an attempt.
    Open = 4,
    /// Member → relay: commitment to ciphertext and blinding seed.
    Commit = 5,
    /// Relay → members: all commitments.
    CommitSet = 6,
    /// Member → relay: the ciphertext.
    Reveal = 7,
    /// Relay → members: the XOR of all ciphertexts.
    Record = 8,
    /// Member → relay: the blinding seed.
    Unblind = 9,
    /// Relay → members: all blinding seeds (or who withheld one).
    ZSet = 10,
    /// Relay → members: the attempt failed; who was missing.
    Abort = 11,
    /// Member → relay: my trap slot was hit.
    Accuse = 12,
    /// Relay → members: disclose at these positions.
    BlameStart = 13,
    /// Member → relay: pad, chunk and proof at the blamed positions.
    Disclose = 14,
    /// Relay → members: all disclosures.
    DisclosureSet = 15,
    /// Member → relay: a disputed pair's Diffie–Hellman value with its DLEQ proof.
    KeyReveal = 16,
    /// Relay → members: all key reveals.
    RevealSet = 17,
    /// Relay → members: evidence of a conviction found outside disclosure (equivocation).
    Evidence = 18,
    /// Member → relay, first frame on every connection: where the member stands.
    Hello = 19,
}

/// The signed header of every message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Header {
    /// `group_id` of the group.
    pub group_id: Hash,
    /// Epoch number.
    pub epoch: u64,
    /// Round (0 for epoch-level messages).
    pub round: u64,
    /// Signer.
    pub sender: Sender,
    /// Message type; must match the body.
    pub kind: Kind,
}

/// A typed body; `KIND` ties it to its header.
pub trait Payload: Encode + Decode<()> + Clone {
    /// The kind this body travels under.
    const KIND: Kind;
}

/// A signed message with a typed body.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Signed<T> {
    /// Header (signed).
    pub header: Header,
    /// Body (signed).
    pub body: T,
    /// Ed25519 signature.
    pub sig: [u8; 64],
}

fn signing_digest<T: Encode>(header: &Header, body: &T) -> Hash {
    hash(tags::SIGNATURE, &[&encode(header), &encode(body)])
}

impl<T: Payload> Signed<T> {
    /// Signs `body` under a header of kind `T::KIND`.
    pub fn sign(
        key: &IdentityKey,
        group_id: Hash,
        epoch: u64,
        round: u64,
        sender: Sender,
        body: T,
    ) -> Self {
        let header = Header {
            group_id,
            epoch,
            round,
            sender,
            kind: T::KIND,
        };
        let sig = key.sign(&signing_digest(&header, &body));
        Signed { header, body, sig }
    }

    /// A message that travels without a signature (all-zero `sig`): Reveal and Unblind,
    /// which nobody needs to verify — a Reveal is authenticated by its Merkle root in the
    /// signed Commit, an Unblind's seed by `H(z)` in it (docs/PROTOCOL.md §2.10).
    pub fn unsigned(group_id: Hash, epoch: u64, round: u64, sender: Sender, body: T) -> Self {
        let header = Header {
            group_id,
            epoch,
            round,
            sender,
            kind: T::KIND,
        };
        Signed {
            header,
            body,
            sig: [0; 64],
        }
    }

    /// Checks kind and signature against `key`.
    pub fn verify(&self, key: &PublicKey) -> bool {
        self.header.kind == T::KIND
            && key.verify(&signing_digest(&self.header, &self.body), &self.sig)
    }

    /// `H("dcnet/v1/message"; bincode(self))`: how Opens, CommitSets and Records are named.
    pub fn digest(&self) -> Hash {
        hash(tags::MESSAGE, &[&encode(self)])
    }

    /// Wraps into a top-level frame.
    pub fn into_frame(self) -> Vec<u8>
    where
        Body: From<T>,
    {
        encode(&Signed {
            header: self.header,
            body: Body::from(self.body),
            sig: self.sig,
        })
    }
}

/// Start of an epoch.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct EpochRequest {
    /// Members asked to take part (sorted).
    pub members: Vec<u32>,
    /// Digest of the message that concluded the last blame case of the epoch that ends, if
    /// any (members that saw that case refuse a request naming another: docs/PROTOCOL.md §11.7).
    pub last_case: Option<Hash>,
}
/// A member's epoch key.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct EpochKey {
    /// `E_i = e_i·B`.
    pub key: EpochPublic,
}
/// Every epoch key of the epoch, each signed by its member.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct EpochKeys {
    /// Signed keys, sorted by member index.
    pub keys: Vec<Signed<EpochKey>>,
}
/// The relay opens an attempt.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Open {
    /// View of the last completed attempt (the chain head members must hold).
    pub view_prev: Hash,
    /// Present set P (sorted, no duplicates).
    pub present: Vec<u32>,
    /// Last completed round and the digest of its Record.
    pub last: Option<(u64, Hash)>,
    /// The round whose cells allocate this attempt's slots, with its Record digest.
    pub alloc: Option<(u64, Hash)>,
    /// Cells whose slots are void in this attempt (checked cells).
    pub voids: Vec<u32>,
    /// The relay's commit deadline for this attempt, in ms after the Open (informational).
    pub commit_ms: u64,
    /// Digest of the message that concluded the blame case of round `last`, if there was one:
    /// every member that saw the case must have seen this very message (docs/PROTOCOL.md §11.7).
    pub last_case: Option<Hash>,
}
/// A member's commitment.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Commit {
    /// Digest of the Open this commitment binds.
    pub open: Hash,
    /// Merkle root of the ciphertext.
    pub ciphertext: Hash,
    /// `H("dcnet/v1/blind-commit"; z)`.
    pub blinding: Hash,
    /// The epoch's content key, sealed to every other member of P: only from the attempt's
    /// keyholder, and only while the epoch has no content key (docs/PROTOCOL.md §8.2).
    pub content: Option<ContentSeal>,
}
/// The epoch's content key `K_c`, sealed pairwise by the keyholder.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct ContentSeal {
    /// `kc_id = H("dcnet/v1/content-id"; group_id, u64le epoch, K_c)`.
    pub id: Hash,
    /// `(j, K_c ⊕ seal_mask_j)` for every other member j of P, ascending.
    pub seals: Vec<(u32, [u8; 32])>,
}
/// All commitments of an attempt.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct CommitSet {
    /// Digest of the relay's Open.
    pub open: Hash,
    /// One signed commitment per member of P, sorted by index.
    pub commits: Vec<Signed<Commit>>,
}
/// A member's ciphertext.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Reveal {
    /// `c_i`, exactly L bytes.
    pub ciphertext: Vec<u8>,
}
/// The relay's record of an attempt.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Record {
    /// The CommitSet.
    pub commit_set: Signed<CommitSet>,
    /// Every distinct Open the commitments bind.
    pub opens: Vec<Signed<Open>>,
    /// `⨁ c_i`.
    pub xor: Vec<u8>,
}
/// A member's blinding seed.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Unblind {
    /// `z_i`.
    pub z: [u8; 32],
}
/// All blinding seeds, or who withheld one.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct ZSet {
    /// Digest of the Record.
    pub record: Hash,
    /// `(member, z)` sorted by member.
    pub seeds: Vec<(u32, [u8; 32])>,
    /// Members whose seed is missing (relay-signed claim; they are excluded).
    pub missing: Vec<u32>,
}
/// An attempt failed.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Abort {
    /// Members that missed the deadline.
    pub missing: Vec<u32>,
    /// Phase that failed: 0 commit, 1 reveal.
    pub phase: u8,
}

/// A trap owner's accusation: "my trap in `slot` of the round whose Record is `record` was hit".
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Accuse {
    /// Digest of the Record of the damaged round.
    pub record: Hash,
    /// The damaged slot.
    pub slot: u32,
    /// Round whose cells allocated the slot.
    pub alloc_round: u64,
    /// The cell the accuser won.
    pub cell: u32,
    /// `Γ` of the accuser for `alloc_round`.
    pub gamma: [u8; 32],
    /// DLEQ proof of `Γ` against the accuser's epoch key.
    pub proof: DleqProof,
    /// The slot key of the accused slot (docs/PROTOCOL.md §2.12): with `gamma` it gives the
    /// trap's bytes as they appear in the output, and nothing else of the epoch's content.
    pub slot_key: [u8; 32],
}
/// The relay opens a disclosure.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct BlameStart {
    /// Digest of the Record of the damaged round.
    pub record: Hash,
    /// The accusation, if a trap owner accused.
    pub accusation: Option<Signed<Accuse>>,
    /// Byte positions to disclose (ascending, no duplicates; at most
    /// [`crate::protocol::blame::MAX_POSITIONS`]). Members recompute them and disclose only if
    /// they agree.
    pub positions: Vec<u64>,
}
/// One member's disclosure at one position.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct DisclosedByte {
    /// The position.
    pub position: u64,
    /// `(j, pad_ij[position])` for every other member of P, by index.
    pub pads: Vec<(u32, u8)>,
    /// The ciphertext chunk holding the position.
    pub chunk: Vec<u8>,
    /// Its Merkle proof against the committed root.
    pub proof: ChunkProof,
}
/// A member's claim, in a cell check, that it wrote its footprint into `cell`.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct CellClaim {
    /// The cell the member reserved.
    pub cell: u32,
    /// `Γ` of the member for the blamed round.
    pub gamma: [u8; 32],
    /// DLEQ proof of `Γ` against the member's epoch key.
    pub proof: DleqProof,
}
/// A member's signed disclosure.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Disclose {
    /// Digest of the BlameStart answered.
    pub start: Hash,
    /// One entry per position, in the BlameStart's order.
    pub bytes: Vec<DisclosedByte>,
    /// In a cell check (the round's allocation is void): the cell the member wrote, if any.
    pub claim: Option<CellClaim>,
}
/// All disclosures.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct DisclosureSet {
    /// The BlameStart.
    pub start: Signed<BlameStart>,
    /// Disclosures received, by member index.
    pub disclosures: Vec<Signed<Disclose>>,
    /// Members that stayed silent.
    pub missing: Vec<u32>,
}
/// `K_ij = e_i·E_j` revealed to settle a pad dispute.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct KeyReveal {
    /// Digest of the DisclosureSet.
    pub set: Hash,
    /// The other member of the pair.
    pub other: u32,
    /// `K_ij`.
    pub shared: [u8; 32],
    /// DLEQ proof: `log_B(E_i) = log_{E_j}(K_ij)`.
    pub proof: DleqProof,
}
/// All key reveals.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct RevealSet {
    /// Digest of the DisclosureSet.
    pub set: Hash,
    /// Reveals received.
    pub reveals: Vec<Signed<KeyReveal>>,
}
/// Evidence found outside disclosure, forwarded for everyone to check.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Evidence {
    /// Two different commitments signed by one member for one round.
    pub commits: (Signed<Commit>, Signed<Commit>),
}

/// A member's first frame on a connection, so a restarted relay resumes above every round and
/// epoch its members have seen.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`]: the relay refuses a Hello of another version.
    pub protocol: u32,
    /// Highest round the member accepted.
    pub high_water: u64,
    /// The member's epoch.
    pub epoch: u64,
    /// Digest of the message that concluded the member's last blame case, if it has not yet
    /// seen an Open after it (a restarted relay resumes from the members' agreed value).
    pub last_case: Option<Hash>,
}

/// Any top-level message body.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
#[allow(missing_docs)]
pub enum Body {
    EpochRequest(EpochRequest),
    EpochKey(EpochKey),
    EpochKeys(EpochKeys),
    Open(Open),
    Commit(Commit),
    CommitSet(CommitSet),
    Reveal(Reveal),
    Record(Record),
    Unblind(Unblind),
    ZSet(ZSet),
    Abort(Abort),
    Accuse(Accuse),
    BlameStart(BlameStart),
    Disclose(Disclose),
    DisclosureSet(DisclosureSet),
    KeyReveal(KeyReveal),
    RevealSet(RevealSet),
    Evidence(Evidence),
    Hello(Hello),
}

macro_rules! payloads {
    ($($t:ident),*) => {
        impl Body {
            /// The kind this body must travel under.
            pub fn kind(&self) -> Kind { match self { $(Body::$t(_) => Kind::$t),* } }
        }
        $(
            impl Payload for $t { const KIND: Kind = Kind::$t; }
            impl From<$t> for Body { fn from(v: $t) -> Body { Body::$t(v) } }
        )*
    };
}
payloads!(
    EpochRequest,
    EpochKey,
    EpochKeys,
    Open,
    Commit,
    CommitSet,
    Reveal,
    Record,
    Unblind,
    ZSet,
    Abort,
    Accuse,
    BlameStart,
    Disclose,
    DisclosureSet,
    KeyReveal,
    RevealSet,
    Evidence,
    Hello
);

/// A decoded top-level frame whose signature has not been checked yet.
pub type Frame = Signed<Body>;

/// Decodes a top-level frame and checks that header kind and body agree.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, WireError> {
    let f: Frame = decode(bytes)?;
    if f.header.kind != f.body.kind() {
        return Err(WireError::KindMismatch);
    }
    Ok(f)
}

/// The two hashes of a received top-level frame, computed from its bytes: the 32 bytes its
/// signature covers and its digest (§2.10). A member hashes what it received instead of
/// encoding the decoded message again, twice, for the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHashes {
    /// `H("dcnet/v1/signature"; hb, bb)`.
    pub signed_bytes: Hash,
    /// `H("dcnet/v1/message"; hb ‖ bb ‖ sig)`.
    pub digest: Hash,
}

/// [`FrameHashes`] of `frame`, which [`decode_frame`] decoded to a frame with `header`. A
/// frame is `hb ‖ varint(kind − 1) ‖ bb ‖ sig` (§4). `None` if `frame` does not have that
/// shape: the header's encoding, then one index byte for its kind, then a 64-byte signature at
/// the end. A decoded frame is canonical, so a frame that decoded always has it.
pub fn frame_hashes(frame: &[u8], header: &Header) -> Option<FrameHashes> {
    let hb = encode(header);
    let index = (header.kind as u32).checked_sub(1)?;
    if index >= 251 || frame.get(..hb.len())? != hb.as_slice() {
        return None;
    }
    if *frame.get(hb.len())? != index as u8 {
        return None;
    }
    let rest = frame.get(hb.len() + 1..)?;
    let (bb, sig) = rest.split_at_checked(rest.len().checked_sub(64)?)?;
    let signed = || hash(tags::SIGNATURE, &[&hb, bb]);
    let digest = || crate::crypto::hash_concat(tags::MESSAGE, &[&hb, bb, sig]);
    // Two independent passes over the same bytes: for a large frame (a Record carries the
    // whole output) they run on two cores.
    let (signed_bytes, digest) =
        if bb.len() >= PARALLEL_HASH_MIN_BYTES && rayon::current_num_threads() > 1 {
            rayon::join(signed, digest)
        } else {
            (signed(), digest())
        };
    Some(FrameHashes {
        signed_bytes,
        digest,
    })
}

/// From this many body bytes on, [`frame_hashes`] computes its two hashes on the rayon pool.
const PARALLEL_HASH_MIN_BYTES: usize = 32 * 1024;

/// A top-level frame decoded once, with the hashes of the very bytes it was decoded from.
///
/// Only [`ParsedFrame::parse`] makes one (the fields are private), so whoever holds one knows
/// that its hashes are those of its frame's bytes: a proof token in the manner of rustls's
/// `HandshakeSignatureValid`. Decoding and hashing are functions of the bytes alone, so one
/// parse of a broadcast can serve every receiver of those bytes (the simulator parses each
/// relay broadcast once); checking the signature stays with each receiver
/// ([`crate::protocol::Member::handle_parsed`]).
#[derive(Clone, Debug)]
pub struct ParsedFrame {
    header: Header,
    body: ParsedBody,
    sig: [u8; 64],
    /// `None` when the bytes do not have a frame's shape (§4); a receiver refuses the frame.
    hashes: Option<FrameHashes>,
    /// What receivers of a ZSet derive from it, shared by every clone of this parse.
    zset_memo: Arc<crate::protocol::member::ZSetMemo>,
}

/// A parsed frame's body. The bodies a member keeps whole (a CommitSet it reveals against, a
/// Record it keeps as blame evidence) are held once for every clone of the parse, with the
/// frame's header and signature (not yet checked).
// A parse lives for one delivery and is never stored in bulk: no box for the large variant.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub(crate) enum ParsedBody {
    CommitSet(Arc<Signed<CommitSet>>),
    Record(Arc<Signed<Record>>),
    Other(Body),
}

impl ParsedFrame {
    /// Decodes `bytes` ([`decode_frame`]) and hashes them ([`frame_hashes`]).
    pub fn parse(bytes: &[u8]) -> Result<ParsedFrame, WireError> {
        let frame = decode_frame(bytes)?;
        let hashes = frame_hashes(bytes, &frame.header);
        let Signed { header, body, sig } = frame;
        let body = match body {
            Body::CommitSet(b) => ParsedBody::CommitSet(Arc::new(typed(header, b, sig))),
            Body::Record(b) => ParsedBody::Record(Arc::new(typed(header, b, sig))),
            b => ParsedBody::Other(b),
        };
        Ok(ParsedFrame {
            header,
            body,
            sig,
            hashes,
            zset_memo: Arc::default(),
        })
    }

    /// Header, body, signature and hashes, for [`crate::protocol::Member::handle_parsed`].
    pub(crate) fn into_shared(self) -> (Header, ParsedBody, [u8; 64], Option<FrameHashes>) {
        (self.header, self.body, self.sig, self.hashes)
    }

    /// Values derived from this frame once for all its holders
    /// ([`crate::protocol::member::ZSetMemo`]).
    pub(crate) fn zset_memo(&self) -> Arc<crate::protocol::member::ZSetMemo> {
        self.zset_memo.clone()
    }

    /// Real time already spent on those values by other holders of this parse.
    pub(crate) fn shared_time(&self) -> std::time::Duration {
        self.zset_memo.spent()
    }

    /// The frame's header (not yet authenticated).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The decoded frame and the hashes of its bytes (`None`: not a canonical frame).
    pub fn into_parts(self) -> (Frame, Option<FrameHashes>) {
        let body = match self.body {
            ParsedBody::CommitSet(m) => Body::CommitSet(Arc::unwrap_or_clone(m).body),
            ParsedBody::Record(m) => Body::Record(Arc::unwrap_or_clone(m).body),
            ParsedBody::Other(b) => b,
        };
        (typed(self.header, body, self.sig), self.hashes)
    }
}

/// Splits a top-level frame into its typed form (header and signature unchanged).
pub fn typed<T>(header: Header, body: T, sig: [u8; 64]) -> Signed<T> {
    Signed { header, body, sig }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_signature_binding() {
        let k = IdentityKey::from_secret_bytes(&[4; 32]);
        let m = Signed::sign(&k, [1; 32], 2, 3, Sender::Member(0), Unblind { z: [9; 32] });
        assert!(m.verify(&k.public()));
        let frame = m.clone().into_frame();
        let f = decode_frame(&frame).unwrap();
        assert_eq!(f.header, m.header);
        // Same body under another round / epoch / group does not verify.
        for h in [
            Header {
                round: 4,
                ..m.header
            },
            Header {
                epoch: 1,
                ..m.header
            },
            Header {
                group_id: [0; 32],
                ..m.header
            },
            Header {
                sender: Sender::Member(1),
                ..m.header
            },
        ] {
            assert!(!typed(h, m.body.clone(), m.sig).verify(&k.public()));
        }
        // Kind mismatch is refused at decode.
        let mut bad = decode_frame(&frame).unwrap();
        bad.header.kind = Kind::Reveal;
        assert_eq!(
            decode_frame(&encode(&bad)).unwrap_err(),
            WireError::KindMismatch
        );
    }

    #[test]
    fn non_minimal_varints_are_refused() {
        let k = IdentityKey::from_secret_bytes(&[4; 32]);
        let frame =
            Signed::sign(&k, [1; 32], 2, 3, Sender::Member(0), Unblind { z: [9; 32] }).into_frame();
        assert!(decode_frame(&frame).is_ok());
        // The header's epoch (2) at offset 32, written as 0xfb 02 00 instead of 02.
        let mut long = frame[..32].to_vec();
        long.extend_from_slice(&[0xfb, 0x02, 0x00]);
        long.extend_from_slice(&frame[33..]);
        let f: Result<Frame, _> = bincode::decode_from_slice(&long, config()).map(|x| x.0);
        assert_eq!(
            f.map(|f| f.header.epoch).ok(),
            Some(2),
            "bincode itself accepts it"
        );
        assert_eq!(decode_frame(&long).unwrap_err(), WireError::NonCanonical);
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        let k = IdentityKey::from_secret_bytes(&[4; 32]);
        let frame = Signed::sign(
            &k,
            [1; 32],
            2,
            3,
            Sender::Relay,
            Reveal {
                ciphertext: vec![7; 100],
            },
        )
        .into_frame();
        for cut in 0..frame.len() {
            assert!(decode_frame(&frame[..cut]).is_err());
        }
        let mut long = frame.clone();
        long.push(0);
        assert_eq!(decode_frame(&long).unwrap_err(), WireError::Trailing(1));
        // A length prefix claiming far more than the frame holds.
        let mut x = vec![0u8; 40];
        x.extend_from_slice(&[0xfc, 0xff, 0xff, 0xff, 0x7f]);
        assert!(decode_frame(&x).is_err());
        assert!(matches!(
            decode_frame(&vec![0u8; MAX_FRAME + 1]),
            Err(WireError::TooLarge(_))
        ));
    }

    #[test]
    fn kind_is_encoded_as_its_index() {
        // docs/PROTOCOL.md §4: bincode encodes the variant index (Kind value − 1).
        assert_eq!(encode(&Kind::EpochRequest), vec![0]);
        assert_eq!(encode(&Kind::Open), vec![3]);
        assert_eq!(encode(&Kind::Abort), vec![10]);
    }

    /// A large frame's two hashes are computed on two cores when the pool has them; the
    /// values do not depend on it, and [`ParsedFrame`] carries exactly them.
    #[test]
    fn large_frame_hashes_are_the_same_on_one_core_and_two() {
        let k = IdentityKey::from_secret_bytes(&[4; 32]);
        let body = Reveal {
            ciphertext: (0..PARALLEL_HASH_MIN_BYTES as u32 + 1000)
                .map(|i| (i * 7) as u8)
                .collect(),
        };
        let m = Signed::sign(&k, [1; 32], 2, 3, Sender::Relay, body);
        let want = FrameHashes {
            signed_bytes: signing_digest(&m.header, &m.body),
            digest: m.digest(),
        };
        let frame = m.into_frame();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            let (fh, parsed) = pool.install(|| {
                let f = decode_frame(&frame).expect("decodes");
                (frame_hashes(&frame, &f.header), ParsedFrame::parse(&frame))
            });
            assert_eq!(fh, Some(want), "{threads} thread(s)");
            let parsed = parsed.expect("parses");
            assert_eq!(parsed.header().kind, Kind::Reveal);
            assert_eq!(parsed.into_parts().1, Some(want), "{threads} thread(s)");
        }
        // One byte changed anywhere in the body changes both hashes.
        let mut bad = frame.clone();
        let at = frame.len() - 100;
        bad[at] ^= 1;
        let p = ParsedFrame::parse(&bad).expect("still decodes");
        let fh = p.into_parts().1.expect("still canonical");
        assert_ne!(fh.signed_bytes, want.signed_bytes);
        assert_ne!(fh.digest, want.digest);
    }
}
