//! Files a real group needs: secret key files and the human-readable TOML group file.
//!
//! Key file (mode 0600; on Unix a key file readable or writable by group or others is refused):
//! two lines, `dcnet-secret-key-v1` and 64 hex digits.
//!
//! Group file:
//!
//! ```toml
//! name = "book-club"
//! relay = "127.0.0.1:4433"
//! relay_key = "<64 hex digits>"
//!
//! [params]            # every field optional; defaults shown by `dcnet group new --help`
//! slot_bytes = 256
//! round_ms = 500      # a round every 500 ms; 0 = as fast as the group can go
//!
//! [[member]]
//! name = "alice"
//! key = "<64 hex digits>"
//! ```
//!
//! Member order in the file is the roster order: it fixes member indices and `group_id`.
//! A missing parameter takes the library default ([`RoundParams::default`]; note `round_ms`
//! is then 0, while `dcnet group new` writes 500); `cells = 0` and `slots = 0` mean "twice the
//! members" and "one per member". `dcnet group new` writes every parameter out, resolved.

use crate::crypto::identity::{IdentityKey, PublicKey};
use crate::params::{Group, RosterEntry, RoundParams};
use std::net::SocketAddr;
use std::path::Path;
use zeroize::Zeroize;

const KEY_HEADER: &str = "dcnet-secret-key-v1";

/// Why a file could not be used. Messages name the file and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The content is not what was expected.
    #[error("{path}: {msg}")]
    Invalid {
        /// File.
        path: String,
        /// What is wrong.
        msg: String,
    },
}

