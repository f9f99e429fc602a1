//! Fingerprints: content digests of a source's logical data that do not depend on its
//! physical layout (row order, page layout, file mtimes).
//!
//! A fingerprint is a set of named parts (a table, a Redis database, a file), each with
//! a count and a digest, and one digest over all parts. Two fingerprints are compared
//! part by part, so a mismatch says which table, key space or file differs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Parts named with this suffix hold data that may legitimately vanish between backup
/// and restore (Redis keys with an expiry): a difference there is reported, not failed.
pub const ADVISORY_SUFFIX: &str = ":expiring";
/// Parts named with this prefix describe the schema, not the data.
pub const SCHEMA_PREFIX: &str = "schema:";
/// The count that goes with advisory parts.
pub const ADVISORY_COUNT: &str = "expiring_keys";

/// Whether a part or count name is advisory (see [`ADVISORY_SUFFIX`]).
pub fn is_advisory(name: &str) -> bool {
    name.ends_with(ADVISORY_SUFFIX) || name == ADVISORY_COUNT
}

/// The part of a tree's fingerprint (files, volumes) that holds the top directory's own
/// mode and owner. Its `digest` is the metadata itself, spelled out (`mode=755 uid=0
/// gid=0`), so a restore can give it back and a difference says what changed. No
/// entry's part can have this name: entry paths never start with `./`, and the only
/// directory part that does is the root's own `./`.
pub const TOP_DIR_PART: &str = "./ (top directory)";
/// The top directory's mtime (`mtime=SECONDS.NANOS`), restored like the rest but
/// advisory: a directory's mtime moves with any change of its entries, excluded ones
/// too, so a difference is reported, never failed (entries' mtimes are not compared
/// at all).
pub const TOP_DIR_MTIME_PART: &str = "./ (top directory mtime):expiring";

/// Parts added to fingerprints after manifests were first written. A manifest written
/// before a part existed does not have it; comparing against such a manifest leaves the
/// part out, so old backups still verify (their data is compared as it was then).
const LATER_PARTS: [&str; 2] = [TOP_DIR_PART, TOP_DIR_MTIME_PART];

/// One named part of a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartDigest {
    /// Rows, keys, or bytes, depending on the source kind.
    pub count: u64,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fingerprint {
    /// SHA-256 over every part, in name order.
    pub digest: String,
    pub parts: BTreeMap<String, PartDigest>,
}

impl Fingerprint {
    pub fn from_parts(parts: BTreeMap<String, PartDigest>) -> Self {
        let mut h = Sha256::new();
        for (name, part) in &parts {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(part.count.to_le_bytes());
            h.update(part.digest.as_bytes());
            h.update([b'\n']);
        }
        Fingerprint {
            digest: hex::encode(h.finalize()),
            parts,
        }
    }

    /// Human-readable differences from `expected` (the manifest) to `self` (what is
    /// there now) in the parts that must match; empty when they are equal.
    pub fn differences(&self, expected: &Fingerprint, unit: &str) -> Vec<String> {
        let this = self.comparable_with(expected);
        let (hard, advisory) = this.all_differences(expected, unit);
        if hard.is_empty() && advisory.is_empty() && this.digest != expected.digest {
            return vec![format!(
                "fingerprint {} differs from the backup's {}",
                short(&self.digest),
                short(&expected.digest)
            )];
        }
        hard
    }

    /// Whether the schema parts (named `schema:...`: the DDL, a database's defaults)
    /// differ from `expected`'s; `None` when `expected` has none (engines without a
    /// schema: Redis, files).
    pub fn schema_changed(&self, expected: &Fingerprint) -> Option<bool> {
        let schema = |f: &Fingerprint| -> BTreeMap<String, PartDigest> {
            f.parts
                .iter()
                .filter(|(n, _)| n.starts_with(SCHEMA_PREFIX))
                .map(|(n, p)| (n.clone(), p.clone()))
                .collect()
        };
        let want = schema(expected);
        if want.is_empty() {
            return None;
        }
        Some(schema(self) != want)
    }

    /// Differences in advisory parts only (see [`ADVISORY_SUFFIX`]).
    pub fn advisory_differences(&self, expected: &Fingerprint, unit: &str) -> Vec<String> {
        self.comparable_with(expected)
            .all_differences(expected, unit)
            .1
    }

