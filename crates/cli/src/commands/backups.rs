//! `drydock backups`: lists the backups, what each holds and where its copies are.

use drydock_render as render;

use super::common::{context, load, output, Failure, Globals};

pub fn run(g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let list = drydock_engine::list::list(&config, &context(g))?;
    output(g, &list, render::backups);
    Ok(0)
}
