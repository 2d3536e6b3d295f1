//! A reader of the Prometheus text exposition format, as far as
//! [`spate_engine::PrometheusExporter::render`] writes it: `# TYPE` lines and
//! samples `name{label="value",...} value`, label values with `\\`, `\"` and
//! `\n` escapes. Lines that do not parse are left out.

use std::collections::HashMap;

/// The type a `# TYPE` line gives a family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `summary`: quantile lines, `_sum`, `_count`.
    Summary,
    /// `histogram`: `_bucket` lines, `_sum`, `_count`.
    Histogram,
    /// Anything else, or no `# TYPE` line.
    Untyped,
}

/// One sample line of the Prometheus text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The family (`x` for `x_count` of summary `x`).
    pub family: String,
    /// The family's type.
    pub kind: Kind,
    /// The sample's own name.
    pub name: String,
    /// Its labels, in order.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// The samples of a Prometheus text exposition, with the family and type their
/// `# TYPE` line gave (lines that do not parse are left out).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut types: HashMap<&str, Kind> = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                let kind = match kind {
                    "counter" => Kind::Counter,
                    "gauge" => Kind::Gauge,
                    "summary" => Kind::Summary,
                    "histogram" => Kind::Histogram,
                    _ => Kind::Untyped,
                };
                types.insert(name, kind);
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, labels, value)) = parse_sample(line) else {
            continue;
        };
        let (family, kind) = match types.get(name) {
            Some(kind) => (name, *kind),
            None => ["_count", "_sum", "_bucket"]
                .iter()
                .find_map(|suffix| {
                    let base = name.strip_suffix(suffix)?;
                    types
                        .get(base)
                        .filter(|k| matches!(k, Kind::Summary | Kind::Histogram))
                        .map(|k| (base, *k))
                })
                .unwrap_or((name, Kind::Untyped)),
        };
        out.push(Sample {
            family: family.to_string(),
            kind,
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

/// Label names and values of a sample, in order.
pub type Labels = Vec<(String, String)>;

/// `name{k="v",...} value` (labels optional, a timestamp after the value
/// ignored).
fn parse_sample(line: &str) -> Option<(&str, Labels, f64)> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let close = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i,
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        };
        rest = &inner[close + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    if name.is_empty() {
        return None;
    }
    Some((name, labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_get_their_family_and_type() {
        let text = "# HELP x_seconds help\n# TYPE x_seconds summary\nx_seconds{quantile=\"0.5\"} 0.1\nx_seconds_sum 3\nx_seconds_count 30\n# TYPE y_total counter\ny_total{a=\"1\",b=\"2\"} 7 1700000000000\nz 1e3\n";
        let samples = parse(text);
        let summary: Vec<(&str, &str, Kind)> = samples
            .iter()
            .map(|s| (s.family.as_str(), s.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            summary,
            [
                ("x_seconds", "x_seconds", Kind::Summary),
                ("x_seconds", "x_seconds_sum", Kind::Summary),
                ("x_seconds", "x_seconds_count", Kind::Summary),
                ("y_total", "y_total", Kind::Counter),
                ("z", "z", Kind::Untyped),
            ]
        );
        assert_eq!(
            samples[0].labels,
            [("quantile".to_string(), "0.5".to_string())]
        );
        assert_eq!(samples[3].value, 7.0, "the timestamp is not the value");
        assert_eq!(samples[3].labels.len(), 2);
        assert_eq!(samples[4].value, 1000.0);
    }

    #[test]
    fn escapes_and_broken_lines() {
        let samples = parse("a{v=\"x\\\\y\\\"z\\n\"} 1\nb{v=\"open 2\nc{v=x} 3\nd 4\n");
        assert_eq!(samples.len(), 2, "{samples:?}");
        assert_eq!(samples[0].labels[0].1, "x\\y\"z\n");
        assert_eq!(samples[1].name, "d");
    }
}
