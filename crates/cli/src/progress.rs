//! Renders engine events: progress bars on a terminal, nothing but warnings (as log
//! lines) in pipes or with `--json`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use drydock_domain::{Event, EventSink};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Bars on stderr, one per source.
pub struct TerminalProgress {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl TerminalProgress {
    pub fn new() -> Self {
        TerminalProgress {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl EventSink for TerminalProgress {
    fn emit(&self, event: Event) {
        let mut bars = self.bars.lock().unwrap();
        match event {
            Event::SourceStarted {
                source,
                kind,
                step,
                total_bytes,
            } => {
                let bar = match total_bytes {
                    Some(total) if total > 0 => {
                        let b = self.multi.add(ProgressBar::new(total));
                        b.set_style(
                            ProgressStyle::with_template("{prefix:>24} {msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                                .unwrap()
                                .progress_chars("=> "),
                        );
                        b
                    }
                    _ => {
                        let b = self.multi.add(ProgressBar::new_spinner());
                        b.set_style(
                            ProgressStyle::with_template(
                                "{prefix:>24} {msg:10} {spinner} {bytes} {bytes_per_sec}",
                            )
                            .unwrap(),
                        );
                        b
                    }
                };
                bar.enable_steady_tick(Duration::from_millis(120));
                bar.set_prefix(source.clone());
                bar.set_message(format!("{step} {kind}"));
                bars.insert(source, bar);
            }
            Event::Progress { source, bytes } => {
                if let Some(b) = bars.get(&source) {
                    b.set_position(bytes);
                }
            }
            Event::SourceFinished {
                source,
                ok,
                message,
                duration_ms,
            } => {
                if let Some(b) = bars.remove(&source) {
                    b.set_style(ProgressStyle::with_template("{prefix:>24} {msg}").unwrap());
                    let mark = if ok { "ok" } else { "FAILED" };
                    b.finish_with_message(format!(
                        "{mark} ({:.1} s) {message}",
                        duration_ms as f64 / 1000.0
                    ));
                }
            }
            Event::Step { message } => {
                let _ = self.multi.println(format!("- {message}"));
            }
            Event::Warning { message } => {
                let _ = self.multi.println(format!("warning: {message}"));
            }
            Event::Started { .. } => {}
        }
    }
}

/// For pipes and `--json`: warnings become log lines, the rest is quiet.
pub struct LogOnly;

impl EventSink for LogOnly {
    fn emit(&self, event: Event) {
        match event {
            Event::Warning { message } => tracing::warn!("{message}"),
            Event::Step { message } => tracing::info!("{message}"),
            Event::SourceFinished {
                source,
                ok,
                message,
                duration_ms,
            } => {
                tracing::info!(source, ok, duration_ms, "{message}")
            }
            _ => {}
        }
    }
}