    /// This fingerprint without the [`LATER_PARTS`] `expected` (an older manifest) does
    /// not have.
    fn comparable_with(&self, expected: &Fingerprint) -> std::borrow::Cow<'_, Fingerprint> {
        let newer = |name: &str| LATER_PARTS.contains(&name) && !expected.parts.contains_key(name);
        if !self.parts.keys().any(|n| newer(n)) {
            return std::borrow::Cow::Borrowed(self);
        }
        let parts = self
            .parts
            .iter()
            .filter(|(n, _)| !newer(n))
            .map(|(n, p)| (n.clone(), p.clone()))
            .collect();
        std::borrow::Cow::Owned(Fingerprint::from_parts(parts))
    }

    fn all_differences(&self, expected: &Fingerprint, unit: &str) -> (Vec<String>, Vec<String>) {
        let (mut hard, mut advisory) = (Vec::new(), Vec::new());
        if self.digest == expected.digest {
            return (hard, advisory);
        }
        let mut push = |name: &str, line: String| {
            if is_advisory(name) {
                advisory.push(line)
            } else {
                hard.push(line)
            }
        };
        for (name, want) in &expected.parts {
            match self.parts.get(name) {
                None => push(
                    name,
                    format!("{name}: missing (backup has {} {unit})", want.count),
                ),
                Some(got) if got.count != want.count => push(
                    name,
                    format!("{name}: {} {unit} in backup, {} now", want.count, got.count),
                ),
                // The top directory's part spells its metadata out: show both.
                Some(got)
                    if got.digest != want.digest
                        && (name == TOP_DIR_PART || name == TOP_DIR_MTIME_PART) =>
                {
                    push(
                        name,
                        format!("{name}: {} in backup, {} now", want.digest, got.digest),
                    )
                }
                Some(got) if got.digest != want.digest => push(
                    name,
                    format!(
                        "{name}: same {unit} count ({}) but different content",
                        got.count
                    ),
                ),
                Some(_) => {}
            }
        }
        for (name, got) in &self.parts {
            if !expected.parts.contains_key(name) {
                push(
                    name,
                    format!("{name}: not in the backup ({} {unit} now)", got.count),
                );
            }
        }
        (hard, advisory)
    }
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

/// An order-independent digest of a multiset of rows: the count plus the sum, modulo
/// 2^128, of each row's SHA-256 prefix. Summing (not XOR) keeps duplicate rows apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowSetDigest {
    count: u64,
    sum: u128,
}

impl RowSetDigest {
    pub fn add(&mut self, row: &[u8]) {
        let h = Sha256::digest(row);
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&h[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(prefix));
        self.count += 1;
    }

    pub fn merge(&mut self, other: RowSetDigest) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.count += other.count;
    }

    pub fn finish(self) -> PartDigest {
        PartDigest {
            count: self.count,
            digest: hex::encode(self.sum.to_be_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_order_does_not_matter_but_duplicates_do() {
        let mut a = RowSetDigest::default();
        let mut b = RowSetDigest::default();
        for r in ["x", "y", "z"] {
            a.add(r.as_bytes());
        }
        for r in ["z", "x", "y"] {
            b.add(r.as_bytes());
        }
        assert_eq!(a.finish(), b.finish());
        let mut c = a;
        c.add(b"x");
        c.add(b"x");
        assert_ne!(a.finish().digest, c.finish().digest);
    }

    #[test]
    fn differences_name_the_part() {
        let mut parts = BTreeMap::new();
        parts.insert(
            "public.users".to_string(),
            PartDigest {
                count: 3,
                digest: "aa".into(),
            },
        );
        parts.insert(
            "public.posts".to_string(),
            PartDigest {
                count: 5,
                digest: "bb".into(),
            },
        );
        let expected = Fingerprint::from_parts(parts.clone());
        parts.get_mut("public.users").unwrap().count = 2;
        parts.get_mut("public.posts").unwrap().digest = "cc".into();
        let got = Fingerprint::from_parts(parts);
        let diff = got.differences(&expected, "rows");
        assert_eq!(
            diff,
            vec![
                "public.posts: same rows count (5) but different content".to_string(),
                "public.users: 3 rows in backup, 2 now".to_string(),
            ]
        );
        assert!(expected.differences(&expected, "rows").is_empty());
    }

    #[test]
    fn a_part_added_later_is_compared_only_when_the_manifest_has_it() {
        let mut parts = BTreeMap::new();
        parts.insert(
            "a".to_string(),
            PartDigest {
                count: 1,
                digest: "aa".into(),
            },
        );
        let old_manifest = Fingerprint::from_parts(parts.clone());
        parts.insert(
            TOP_DIR_PART.to_string(),
            PartDigest {
                count: 0,
                digest: "mode=755 uid=0 gid=0".into(),
            },
        );
        let now = Fingerprint::from_parts(parts.clone());
        assert!(now.differences(&old_manifest, "bytes").is_empty());
        let new_manifest = now.clone();
        parts.get_mut(TOP_DIR_PART).unwrap().digest = "mode=700 uid=0 gid=0".into();
        let changed = Fingerprint::from_parts(parts);
        assert_eq!(changed.differences(&new_manifest, "bytes").len(), 1);
        // Data differences against an old manifest still show.
        let mut other = BTreeMap::new();
        other.insert(
            "a".to_string(),
            PartDigest {
                count: 1,
                digest: "bb".into(),
            },
        );
        assert_eq!(
            Fingerprint::from_parts(other)
                .differences(&old_manifest, "bytes")
                .len(),
            1
        );
    }

    #[test]
    fn advisory_parts_are_reported_apart() {
        let mut parts = BTreeMap::new();
        parts.insert(
            "db0".to_string(),
            PartDigest {
                count: 3,
                digest: "aa".into(),
            },
        );
        parts.insert(
            "db0:expiring".to_string(),
            PartDigest {
                count: 2,
                digest: "bb".into(),
            },
        );
        let expected = Fingerprint::from_parts(parts.clone());
        parts.get_mut("db0:expiring").unwrap().count = 1;
        let got = Fingerprint::from_parts(parts);
        assert!(got.differences(&expected, "keys").is_empty());
        assert_eq!(
            got.advisory_differences(&expected, "keys"),
            vec!["db0:expiring: 2 keys in backup, 1 now".to_string()]
        );
    }
}
