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
/// The count that goes with advisory parts.
pub const ADVISORY_COUNT: &str = "expiring_keys";

/// Whether a part or count name is advisory (see [`ADVISORY_SUFFIX`]).
pub fn is_advisory(name: &str) -> bool {
    name.ends_with(ADVISORY_SUFFIX) || name == ADVISORY_COUNT
}

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
        let (hard, advisory) = self.all_differences(expected, unit);
        if hard.is_empty() && advisory.is_empty() && self.digest != expected.digest {
            return vec![format!(
                "fingerprint {} differs from the backup's {}",
                short(&self.digest),
                short(&expected.digest)
            )];
        }
        hard
    }

    /// Differences in advisory parts only (see [`ADVISORY_SUFFIX`]).
    pub fn advisory_differences(&self, expected: &Fingerprint, unit: &str) -> Vec<String> {
        self.all_differences(expected, unit).1
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
