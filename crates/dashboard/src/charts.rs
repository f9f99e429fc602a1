//! Size and duration over time as inline SVG, computed here: no chart script, so the
//! charts show without JavaScript and cost no request. A chart is a line over time
//! with its scale written on it (the highest value, the first and last date); more
//! points than [`MAX_POINTS`] are merged (each kept point is the largest of its group,
//! so a spike is not averaged away).

use std::fmt::Write;

use jiff::Timestamp;

/// Points drawn at most: ~90 days of daily backups at full resolution.
pub const MAX_POINTS: usize = 180;

const W: f64 = 560.0;
const H: f64 = 150.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// Escapes text put into the SVG (it is inserted into the page unescaped).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn merge(points: &[(Timestamp, f64)]) -> Vec<(Timestamp, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let group = points.len().div_ceil(MAX_POINTS);
    points
        .chunks(group)
        .map(|c| {
            c.iter()
                .copied()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .expect("chunks are not empty")
        })
        .collect()
}

/// A line chart of `points` (any order), labelled `title`, its values shown by `fmt`.
/// With no point it says so instead of drawing an empty frame.
pub fn line_chart(title: &str, points: &[(Timestamp, f64)], fmt: impl Fn(f64) -> String) -> String {
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| p.0);
    let pts = merge(&sorted);
    let mut svg = String::with_capacity(512 + pts.len() * 16);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">no backup yet</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return svg;
    };
    let max = pts.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let t0 = first.0.as_second() as f64;
    let span = (last.0.as_second() as f64 - t0).max(1.0);
    let x = |t: Timestamp| LEFT + (t.as_second() as f64 - t0) / span * (W - LEFT - RIGHT);
    let y = |v: f64| {
        let frac = if max > 0.0 { v / max } else { 0.0 };
        TOP + (1.0 - frac) * (H - TOP - BOTTOM)
    };
    let base = H - BOTTOM;
    // Axes, then the scale: the highest value and zero, the first and last day.
    let _ = write!(
        svg,
        r#"<path class="axis" d="M{LEFT} {TOP}V{base}H{}"/><text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{base}" text-anchor="end">0</text><text x="{LEFT}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
        W - RIGHT,
        LEFT - 4.0,
        TOP + 8.0,
        esc(&fmt(max)),
        LEFT - 4.0,
        H - 6.0,
        first.0.strftime("%Y-%m-%d"),
        W - RIGHT,
        H - 6.0,
        last.0.strftime("%Y-%m-%d"),
    );
    svg.push_str(r#"<polyline class="line" points=""#);
    for (i, p) in pts.iter().enumerate() {
        if i > 0 {
            svg.push(' ');
        }
        let _ = write!(svg, "{:.1},{:.1}", x(p.0), y(p.1));
    }
    let _ = write!(
        svg,
        r#""/><circle class="dot" cx="{:.1}" cy="{:.1}" r="3"><title>{}: {}</title></circle></svg>"#,
        x(last.0),
        y(last.1),
        last.0.strftime("%Y-%m-%d %H:%M UTC"),
        esc(&fmt(last.1))
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> Timestamp {
        Timestamp::from_second(1_764_547_200 + n * 86_400).unwrap()
    }

    #[test]
    fn scale_and_points_are_drawn() {
        let pts: Vec<_> = (0..10).map(|d| (day(d), d as f64 * 10.0)).collect();
        let svg = line_chart("size <of> stack", &pts, |v| format!("{v} B"));
        assert!(svg.contains("size &lt;of&gt; stack"), "{svg}");
        assert!(svg.contains(">90 B<"), "{svg}");
        assert!(
            svg.contains("2025-12-01") && svg.contains("2025-12-10"),
            "{svg}"
        );
        // The highest point is at the top of the plot, the lowest on the base line.
        assert!(
            svg.contains(&format!("{LEFT:.1},{:.1}", H - BOTTOM)),
            "{svg}"
        );
        assert!(svg.contains(&format!("{:.1},{TOP:.1}", W - RIGHT)), "{svg}");
    }

    #[test]
    fn many_points_are_merged_keeping_peaks() {
        let mut pts: Vec<_> = (0..2000).map(|d| (day(d), 1.0)).collect();
        pts[777].1 = 50.0;
        let svg = line_chart("t", &pts, |v| format!("{v}"));
        let drawn = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(drawn.split(' ').count() <= MAX_POINTS);
        assert!(svg.contains(">50<"), "the spike sets the scale: {svg}");
    }

    #[test]
    fn no_points_says_so() {
        assert!(line_chart("t", &[], |v| format!("{v}")).contains("no backup yet"));
    }
}
