//! `drydock status`: one screen of restores owed, health, per source the last backup
//! and its copies, RPO against its target, the last drill and retention.

use drydock_render as render;

use super::common::{context, load, output, Failure, Globals};

pub fn run(g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::status::status(&config, &context(g))?;
    output(g, &report, render::status);
    Ok(0)
}
