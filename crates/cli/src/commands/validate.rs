//! `drydock validate`: checks the config (every error at once) and warns about data
//! paths that do not exist and servers it cannot reach.

use clap::Args;
use serde::Serialize;

use super::common::{load, output, Failure, Globals};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Do not try to reach the database servers (paths are still checked).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Serialize)]
struct Valid {
    ok: bool,
    file: String,
    services: usize,
    sources: usize,
    warnings: Vec<String>,
}

pub fn run(args: &ValidateArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let v = Valid {
        ok: true,
        file: g.config.display().to_string(),
        services: config.services.len(),
        sources: config.sources().count(),
        warnings: drydock_engine::validate::warnings(&config, args.offline),
    };
    output(g, &v, |v| {
        let mut text: String = v
            .warnings
            .iter()
            .map(|w| format!("warning: {w}\n"))
            .collect();
        text += &format!(
            "{}: valid ({} services, {} data sources)\n",
            v.file, v.services, v.sources
        );
        text
    });
    Ok(0)
}
