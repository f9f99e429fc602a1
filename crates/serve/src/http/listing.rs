//! The dashboard's backup listing (`drydock backups`): the one part of a page that
//! reads the repository, so it is kept and read again only after a run has ended.

use std::sync::Mutex;

use drydock_domain::Config;
use drydock_engine::list::BackupSummary;
use drydock_engine::RunContext;

/// The backup listing as of a number of ended runs.
#[derive(Default)]
pub struct Listing(Mutex<Option<(u64, Vec<BackupSummary>)>>);

impl Listing {
    /// The listing, read again when runs ended since it was read.
    pub fn current(&self, config: &Config, ended: u64) -> Vec<BackupSummary> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, backups)) = kept.as_ref() {
            if *at == ended {
                return backups.clone();
            }
        }
        // No repository yet (before the first backup) is an empty listing, not an error.
        let backups = drydock_engine::list::list(config, &RunContext::default())
            .map(|l| l.backups)
            .unwrap_or_default();
        *kept = Some((ended, backups.clone()));
        backups
    }
}
