//! `GET /runs/{id}`: one job run, its steps with their verdicts and the engine events
//! it emitted. The daemon looks the run up in its `jobs` table and passes it (or
//! `None` for an unknown id: a 404 page).

use askama::Template;
use drydock_engine::Redactor;
use drydock_render::words;

use crate::error::DashboardError;
use crate::inputs::{RunDetail, RUN_EVENTS};
use crate::pages::{not_found, render, Page};
use crate::view::{run_line, took, verdict_class, when, Inputs, RunLine};

#[derive(Debug, Clone)]
pub struct StepLine {
    pub name: String,
    pub started: String,
    pub took: String,
    pub verdict: &'static str,
    pub class: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct EventLine {
    pub at: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct RunData {
    pub stack: String,
    pub generated: String,
    pub run: RunLine,
    pub finished: String,
    pub steps: Vec<StepLine>,
    pub events: Vec<EventLine>,
    /// How many older events are not shown.
    pub dropped: usize,
}

pub fn build(inputs: &Inputs, detail: &RunDetail) -> RunData {
    let redact = Redactor::new(inputs.config);
    let skip = detail.events.len().saturating_sub(RUN_EVENTS);
    RunData {
        stack: inputs.config.stack.name.clone(),
        generated: when(inputs.now),
        run: run_line(&detail.run, &redact),
        finished: detail.run.finished_at.map_or("still running".into(), when),
        steps: detail
            .steps
            .iter()
            .map(|s| StepLine {
                name: s.name.clone(),
                started: when(s.started_at),
                took: took(s.started_at, s.finished_at),
                verdict: words::run_verdict(s.verdict),
                class: verdict_class(s.verdict),
                detail: redact.line(&s.detail),
            })
            .collect(),
        events: detail.events[skip..]
            .iter()
            .map(|e| EventLine {
                at: e.at.strftime("%H:%M:%S").to_string(),
                text: redact.line(&e.text),
            })
            .collect(),
        dropped: skip,
    }
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage<'a> {
    d: &'a RunData,
}

/// The handler of `GET /runs/{id}`: `run` is what the daemon's `jobs` table has for it.
pub fn run(inputs: &Inputs, id: i64, run: Option<&RunDetail>) -> Result<Page, DashboardError> {
    match run {
        Some(detail) => render(
            "run",
            &RunPage {
                d: &build(inputs, detail),
            },
            200,
        ),
        None => not_found(inputs, format!("no run {id}")),
    }
}
