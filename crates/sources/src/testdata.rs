//! The test data set `drydock populate` writes into a source, and the measures that
//! verify it (step 5 of the readiness routine): three kinds of data with relationships — users, their
//! projects, the projects' files — over 1 MB, generated deterministically from a seed,
//! so the same seed always gives the same bytes and the same expected measures.
//!
//! Every engine stores the same logical set its own way (tables with foreign keys,
//! Redis hashes with index sets, a directory tree with JSON records) under a
//! `_drydock_test` / `.drydock-test` name that cannot collide with application data,
//! and measures it back with the same "verification query set" ([`TestMeasures`]):
//! counts per kind, orphans (a project without its owner, a file without its project),
//! total content bytes and a digest over every record. A restore that brought the set
//! back equals [`TestData::expected`] field for field.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Rows of the relational stores and prefixes of the others.
pub const SQL_USERS: &str = "_drydock_test_users";
pub const SQL_PROJECTS: &str = "_drydock_test_projects";
pub const SQL_FILES: &str = "_drydock_test_files";
pub const REDIS_PREFIX: &str = "_drydock:test:";
pub const DIR_NAME: &str = ".drydock-test";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub content: Vec<u8>,
}

/// One generated test data set.
#[derive(Debug, Clone)]
pub struct TestData {
    pub seed: u64,
    pub users: Vec<User>,
    pub projects: Vec<Project>,
    pub files: Vec<FileRecord>,
}

/// The verification query set's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestMeasures {
    pub users: u64,
    pub projects: u64,
    pub files: u64,
    /// Projects whose owner is not among the users.
    pub orphan_projects: u64,
    /// Files whose project is not among the projects.
    pub orphan_files: u64,
    pub content_bytes: u64,
    /// SHA-256 over every record in id order (see [`digest`]).
    pub digest: String,
}

impl TestMeasures {
    /// `users: 50 expected, 48 found`, one per field that differs.
    pub fn differences(&self, expected: &TestMeasures) -> Vec<String> {
        let mut out = Vec::new();
        let pairs = [
            ("users", self.users, expected.users),
            ("projects", self.projects, expected.projects),
            ("files", self.files, expected.files),
            (
                "orphan projects",
                self.orphan_projects,
                expected.orphan_projects,
            ),
            ("orphan files", self.orphan_files, expected.orphan_files),
            ("content bytes", self.content_bytes, expected.content_bytes),
        ];
        for (what, got, want) in pairs {
            if got != want {
                out.push(format!("{what}: {want} expected, {got} found"));
            }
        }
        if self.digest != expected.digest {
            out.push(format!(
                "digest of every record: {} expected, {} found",
                short(&expected.digest),
                short(&self.digest)
            ));
        }
        out
    }
}

fn short(d: &str) -> &str {
    &d[..d.len().min(12)]
}

/// A small deterministic generator (splitmix64): the same seed, the same data, on
/// every machine and version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const WORDS: &[&str] = &[
    "alpha", "harbor", "clinic", "ledger", "orbit", "maple", "signal", "copper", "ember", "quartz",
    "meadow", "pixel", "summit", "tundra", "violet", "willow", "zephyr", "atlas",
];

/// Bytes per file: big enough that a few hundred files pass 1 MB, small enough for any
/// default packet size.
pub const FILE_BYTES: usize = 16 * 1024;
pub const USERS: i64 = 50;
pub const PROJECTS_PER_USER: i64 = 3;

impl TestData {
    /// At least `min_bytes` of file content (rounded up to whole files).
    pub fn generate(seed: u64, min_bytes: u64) -> TestData {
        let mut rng = Rng(seed);
        let users: Vec<User> = (1..=USERS)
            .map(|id| {
                let first = WORDS[rng.below(WORDS.len() as u64) as usize];
                User {
                    id,
                    name: format!("{first} user {id}"),
                    email: format!("user{id}.{first}@test.drydock.invalid"),
                }
            })
            .collect();
        let projects: Vec<Project> = (1..=USERS * PROJECTS_PER_USER)
            .map(|id| Project {
                id,
                owner_id: 1 + (id - 1) % USERS,
                name: format!(
                    "{} {} project {id}",
                    WORDS[rng.below(WORDS.len() as u64) as usize],
                    WORDS[rng.below(WORDS.len() as u64) as usize]
                ),
            })
            .collect();
        let count = min_bytes.div_ceil(FILE_BYTES as u64).max(1) as i64;
        let files = (1..=count)
            .map(|id| {
                // Half text (compresses), half noise (does not): like real uploads.
                let mut content = Vec::with_capacity(FILE_BYTES);
                while content.len() < FILE_BYTES / 2 {
                    let w = WORDS[rng.below(WORDS.len() as u64) as usize];
                    content.extend_from_slice(w.as_bytes());
                    content.push(b' ');
                }
                content.truncate(FILE_BYTES / 2);
                while content.len() < FILE_BYTES {
                    content.extend_from_slice(&rng.next().to_le_bytes());
                }
                content.truncate(FILE_BYTES);
                FileRecord {
                    id,
                    project_id: 1 + (id - 1) % (USERS * PROJECTS_PER_USER),
                    name: format!("file-{id:05}.bin"),
                    content,
                }
            })
            .collect();
        TestData {
            seed,
            users,
            projects,
            files,
        }
    }

