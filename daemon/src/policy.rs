//! The access policy file: which identities may do what to which domains.
//!
//! ```toml
//! [[grant]]
//! uid = 1000                       # who: exactly one of uid, gid, subject, san, anyone = true
//!                                  # (gid: the peer's primary group, as SO_PEERCRED reports it;
//!                                  # subject: "CN=alice, O=example"; san: "DNS:host.example")
//! allow = ["read", "lifecycle"]    # what: see `Rights`; "all" for everything
//! names = ["web-*", "db-?"]        # which domains: name patterns (glob), and/or
//! uuids = ["7d2e..."]              # UUIDs; neither: every domain
//! ```
//!
//! Grants add up; what no grant allows is refused. Every right includes `read` on the same
//! domains: a caller can never act on a domain it cannot see. Parsing is bounded (file size,
//! grants, patterns and their length), so a hostile or broken file costs little to refuse.

use crate::caller::Identity;
use serde::Deserialize;
use uuid::Uuid;

/// The largest policy file read.
pub const MAX_POLICY_BYTES: usize = 1 << 20;
/// Grants in one file.
const MAX_GRANTS: usize = 10_000;
/// Name patterns or UUIDs in one grant.
const MAX_SELECTORS: usize = 1_000;
/// Characters in one name pattern (domain names are shorter in practice; matching a glob costs
/// up to its length times the name's).
const MAX_PATTERN_CHARS: usize = 256;

bitflags::bitflags! {
    /// What a caller may do to a domain.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Rights: u32 {
        /// See it: listings, counts, lookups, state, info, XML, snapshots and checkpoints, watch.
        const READ = 1;
        /// Start, shut down, reboot, reset, destroy, suspend, resume, PM suspend and wake up.
        const LIFECYCLE = 2;
        /// Define, redefine and undefine (and, with `lifecycle`, create a transient domain).
        const DEFINE = 4;
        /// Create, redefine, delete and revert to snapshots.
        const SNAPSHOT = 8;
        /// Create and delete checkpoints.
        const CHECKPOINT = 16;
        /// Save to and remove the managed save image.
        const MANAGED_SAVE = 32;
        /// Mark for autostart, or not.
        const AUTOSTART = 64;
    }
}

impl Rights {
    /// The policy file's word for each right.
    const WORDS: [(&'static str, Rights); 7] = [
        ("read", Rights::READ),
        ("lifecycle", Rights::LIFECYCLE),
        ("define", Rights::DEFINE),
        ("snapshot", Rights::SNAPSHOT),
        ("checkpoint", Rights::CHECKPOINT),
        ("managed-save", Rights::MANAGED_SAVE),
        ("autostart", Rights::AUTOSTART),
    ];

    /// The words of the rights set here, for messages.
    pub fn words(self) -> String {
        let words: Vec<&str> =
            Self::WORDS.iter().filter(|(_, right)| self.contains(*right)).map(|(word, _)| *word).collect();
        words.join("+")
    }

    fn from_word(word: &str) -> Option<Rights> {
        if word == "all" {
            return Some(Rights::all());
        }
        Self::WORDS.iter().find(|(name, _)| *name == word).map(|(_, right)| *right)
    }
}

/// A parsed, checked policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    grants: Vec<Grant>,
}

#[derive(Debug, Clone)]
struct Grant {
    who: Who,
    rights: Rights,
    /// Empty (with `uuids` empty): every domain.
    names: Vec<glob::Pattern>,
    uuids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Uid(u32),
    Gid(u32),
    Subject(String),
    San(String),
    Anyone,
}

/// `[[grant]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    uid: Option<u32>,
    gid: Option<u32>,
    subject: Option<String>,
    san: Option<String>,
    #[serde(default)]
    anyone: bool,
    allow: Vec<String>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    uuids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    grant: Vec<RawGrant>,
}

