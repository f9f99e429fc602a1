//! What a notification says, the same for every channel: the stack, host, job,
//! verdict, what failed and the command to look closer. It is built from the run's
//! plain data only (never a secret, never log lines) and capped in size: a list of
//! failures past [`LIST_CAP`] bytes ends in "… and N more", and the text form past
//! [`TEXT_CAP`] bytes is cut with a marker naming the command that shows it all.

use drydock_domain::Verdict;
use serde::{Deserialize, Serialize};

use crate::outcome::Event;

/// The most bytes of the text form (title and body) of a notification.
pub const TEXT_CAP: usize = 4096;
/// The most bytes of one list (what failed, what recovered) in a notification.
pub const LIST_CAP: usize = 2048;
/// The most bytes of one line in a list.
pub const LINE_CAP: usize = 300;

/// One notification's content; stored as JSON in the outbox, so a restart sends the
/// same words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub event: Event,
    pub stack: String,
    pub host: String,
    pub job: String,
    /// The run's verdict (none for a start).
    pub verdict: Option<Verdict>,
    /// One line: `clinic@host1: backup failed (db/postgres)`.
    pub title: String,
    /// What failed, short lines, capped.
    pub failed: Vec<String>,
    /// Subjects that failed before and work again, capped.
    pub recovered: Vec<String>,
    /// The command that shows more.
    pub look_closer: String,
    /// RFC 3339 time of the run's end (or start).
    pub at: String,
}

impl Message {
    /// The message's text: title, what failed, what recovered, the command; at most
    /// [`TEXT_CAP`] bytes.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.title);
        if let Some(verdict) = self.verdict {
            out.push_str(&format!("verdict: {}\n", verdict_word(verdict)));
        }
        for (head, lines) in [
            ("what failed", &self.failed),
            ("recovered", &self.recovered),
        ] {
            if !lines.is_empty() {
                out.push_str(&format!("\n{head}:\n"));
                for line in lines {
                    out.push_str(&format!("- {line}\n"));
                }
            }
        }
        let tail = format!("\nlook closer: {}\n", self.look_closer);
        if out.len() + tail.len() <= TEXT_CAP {
            return out + &tail;
        }
        let marker = format!("\n… truncated; `{}` shows it all\n", self.look_closer);
        let keep = TEXT_CAP.saturating_sub(marker.len());
        cut(&mut out, keep);
        out + &marker
    }
}

/// The verdict as its JSON word (`could-not-run`).
pub fn verdict_word(verdict: Verdict) -> String {
    serde_json::to_value(verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `lines` with each line cut to [`LINE_CAP`] and the list to [`LIST_CAP`] bytes; the
/// lines left out are counted in a last "… and N more" line.
pub fn capped(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut used = 0;
    for (i, line) in lines.iter().enumerate() {
        let mut line = line.replace(['\r', '\n'], " ");
        if line.len() > LINE_CAP {
            cut(&mut line, LINE_CAP - 3);
            line.push('…');
        }
        if used + line.len() > LIST_CAP {
            out.push(format!("… and {} more", lines.len() - i));
            break;
        }
        used += line.len();
        out.push(line);
    }
    out
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(failed: Vec<String>) -> Message {
        Message {
            event: Event::Failure,
            stack: "clinic".into(),
            host: "host1".into(),
            job: "backup".into(),
            verdict: Some(Verdict::CouldNotRun),
            title: "clinic@host1: backup failed".into(),
            failed: capped(&failed),
            recovered: Vec::new(),
            look_closer: "drydock backups".into(),
            at: "2026-03-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_short_message_reads_whole() {
        let m = message(vec!["db/postgres: pg_dump exited 1".into()]);
        insta::assert_snapshot!(m.text(), @r"
        clinic@host1: backup failed
        verdict: could-not-run

        what failed:
        - db/postgres: pg_dump exited 1

        look closer: drydock backups
        ");
    }

    #[test]
    fn long_lists_and_lines_are_capped_with_a_marker() {
        let lines: Vec<String> = (0..500)
            .map(|i| format!("source-{i}: ü{}", "x".repeat(400)))
            .collect();
        let m = message(lines);
        assert!(
            m.failed.iter().all(|l| l.len() <= LINE_CAP + 3),
            "a line is capped"
        );
        let total: usize = m.failed.iter().map(String::len).sum();
        assert!(total <= LIST_CAP + 40, "{total}");
        assert!(
            m.failed.last().unwrap().starts_with("… and "),
            "{:?}",
            m.failed.last()
        );
        let text = m.text();
        assert!(text.len() <= TEXT_CAP, "{}", text.len());
        // Two capped lists still fit; a very long title is cut with the marker.
        let mut m = message(Vec::new());
        m.title = "é".repeat(3000);
        let text = m.text();
        assert!(text.len() <= TEXT_CAP, "{}", text.len());
        assert!(
            text.ends_with("… truncated; `drydock backups` shows it all\n"),
            "{text}"
        );
    }
}