    /// What measuring this set must give.
    pub fn expected(&self) -> TestMeasures {
        TestMeasures {
            users: self.users.len() as u64,
            projects: self.projects.len() as u64,
            files: self.files.len() as u64,
            orphan_projects: 0,
            orphan_files: 0,
            content_bytes: self.files.iter().map(|f| f.content.len() as u64).sum(),
            digest: digest(&self.users, &self.projects, &self.files),
        }
    }
}

/// The digest of a test data set: every user, project and file in id order, each field
/// length-prefixed so no two different sets hash alike.
pub fn digest(users: &[User], projects: &[Project], files: &[FileRecord]) -> String {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    let mut users: Vec<&User> = users.iter().collect();
    users.sort_by_key(|u| u.id);
    for u in users {
        field(&u.id.to_le_bytes());
        field(u.name.as_bytes());
        field(u.email.as_bytes());
    }
    let mut projects: Vec<&Project> = projects.iter().collect();
    projects.sort_by_key(|p| p.id);
    for p in projects {
        field(&p.id.to_le_bytes());
        field(&p.owner_id.to_le_bytes());
        field(p.name.as_bytes());
    }
    let mut files: Vec<&FileRecord> = files.iter().collect();
    files.sort_by_key(|f| f.id);
    for f in files {
        field(&f.id.to_le_bytes());
        field(&f.project_id.to_le_bytes());
        field(f.name.as_bytes());
        field(&f.content);
    }
    hex::encode(h.finalize())
}

/// Measures records read back from any store.
pub fn measure(users: &[User], projects: &[Project], files: &[FileRecord]) -> TestMeasures {
    let user_ids: std::collections::BTreeSet<i64> = users.iter().map(|u| u.id).collect();
    let project_ids: std::collections::BTreeSet<i64> = projects.iter().map(|p| p.id).collect();
    TestMeasures {
        users: users.len() as u64,
        projects: projects.len() as u64,
        files: files.len() as u64,
        orphan_projects: projects
            .iter()
            .filter(|p| !user_ids.contains(&p.owner_id))
            .count() as u64,
        orphan_files: files
            .iter()
            .filter(|f| !project_ids.contains(&f.project_id))
            .count() as u64,
        content_bytes: files.iter().map(|f| f.content.len() as u64).sum(),
        digest: digest(users, projects, files),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_set_and_another_seed_another() {
        let a = TestData::generate(7, 1 << 20);
        let b = TestData::generate(7, 1 << 20);
        let c = TestData::generate(8, 1 << 20);
        assert_eq!(a.expected(), b.expected());
        assert_ne!(a.expected().digest, c.expected().digest);
        let m = a.expected();
        assert!(m.content_bytes >= 1 << 20, "over 1 MB");
        assert_eq!((m.users, m.projects), (50, 150));
        assert_eq!(m, measure(&a.users, &a.projects, &a.files));
    }

    #[test]
    fn a_lost_file_or_a_broken_relationship_is_named() {
        let a = TestData::generate(1, 100_000);
        let mut files = a.files.clone();
        files.pop();
        let mut projects = a.projects.clone();
        projects[0].owner_id = 999;
        let m = measure(&a.users, &projects, &files);
        let diff = m.differences(&a.expected());
        assert!(
            diff.iter().any(|d| d == "files: 7 expected, 6 found"),
            "{diff:?}"
        );
        assert!(
            diff.iter()
                .any(|d| d == "orphan projects: 0 expected, 1 found"),
            "{diff:?}"
        );
        assert!(diff.iter().any(|d| d.starts_with("digest")), "{diff:?}");
    }
}