impl Policy {
    /// Parses and checks a policy file's text; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Policy, String> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(format!("the policy is {} bytes; at most {MAX_POLICY_BYTES} are read", text.len()));
        }
        let raw: RawPolicy = toml::from_str(text).map_err(|error| error.to_string())?;
        if raw.grant.len() > MAX_GRANTS {
            return Err(format!("{} grants; at most {MAX_GRANTS} are allowed", raw.grant.len()));
        }
        let grants = raw
            .grant
            .into_iter()
            .enumerate()
            .map(|(index, grant)| {
                Grant::check(grant).map_err(|error| format!("grant {}: {error}", index + 1))
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy { grants })
    }

    /// Reads and parses the policy file at `path` (at most `MAX_POLICY_BYTES`).
    pub fn read(path: &std::path::Path) -> Result<Policy, String> {
        use std::io::Read;
        let shown = path.display();
        let file = std::fs::File::open(path).map_err(|error| format!("cannot open {shown}: {error}"))?;
        let mut text = String::new();
        file.take(MAX_POLICY_BYTES as u64 + 1)
            .read_to_string(&mut text)
            .map_err(|error| format!("cannot read {shown}: {error}"))?;
        Policy::parse(&text).map_err(|error| format!("{shown}: {error}"))
    }

    /// Everything `identity` may do to the domain `name`/`uuid`: the union of the grants that
    /// name both. Any right includes reading.
    pub fn rights(&self, identity: &Identity, name: &str, uuid: Uuid) -> Rights {
        let mut rights = Rights::empty();
        for grant in &self.grants {
            if grant.who.is(identity) && grant.selects(name, uuid) {
                rights |= grant.rights;
            }
        }
        if rights.is_empty() { rights } else { rights | Rights::READ }
    }

    /// How many grants it holds.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether it grants nothing at all.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

impl Grant {
    fn check(raw: RawGrant) -> Result<Grant, String> {
        let whos = [
            raw.uid.map(Who::Uid),
            raw.gid.map(Who::Gid),
            raw.subject.map(Who::Subject),
            raw.san.map(Who::San),
            raw.anyone.then_some(Who::Anyone),
        ];
        let mut whos = whos.into_iter().flatten();
        let who = whos.next().ok_or("names nobody: give one of uid, gid, subject, san or anyone = true")?;
        if whos.next().is_some() {
            return Err(
                "names more than one of uid, gid, subject, san and anyone; write one grant each".into()
            );
        }
        if let Who::Subject(text) | Who::San(text) = &who
            && (text.is_empty() || text.len() > MAX_PATTERN_CHARS)
        {
            return Err(format!("a subject or san must be 1 to {MAX_PATTERN_CHARS} characters"));
        }
        if raw.allow.is_empty() {
            return Err("allows nothing: list rights in allow".into());
        }
        let mut rights = Rights::empty();
        for word in &raw.allow {
            rights |= Rights::from_word(word).ok_or_else(|| {
                let known: Vec<&str> = Rights::WORDS.iter().map(|(word, _)| *word).collect();
                format!("unknown right {word:?} (known: {}, all)", known.join(", "))
            })?;
        }
        if raw.names.len() > MAX_SELECTORS || raw.uuids.len() > MAX_SELECTORS {
            return Err(format!("at most {MAX_SELECTORS} names and {MAX_SELECTORS} uuids per grant"));
        }
        let names = raw
            .names
            .iter()
            .map(|pattern| {
                if pattern.is_empty() || pattern.chars().count() > MAX_PATTERN_CHARS {
                    return Err(format!("a name pattern must be 1 to {MAX_PATTERN_CHARS} characters"));
                }
                glob::Pattern::new(pattern).map_err(|error| format!("bad name pattern {pattern:?}: {error}"))
            })
            .collect::<Result<_, _>>()?;
        let uuids = raw
            .uuids
            .iter()
            .map(|text| Uuid::try_parse(text).map_err(|error| format!("bad uuid {text:?}: {error}")))
            .collect::<Result<_, _>>()?;
        Ok(Grant { who, rights, names, uuids })
    }

    fn selects(&self, name: &str, uuid: Uuid) -> bool {
        (self.names.is_empty() && self.uuids.is_empty())
            || self.uuids.contains(&uuid)
            || self.names.iter().any(|pattern| pattern.matches(name))
    }
}

