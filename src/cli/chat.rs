//! What `dcnet member` does with typed lines and delivered messages: plain posts, `/dm`,
//! `/reply`, `/nym` (docs/PROTOCOL.md §13; what each party learns: docs/SECURITY.md).

use super::words;
use crate::chat::{Correspondent, Envelope, Mailbox, Nym, NymBook, fingerprint, parse};
use crate::crypto::identity::IdentityKey;
use crate::net::member::Submission;
use crate::params::Group;
use serde_json::json;
use std::sync::Arc;

/// The command list `/help` prints.
pub const HELP: &str = "commands:\n  \
    TEXT            post TEXT anonymously to the group\n  \
    /dm NAME TEXT   a private message only NAME can read; NAME does not learn it was you\n  \
    /reply N TEXT   answer private message [dm N]; only its writer can read the answer\n  \
    /nym NAME       sign your next posts as pseudonym NAME: readers can link them to each \
    other, never to you (/nym off: post plainly again)\n  \
    /help           this list (a line starting with // is posted with one / less)";

/// What a typed line asks for.
#[derive(Debug)]
pub enum Input {
    /// Send this, and call it `label` in the notices about it.
    Send {
        /// The message and its link.
        sub: Submission,
        /// "private message to bob", "post as ~owl", …
        label: String,
        /// It answers received private message N: if the member refuses it, call
        /// [`ChatCli::refused`] so that N can be answered again.
        answers: Option<u32>,
    },
    /// Nothing to send; tell the user this.
    Say(String),
    /// An empty line.
    Nothing,
}

/// One member's chat state: its mailbox (private messages, reply keys), its pseudonym if it
/// posts as one, and the pseudonyms it has read.
pub struct ChatCli {
    group: Arc<Group>,
    mailbox: Mailbox,
    nym: Option<Nym>,
    book: NymBook,
    /// The key first seen for each pseudonym name, to flag another key using it.
    names: std::collections::BTreeMap<String, crate::crypto::identity::PublicKey>,
    next_nym_seed: [u8; 32],
}

impl ChatCli {
    /// `seed` (from the OS) seeds ephemeral, reply and pseudonym keys.
    pub fn new(group: Arc<Group>, me: u32, key: &IdentityKey, seed: [u8; 32]) -> ChatCli {
        let mailbox = Mailbox::new(&group, me, key, seed);
        let next_nym_seed = crate::crypto::hash("dcnet/v1/cli-nym-seed", &[&seed]);
        ChatCli {
            group,
            mailbox,
            nym: None,
            book: NymBook::default(),
            names: Default::default(),
            next_nym_seed,
        }
    }

    fn member_named(&self, name: &str) -> Result<u32, String> {
        self.group
            .members()
            .iter()
            .position(|m| m.name == name)
            .map(|i| i as u32)
            .ok_or_else(|| {
                let all: Vec<u32> = (0..self.group.size() as u32).collect();
                format!(
                    "no member called {name:?}; the roster: {}",
                    words::names(&self.group, &all)
                )
            })
    }

    /// Reads one typed line.
    pub fn input(&mut self, line: &str) -> Input {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Input::Nothing;
        }
        if let Some(rest) = line.strip_prefix("//") {
            return self.post(format!("/{rest}").as_bytes());
        }
        let Some(cmd) = line.strip_prefix('/') else {
            return self.post(line.as_bytes());
        };
        let (word, rest) = cmd.split_once(' ').unwrap_or((cmd, ""));
        let rest = rest.trim_start();
        match word {
            "help" => Input::Say(HELP.to_string()),
            "dm" => {
                let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
                if name.is_empty() || text.trim().is_empty() {
                    return Input::Say("usage: /dm NAME TEXT".into());
                }
                let to = match self.member_named(name) {
                    Ok(i) => i,
                    Err(e) => return Input::Say(e),
                };
                match self.mailbox.dm(to, text.as_bytes()) {
                    Ok(s) => Input::Send {
                        answers: None,
                        label: format!("private message to {name}"),
                        sub: Submission {
                            message: s.message,
                            link: s.link,
                        },
                    },
                    Err(e) => Input::Say(format!("not sent: {e}")),
                }
            }
            "reply" => {
                let (n, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let Ok(n) = n.parse::<u32>() else {
                    return Input::Say("usage: /reply N TEXT (N as in [dm N])".into());
                };
                if text.trim().is_empty() {
                    return Input::Say("usage: /reply N TEXT (N as in [dm N])".into());
                }
                match self.mailbox.reply(n, text.as_bytes()) {
                    Ok(s) => Input::Send {
                        answers: Some(n),
                        label: format!("answer to dm {n}"),
                        sub: Submission {
                            message: s.message,
                            link: s.link,
                        },
                    },
                    Err(e) => Input::Say(format!("not sent: {e}")),
                }
            }
            "nym" => match rest.trim() {
                "" => Input::Say(match &self.nym {
                    Some(n) => format!(
                        "you post as pseudonym ~{} (key {}); /nym off to post plainly",
                        n.name(),
                        fingerprint(&n.public())
                    ),
                    None => "you post plainly; /nym NAME to post as a pseudonym".into(),
                }),
                "off" => {
                    self.nym = None;
                    Input::Say("your posts are plain again (not signed by any pseudonym)".into())
                }
                name => {
                    let seed = self.next_nym_seed;
                    self.next_nym_seed = crate::crypto::hash("dcnet/v1/cli-nym-seed", &[&seed]);
                    match Nym::new(name, seed) {
                        Ok(n) => {
                            let say = format!(
                                "your next posts are signed by the new pseudonym ~{name} (key {}): \
                                 readers can tell they share an author, never who. They share \
                                 one anonymity set, so a post waits while too few of the members \
                                 present for the earlier ones are here. The key lives until this \
                                 member stops; /nym off to post plainly",
                                fingerprint(&n.public())
                            );
                            self.nym = Some(n);
                            Input::Say(say)
                        }
                        Err(e) => Input::Say(format!("no pseudonym: {e}")),
                    }
                }
            },
            other => Input::Say(format!(
                "unknown command /{other}; /help lists them (start a line with // to post a /)"
            )),
        }
    }

