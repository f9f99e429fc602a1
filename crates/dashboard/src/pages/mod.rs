//! One module per page: its data (built from [`Inputs`](crate::Inputs)), its template
//! (`templates/PAGE.html`, checked at compile time) and the handler the daemon's route
//! calls, returning a [`Page`]. The CSS and the live-refresh script are embedded here
//! for every page.

pub mod overview;
pub mod run;
pub mod source;

use askama::Template;

use crate::error::DashboardError;

/// The stylesheet, inlined into every page (no request, no external font).
pub(crate) const CSS: &str = include_str!("../../assets/dashboard.css");
/// The live refresh: re-fetches the page when the events stream says something
/// happened. The page reads the same without it.
pub(crate) const LIVE_JS: &str = include_str!("../../assets/live.js");

/// The `Content-Security-Policy` to send with every page: nothing may be loaded from
/// anywhere, the inline style and script are the only ones, and the script may only
/// talk to this origin (the events stream and the page itself).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The `Content-Type` of every page.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// A rendered page and the HTTP status to answer it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// 200, or 404 for an unknown source or run.
    pub status: u16,
    pub html: String,
}

pub(crate) fn render(
    page: &'static str,
    t: &impl Template,
    status: u16,
) -> Result<Page, DashboardError> {
    Ok(Page {
        status,
        html: t
            .render()
            .map_err(|source| DashboardError::Template { page, source })?,
    })
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFound {
    d: NotFoundData,
}

struct NotFoundData {
    stack: String,
    generated: String,
    what: String,
}

/// The 404 page: what was asked for, and the way back.
pub fn not_found(inputs: &crate::Inputs, what: String) -> Result<Page, DashboardError> {
    render(
        "not found",
        &NotFound {
            d: NotFoundData {
                stack: inputs.config.stack.name.clone(),
                generated: crate::view::when(inputs.now),
                what,
            },
        },
        404,
    )
}