impl Who {
    fn is(&self, identity: &Identity) -> bool {
        match (self, identity) {
            (Who::Anyone, _) => true,
            (Who::Uid(want), Identity::Unix { uid, .. }) => want == uid,
            (Who::Gid(want), Identity::Unix { gid, .. }) => want == gid,
            (Who::Subject(want), Identity::Certificate { subject, .. }) => want == subject,
            (Who::San(want), Identity::Certificate { sans, .. }) => sans.iter().any(|san| san == want),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(uid: u32, gid: u32) -> Identity {
        Identity::Unix { uid, gid, pid: 1 }
    }

    #[test]
    fn grants_add_up_and_every_right_includes_read() {
        let policy = Policy::parse(
            r#"
            [[grant]]
            uid = 1000
            allow = ["lifecycle"]
            names = ["web-*"]
            [[grant]]
            gid = 50
            allow = ["snapshot"]
            uuids = ["00000000-0000-0000-0000-000000000001"]
            [[grant]]
            subject = "CN=alice, O=rvirt"
            allow = ["all"]
            [[grant]]
            anyone = true
            allow = ["read"]
            names = ["public"]
            "#,
        )
        .unwrap();
        let one = Uuid::from_u128(1);
        let two = Uuid::from_u128(2);
        assert_eq!(policy.rights(&unix(1000, 1), "web-1", two), Rights::READ | Rights::LIFECYCLE);
        assert_eq!(
            policy.rights(&unix(1000, 50), "web-1", one),
            Rights::READ | Rights::LIFECYCLE | Rights::SNAPSHOT
        );
        assert_eq!(policy.rights(&unix(1000, 1), "db", two), Rights::empty());
        assert_eq!(policy.rights(&unix(7, 7), "public", two), Rights::READ);
        let alice = Identity::Certificate {
            subject: "CN=alice, O=rvirt".into(),
            sans: vec![],
            address: "127.0.0.1:1".parse().unwrap(),
        };
        assert_eq!(policy.rights(&alice, "anything", two), Rights::all());
        // Unix rules never match a certificate, and the reverse.
        let bob = Identity::Certificate {
            subject: "1000".into(),
            sans: vec![],
            address: "127.0.0.1:1".parse().unwrap(),
        };
        assert_eq!(policy.rights(&bob, "web-1", two), Rights::empty());
    }

    #[test]
    fn the_documented_example_policy_is_valid() {
        let policy = Policy::parse(include_str!("../../dist/policy.toml")).unwrap();
        assert_eq!(policy.len(), 3);
        assert_eq!(
            policy.rights(&unix(5, 1001), "web-1", Uuid::nil()),
            Rights::READ | Rights::LIFECYCLE | Rights::SNAPSHOT
        );
        assert_eq!(policy.rights(&unix(5, 1001), "db-1", Uuid::nil()), Rights::empty());
    }

    #[test]
    fn bad_policies_say_what_is_wrong() {
        let error = |text: &str| Policy::parse(text).unwrap_err();
        assert!(error("[[grant]]\nallow = ['read']").contains("names nobody"));
        assert!(error("[[grant]]\nuid = 1\ngid = 2\nallow = ['read']").contains("more than one"));
        assert!(error("[[grant]]\nuid = 1\nallow = ['fly']").contains("unknown right \"fly\""));
        assert!(error("[[grant]]\nuid = 1\nallow = []").contains("allows nothing"));
        assert!(error("[[grant]]\nuid = 1\nallow = ['read']\nnames = ['[']").contains("bad name pattern"));
        assert!(error("[[grant]]\nuid = 1\nallow = ['read']\nuuids = ['x']").contains("bad uuid"));
        assert!(error("[[grant]]\nuid = 1\nallow = ['read']\nwho = 3").contains("unknown field"));
        assert!(error(&"#".repeat(MAX_POLICY_BYTES + 1)).contains("at most"));
        assert!(
            error("[[grant]]\nuid = 1\nallow = ['read']\n[[grant]]\nuid = 2\nallow = ['x']")
                .starts_with("grant 2:")
        );
        assert!(Policy::parse("").unwrap().is_empty());
    }
}