fn io(path: &Path, source: std::io::Error) -> FileError {
    FileError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn invalid(path: &Path, msg: impl Into<String>) -> FileError {
    FileError::Invalid {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// 32 bytes from the OS random source.
pub fn os_random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    // getrandom fails only if the OS has no entropy source at all; nothing sensible can
    // continue without one.
    getrandom::fill(&mut b).expect("the OS random source is unavailable");
    b
}

/// Creates a new file readable and writable by its owner only (mode 0600 on Unix); an existing
/// file is never opened or replaced (`AlreadyExists`).
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Generates a key and writes it to `path` (mode 0600, refusing to overwrite).
pub fn write_new_key(path: &Path) -> Result<PublicKey, FileError> {
    let mut secret = os_random32();
    let key = IdentityKey::from_secret_bytes(&secret);
    let mut text = format!("{KEY_HEADER}\n{}\n", hex::encode(secret));
    secret.zeroize();
    let res = (|| {
        use std::io::Write;
        let mut f = create_private(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })();
    text.zeroize();
    res.map_err(|e| io(path, e))?;
    Ok(key.public())
}

/// Writes a group file. Without `force` an existing file is refused (never replaced); with
/// it, the new text replaces the old one atomically (written beside it, then renamed).
pub fn write_group_file(path: &Path, gf: &GroupFile, force: bool) -> Result<(), FileError> {
    use std::io::Write;
    let text = gf.to_toml();
    if !force {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    invalid(
                        path,
                        "already exists; pass --force to replace it (every member and the relay \
                         must then use the new file)",
                    )
                } else {
                    io(path, e)
                }
            })?;
        return f.write_all(text.as_bytes()).map_err(|e| io(path, e));
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text.as_bytes()).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Reads a key file. On Unix a file that grants any permission to its group or to others
/// (`mode & 0o077 != 0`) is refused: a secret key others can read is no longer secret.
pub fn read_key(path: &Path) -> Result<IdentityKey, FileError> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(invalid(
                path,
                format!(
                    "secret key file has mode {mode:04o}, so other users may read it; \
                     run `chmod 600 {}` (and consider the key exposed if others had access)",
                    path.display()
                ),
            ));
        }
    }
    if meta.len() > 4096 {
        return Err(invalid(path, "too large for a key file"));
    }
    let mut text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    let mut lines = text.lines();
    if lines.next() != Some(KEY_HEADER) {
        text.zeroize();
        return Err(invalid(
            path,
            format!("not a dcnet key file (first line must be {KEY_HEADER})"),
        ));
    }
    let parsed = lines.next().and_then(|l| hex::decode(l.trim()).ok());
    text.zeroize();
    let mut bytes = parsed.ok_or_else(|| invalid(path, "second line must be 64 hex digits"))?;
    let arr: Result<[u8; 32], _> = bytes.as_slice().try_into();
    bytes.zeroize();
    let mut arr = arr.map_err(|_| invalid(path, "secret key must be 32 bytes"))?;
    let key = IdentityKey::from_secret_bytes(&arr);
    arr.zeroize();
    Ok(key)
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberToml {
    name: String,
    key: String,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ParamsToml {
    cells: Option<u32>,
    slots: Option<u32>,
    slot_bytes: Option<u32>,
    p_trap: Option<f64>,
    p_cover: Option<f64>,
    keys_ms: Option<u64>,
    commit_ms: Option<u64>,
    reveal_ms: Option<u64>,
    unblind_ms: Option<u64>,
    post_round_ms: Option<u64>,
    round_ms: Option<u64>,
    max_fragments: Option<u16>,
    tolerance: Option<u32>,
    epoch_rounds: Option<u64>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupToml {
    /// The protocol version the file is for (absent: 1, the only one so far).
    #[serde(default)]
    protocol: Option<u32>,
    name: String,
    relay: String,
    relay_key: String,
    #[serde(default)]
    params: ParamsToml,
    member: Vec<MemberToml>,
}

/// A group file: the group, and where its relay listens.
#[derive(Clone, Debug)]
pub struct GroupFile {
    /// The validated group.
    pub group: Group,
    /// The relay's address (`HOST:PORT`).
    pub relay_addr: String,
}

impl GroupFile {
    /// Builds and validates a group file's content.
    pub fn new(
        name: &str,
        relay_addr: &str,
        relay_key: PublicKey,
        members: Vec<RosterEntry>,
        params: RoundParams,
    ) -> Result<GroupFile, String> {
        if name.is_empty() {
            return Err("the group name must not be empty".into());
        }
        check_addr(relay_addr)?;
        let group = Group::new(name, members, relay_key, params).map_err(|e| e.to_string())?;
        Ok(GroupFile {
            group,
            relay_addr: relay_addr.to_string(),
        })
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let p = self.group.params();
        let t = GroupToml {
            protocol: Some(crate::wire::PROTOCOL_VERSION),
            name: self.group.name().to_string(),
            relay: self.relay_addr.clone(),
            relay_key: self.group.relay_key().to_string(),
            params: ParamsToml {
                cells: Some(p.cells),
                slots: Some(p.slots),
                slot_bytes: Some(p.slot_bytes),
                p_trap: Some(p.p_trap),
                p_cover: Some(p.p_cover),
                keys_ms: Some(p.keys_ms),
                commit_ms: Some(p.commit_ms),
                reveal_ms: Some(p.reveal_ms),
                unblind_ms: Some(p.unblind_ms),
                post_round_ms: Some(p.post_round_ms),
                round_ms: Some(p.round_ms),
                max_fragments: Some(p.max_fragments),
                tolerance: Some(p.tolerance),
                epoch_rounds: Some(p.epoch_rounds),
            },
            member: self
                .group
                .members()
                .iter()
                .map(|m| MemberToml {
                    name: m.name.clone(),
                    key: m.key.to_string(),
                })
                .collect(),
        };
        let body = toml::to_string(&t).unwrap_or_default();
        format!(
            "# dcnet group file. Member order is the roster order; changing anything changes the\n# group id (group_id = {}).\n{body}",
            hex::encode(self.group.id())
        )
    }

    /// Parses and validates TOML text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<GroupFile, FileError> {
        let t: GroupToml = toml::from_str(text).map_err(|e| invalid(path, e.to_string()))?;
        if let Some(v) = t.protocol.filter(|&v| v != crate::wire::PROTOCOL_VERSION) {
            return Err(invalid(
                path,
                format!(
                    "protocol = {v}: this file is for protocol version {v}, and this dcnet speaks \
                     version {} (use a dcnet that speaks version {v}, or a group file for \
                     version {})",
                    crate::wire::PROTOCOL_VERSION,
                    crate::wire::PROTOCOL_VERSION
                ),
            ));
        }
        let relay_key: PublicKey = t
            .relay_key
            .parse()
            .map_err(|e| invalid(path, format!("relay_key: {e}")))?;
        let mut members = Vec::new();
        for (i, m) in t.member.iter().enumerate() {
            let key: PublicKey = m
                .key
                .parse()
                .map_err(|e| invalid(path, format!("member {i} ({}): {e}", m.name)))?;
            members.push(RosterEntry {
                name: m.name.clone(),
                key,
            });
        }
        let d = RoundParams::default();
        let q = &t.params;
        let params = RoundParams {
            cells: q.cells.unwrap_or(d.cells),
            slots: q.slots.unwrap_or(d.slots),
            slot_bytes: q.slot_bytes.unwrap_or(d.slot_bytes),
            p_trap: q.p_trap.unwrap_or(d.p_trap),
            p_cover: q.p_cover.unwrap_or(d.p_cover),
            keys_ms: q.keys_ms.unwrap_or(d.keys_ms),
            commit_ms: q.commit_ms.unwrap_or(d.commit_ms),
            reveal_ms: q.reveal_ms.unwrap_or(d.reveal_ms),
            unblind_ms: q.unblind_ms.unwrap_or(d.unblind_ms),
            post_round_ms: q.post_round_ms.unwrap_or(d.post_round_ms),
            round_ms: q.round_ms.unwrap_or(d.round_ms),
            max_fragments: q.max_fragments.unwrap_or(d.max_fragments),
            tolerance: q.tolerance.unwrap_or(d.tolerance),
            epoch_rounds: q.epoch_rounds.unwrap_or(d.epoch_rounds),
        };
        GroupFile::new(&t.name, &t.relay, relay_key, members, params).map_err(|e| invalid(path, e))
    }

    /// Reads and validates a group file.
    pub fn read(path: &Path) -> Result<GroupFile, FileError> {
        let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
        if meta.len() > 1 << 20 {
            return Err(invalid(path, "larger than 1 MiB"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        Self::parse(&text, path)
    }

    /// Resolves the relay address.
    pub fn relay_socket(&self) -> Result<SocketAddr, String> {
        use std::net::ToSocketAddrs;
        self.relay_addr
            .to_socket_addrs()
            .map_err(|e| format!("relay address {}: {e}", self.relay_addr))?
            .next()
            .ok_or_else(|| format!("relay address {} resolves to nothing", self.relay_addr))
    }

    /// Index of `key` in the roster.
    pub fn index_of(&self, key: &PublicKey) -> Option<u32> {
        self.group
            .members()
            .iter()
            .position(|m| &m.key == key)
            .map(|i| i as u32)
    }
}

fn check_addr(a: &str) -> Result<(), String> {
    let (host, port) = a
        .rsplit_once(':')
        .ok_or_else(|| format!("relay address {a:?} must be HOST:PORT"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("relay address {a:?} must be HOST:PORT"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_file_roundtrip_and_errors() {
        let keys: Vec<IdentityKey> = (1..=3u8)
            .map(|i| IdentityKey::from_secret_bytes(&[i; 32]))
            .collect();
        let relay = IdentityKey::from_secret_bytes(&[9; 32]).public();
        let members = keys
            .iter()
            .enumerate()
            .map(|(i, k)| RosterEntry {
                name: format!("m{i}"),
                key: k.public(),
            })
            .collect();
        let g = GroupFile::new(
            "g",
            "127.0.0.1:4433",
            relay,
            members,
            RoundParams::default(),
        )
        .unwrap();
        let text = g.to_toml();
        let back = GroupFile::parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!(back.group.id(), g.group.id());
        let bad = text.replace("slot_bytes = 256", "slot_bytes = 3");
        let e = GroupFile::parse(&bad, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("slot_bytes"), "{e}");
        let bad = text.replace("[[member]]", "[[members]]");
        assert!(GroupFile::parse(&bad, Path::new("x.toml")).is_err());
        // The protocol version: written, checked, and absent means 1.
        assert!(text.contains("protocol = 1"), "{text}");
        let e = GroupFile::parse(
            &text.replace("protocol = 1", "protocol = 2"),
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("protocol version 2") && e.contains("speaks version 1"),
            "{e}"
        );
        let old =
            GroupFile::parse(&text.replace("protocol = 1\n", ""), Path::new("x.toml")).unwrap();
        assert_eq!(old.group.id(), g.group.id());
        // Keys §2.10 would refuse to verify under are refused in the file: the identity point
        // (small order) and a non-canonical encoding of it (y = p + 1).
        let relay_hex = relay.to_string();
        let identity = format!("01{}", "00".repeat(31));
        let mut noncanon = [0xffu8; 32];
        noncanon[0] = 0xee;
        noncanon[31] = 0x7f;
        for k in [identity, hex::encode(noncanon)] {
            let e = GroupFile::parse(&text.replace(&relay_hex, &k), Path::new("x.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("relay_key"), "{k}: {e}");
        }
        assert!(GroupFile::new("g", "nohost", relay, vec![], RoundParams::default()).is_err());
    }

    #[test]
    fn key_files() {
        let dir = std::env::temp_dir().join(format!("dcnet-key-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let p = dir.join("k");
        let _ = std::fs::remove_file(&p);
        let public = write_new_key(&p).unwrap();
        assert_eq!(read_key(&p).unwrap().public(), public);
        assert!(write_new_key(&p).is_err(), "never overwrites");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::write(&p, "garbage").unwrap();
        assert!(read_key(&p).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn key_files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("dcnet-keymode-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let p = dir.join("k");
        let _ = std::fs::remove_file(&p);
        let public = write_new_key(&p).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = match read_key(&p) {
                Ok(_) => panic!("mode {mode:o} accepted"),
                Err(e) => e.to_string(),
            };
            assert!(
                e.contains(&format!("chmod 600 {}", p.display())),
                "{mode:o}: {e}"
            );
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key(&p).unwrap().public(), public);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_key(&p).unwrap().public(), public);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
