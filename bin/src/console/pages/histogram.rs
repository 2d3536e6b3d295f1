//! The search page's histogram: event counts over time, one bar per
//! bucket, stacked by severity, drawn as inline SVG on the server (no
//! chart library, no script). Each bar segment has a `<title>` (its
//! bucket, severity and count) for pointer and screen-reader users.

use std::collections::BTreeMap;

use super::layout::{esc, time};

/// Severities bottom to top, with their CSS class.
pub const SEVERITIES: [(&str, &str); 4] = [
    ("INFO", "sev-info"),
    ("WARNING", "sev-warning"),
    ("ERROR", "sev-error"),
    ("CRITICAL", "sev-critical"),
];

/// Buckets of a range: how many, and how wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    /// Start of the first bucket, UTC milliseconds (a multiple of `width_ms`).
    pub start_ms: i64,
    /// Width of one bucket, milliseconds.
    pub width_ms: i64,
    /// Number of buckets.
    pub count: usize,
}

impl Buckets {
    /// About 60 buckets of a round width covering `[since_ms, until_ms)`.
    pub fn covering(since_ms: i64, until_ms: i64) -> Self {
        const ROUND: [i64; 12] = [
            1_000, 5_000, 10_000, 15_000, 30_000, 60_000, 300_000, 600_000, 900_000, 1_800_000,
            3_600_000, 10_800_000,
        ];
        let span = (until_ms - since_ms).max(1);
        let width_ms = ROUND
            .iter()
            .copied()
            .find(|w| span / w <= 60)
            .unwrap_or(21_600_000);
        let start_ms = since_ms.div_euclid(width_ms) * width_ms;
        let count = ((until_ms - start_ms + width_ms - 1) / width_ms).max(1) as usize;
        Buckets {
            start_ms,
            width_ms,
            count,
        }
    }
}

/// Counts by bucket start and severity, drawn over `buckets`.
pub fn svg(buckets: Buckets, counts: &BTreeMap<(i64, String), u64>) -> String {
    const W: f64 = 960.0;
    const H: f64 = 180.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 22.0;
    let mut totals = vec![0u64; buckets.count];
    for ((start, _), n) in counts {
        if let Some(i) = index(buckets, *start) {
            totals[i] += n;
        }
    }
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let total: u64 = totals.iter().sum();
    let plot_w = W - LEFT;
    let plot_h = H - BOTTOM;
    let bar_w = plot_w / buckets.count as f64;
    let mut out = format!(
        r#"<svg id="histogram" viewBox="0 0 {W} {H}" role="img" aria-labelledby="histogram-title" preserveAspectRatio="none"><title id="histogram-title">{total} events over time, stacked by severity</title>"#
    );
    // Axis: the highest count, zero, the first and last bucket's time.
    out.push_str(&format!(
        r#"<text class="axis" x="{x}" y="12" text-anchor="end">{max}</text><text class="axis" x="{x}" y="{y0}" text-anchor="end">0</text><line class="axis-line" x1="{LEFT}" y1="{plot_h}" x2="{W}" y2="{plot_h}"/>"#,
        x = LEFT - 4.0,
        y0 = plot_h,
    ));
    out.push_str(&format!(
        r#"<text class="axis" x="{LEFT}" y="{y}">{first}</text><text class="axis" x="{W}" y="{y}" text-anchor="end">{last}</text>"#,
        y = H - 6.0,
        first = esc(&time(buckets.start_ms)),
        last = esc(&time(
            buckets.start_ms + buckets.width_ms * buckets.count as i64
        )),
    ));
    for i in 0..buckets.count {
        let start = buckets.start_ms + buckets.width_ms * i as i64;
        let mut y = plot_h;
        for (severity, class) in SEVERITIES {
            let n = counts
                .get(&(start, severity.to_string()))
                .copied()
                .unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = (n as f64 / max as f64 * (plot_h - 16.0)).max(1.0);
            y -= h;
            out.push_str(&format!(
                r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}"><title>{t}: {n} {severity}</title></rect>"#,
                x = LEFT + bar_w * i as f64 + 0.5,
                w = (bar_w - 1.0).max(0.5),
                t = esc(&time(start)),
            ));
        }
    }
    out.push_str("</svg>");
    out.push_str(r#"<p class="legend">"#);
    for (severity, class) in SEVERITIES {
        out.push_str(&format!(
            r#"<span class="swatch {class}"></span>{severity} "#
        ));
    }
    out.push_str("</p>");
    out
}

fn index(buckets: Buckets, start: i64) -> Option<usize> {
    let i = (start - buckets.start_ms).div_euclid(buckets.width_ms);
    (0..buckets.count as i64).contains(&i).then_some(i as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_get_about_sixty_round_buckets() {
        let b = Buckets::covering(1_000_000, 1_000_000 + 3_600_000);
        assert_eq!(b.width_ms, 60_000);
        assert_eq!(b.start_ms % 60_000, 0);
        assert!((60..=61).contains(&b.count), "{b:?}");
        let week = Buckets::covering(0, 7 * 86_400_000);
        assert_eq!(week.width_ms, 10_800_000);
        assert_eq!(week.count, 56);
    }

    #[test]
    fn bars_stack_by_severity() {
        let b = Buckets {
            start_ms: 0,
            width_ms: 1000,
            count: 3,
        };
        let mut counts = BTreeMap::new();
        counts.insert((1000, "INFO".to_string()), 4);
        counts.insert((1000, "ERROR".to_string()), 2);
        counts.insert((2000, "CRITICAL".to_string()), 1);
        counts.insert((9000, "INFO".to_string()), 100); // outside: not drawn
        let svg = svg(b, &counts);
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(svg.contains(r#"class="sev-error""#));
        assert!(svg.contains(": 4 INFO</title>"));
        // The total and the scale count the drawn buckets only.
        assert!(
            svg.contains(">7 events over time, stacked by severity<"),
            "{svg}"
        );
        assert!(svg.contains(r#"text-anchor="end">6</text>"#), "{svg}");
    }
}