    fn post(&mut self, text: &[u8]) -> Input {
        match &mut self.nym {
            None => Input::Send {
                sub: text.to_vec().into(),
                label: "message".into(),
                answers: None,
            },
            Some(n) => Input::Send {
                answers: None,
                label: format!("post as ~{}", n.name()),
                sub: Submission {
                    message: n.post(self.group.id(), text),
                    link: Some(n.link()),
                },
            },
        }
    }

    /// The member refused the answer to private message `n` (too long, queue full): it can be
    /// answered again.
    pub fn refused(&mut self, n: u32) {
        self.mailbox.unanswer(n);
    }

    /// What to show for a delivered message: a line for people and a JSON object (also what
    /// the history file records). `None`: nothing to show (a sealed message for someone else,
    /// or a replay).
    pub fn delivered(
        &mut self,
        round: u64,
        slot: u32,
        message: &[u8],
    ) -> Option<(String, serde_json::Value)> {
        let at = format!("[round {round}, slot {slot}]");
        match parse(message) {
            Envelope::Text(t) => {
                let t = String::from_utf8_lossy(t).into_owned();
                Some((
                    format!("{at} {t}"),
                    json!({"event": "delivered", "round": round, "slot": slot, "text": t}),
                ))
            }
            Envelope::Sealed { .. } => {
                let o = self.mailbox.open(message)?;
                let t = String::from_utf8_lossy(&o.text).into_owned();
                let from = match o.from {
                    Correspondent::Member(i) => Some(words::name(&self.group, i)),
                    Correspondent::Anonymous => None,
                };
                let who = match (&from, o.is_reply) {
                    (Some(name), _) => format!("{name} answered you"),
                    (None, false) => "private message from an anonymous member".into(),
                    (None, true) => "the anonymous member you answered wrote back".into(),
                };
                Some((
                    format!(
                        "[dm {}] {who}: {t}  (answer with /reply {} TEXT)",
                        o.number, o.number
                    ),
                    json!({"event": "dm", "number": o.number, "conversation": o.thread,
                           "from": from, "reply": o.is_reply, "round": round, "slot": slot,
                           "text": t}),
                ))
            }
            Envelope::Nym(p) => {
                let fp = fingerprint(&p.key);
                match self.book.check(self.group.id(), &p) {
                    Ok(()) => {
                        let t = String::from_utf8_lossy(&p.text).into_owned();
                        if self.names.len() < crate::chat::MAX_NYMS {
                            self.names.entry(p.name.clone()).or_insert(p.key);
                        }
                        // Anyone can pick any name: say when it is not the key first seen.
                        let reused = self.names.get(&p.name).is_some_and(|k| *k != p.key);
                        let note = if reused {
                            format!(" (not the ~{} first seen here: another key)", p.name)
                        } else {
                            String::new()
                        };
                        Some((
                            format!("{at} ~{} ({fp}){note}: {t}", p.name),
                            json!({"event": "delivered", "round": round, "slot": slot,
                                   "nym": p.name, "nym_key": hex::encode(p.key.0),
                                   "name_reused": reused, "text": t}),
                        ))
                    }
                    Err(e) => Some((
                        format!("{at} a post signed as ~{} ({fp}) is not shown: {e}", p.name),
                        json!({"event": "nym_refused", "round": round, "slot": slot,
                               "nym": p.name, "nym_key": hex::encode(p.key.0),
                               "reason": e.to_string()}),
                    )),
                }
            }
            Envelope::Unknown(kind) => Some((
                format!(
                    "{at} a message of a kind this version cannot read (kind {kind}); a newer \
                     dcnet may"
                ),
                json!({"event": "unreadable", "round": round, "slot": slot, "kind": kind}),
            )),
            Envelope::Malformed(why) => Some((
                format!("{at} a message that does not parse: {why}"),
                json!({"event": "unreadable", "round": round, "slot": slot, "reason": why}),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::TestGroup;

    fn clis(n: usize) -> (TestGroup, Vec<ChatCli>) {
        let tg = TestGroup::new(n, crate::params::RoundParams::default(), 4).unwrap();
        let c = (0..n)
            .map(|i| {
                ChatCli::new(
                    tg.group.clone(),
                    i as u32,
                    &tg.member_keys[i],
                    [i as u8; 32],
                )
            })
            .collect();
        (tg, c)
    }

    fn sent(i: Input) -> Submission {
        match i {
            Input::Send { sub, .. } => sub,
            other => panic!("not a send: {other:?}"),
        }
    }

    #[test]
    fn dm_reply_and_nym_lines_from_the_prompt() {
        let (_tg, mut c) = clis(3);
        let dm = sent(c[0].input("/dm m2 see you at nine"));
        assert!(dm.link.is_some());
        assert_eq!(c[1].delivered(1, 0, &dm.message), None);
        let (line, j) = c[2].delivered(1, 0, &dm.message).unwrap();
        assert!(
            line.starts_with("[dm 1] private message from an anonymous member: see you at nine")
        );
        assert!(!line.contains("m0"), "{line}");
        assert_eq!(j["from"], serde_json::Value::Null);
        let r = sent(c[2].input("/reply 1 who is this?"));
        assert_eq!(r.link, None);
        assert_eq!(c[1].delivered(2, 0, &r.message), None);
        let (line, j) = c[0].delivered(2, 0, &r.message).unwrap();
        assert!(line.contains("m2 answered you: who is this?"), "{line}");
        assert_eq!(j["from"], "m2");
        assert!(
            matches!(c[2].input("/reply 1 again"), Input::Say(s) if s.contains("answered already"))
        );
        // A refused answer (too long, queue full) can be written again.
        c[2].refused(1);
        assert!(matches!(
            c[2].input("/reply 1 again"),
            Input::Send {
                answers: Some(1),
                ..
            }
        ));
        assert!(
            matches!(c[0].input("/dm nobody hi"), Input::Say(s) if s.contains("no member called"))
        );
        assert!(matches!(c[0].input("/dm m0 hi"), Input::Say(s) if s.contains("that is you")));
        assert!(matches!(c[0].input("/reply x hi"), Input::Say(s) if s.starts_with("usage")));
        assert!(matches!(c[0].input("/frobnicate"), Input::Say(s) if s.contains("/help")));
        assert!(
            matches!(c[0].input("/nym two words"), Input::Say(s) if s.starts_with("no pseudonym"))
        );
        assert!(matches!(c[0].input("/nym owl"), Input::Say(s) if s.contains("~owl")));
        let p1 = sent(c[0].input("hoot"));
        let p2 = sent(c[0].input("//slash"));
        assert_eq!(p1.link, p2.link);
        assert!(p1.link.is_some());
        let (l1, _) = c[1].delivered(3, 1, &p1.message).unwrap();
        let (l2, _) = c[1].delivered(4, 1, &p2.message).unwrap();
        assert!(l1.contains("~owl (") && l1.ends_with(": hoot"), "{l1}");
        assert!(l2.ends_with(": /slash"), "{l2}");
        // The same post again: refused as a replay, said once.
        let (l3, _) = c[1].delivered(5, 1, &p1.message).unwrap();
        assert!(l3.contains("is not shown"), "{l3}");
        // Another key under the same name is flagged.
        let mut other = crate::chat::Nym::new("owl", [42; 32]).unwrap();
        let fake = other.post(c[1].group.id(), b"I am the owl");
        let (l4, j4) = c[1].delivered(6, 1, &fake).unwrap();
        assert!(l4.contains("not the ~owl first seen here"), "{l4}");
        assert_eq!(j4["name_reused"], true);
        assert!(matches!(c[0].input("/nym off"), Input::Say(_)));
        let plain = sent(c[0].input("plain again"));
        assert_eq!(
            (plain.message.as_slice(), plain.link),
            (&b"plain again"[..], None)
        );
    }
}
