//! Levels in the headers of plain-text lines, decoded and classified as the
//! decode stage does it, over the corpus `tests/data/header_levels.txt`:
//! formats whose level sits after a fixed header of several fields (node ids,
//! two timestamps, facility and subsystem names), written after their public
//! documentation. The level in the header must win over keywords in the
//! message.

use spate_operators::classify::{Classifier, RowInput};
use spate_operators::decode::{DecodeContext, DecoderConfig, LineDecoder};
use spate_operators::event::{EventBatch, Severity};

const CORPUS: &str = include_str!("data/header_levels.txt");

/// The corpus lines with their expected severity.
fn corpus() -> Vec<(Severity, &'static str)> {
    CORPUS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (expected, line) = l.split_once('\t').expect("<severity> TAB <line>");
            let severity = Severity::ALL
                .into_iter()
                .find(|s| s.as_str() == expected)
                .unwrap_or_else(|| panic!("unknown severity {expected:?}"));
            (severity, line)
        })
        .collect()
}

#[test]
fn levels_in_fixed_headers_win_over_message_keywords() {
    let corpus = corpus();
    assert!(corpus.len() >= 30, "{} lines", corpus.len());
    let mut input = corpus
        .iter()
        .map(|(_, l)| *l)
        .collect::<Vec<_>>()
        .join("\n");
    input.push('\n');
    let mut decoder = LineDecoder::new(DecoderConfig::default(), Classifier::default());
    let ctx = DecodeContext::new("file:/var/log/corpus.log", 1_764_154_800_000);
    let (mut out, mut dead) = (EventBatch::default(), Vec::new());
    let stats = decoder.decode_chunk(input.as_bytes(), 0, &ctx, &mut out, &mut dead);
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(stats.events, corpus.len());
    let wrong: Vec<String> = corpus
        .iter()
        .zip(&out.severity)
        .filter(|((expected, _), got)| expected != *got)
        .map(|((expected, line), got)| format!("{got:?} instead of {expected:?}: {line}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_corpus_disagrees_with_keywords_alone() {
    // Most lines carry keywords contrary to their level, so the test above
    // would fail if the keywords decided: classified as a message without a
    // level, most come out differently.
    let classifier = Classifier::default();
    let corpus = corpus();
    let differ = corpus
        .iter()
        .filter(|(expected, line)| {
            let row = RowInput {
                message: line,
                ..RowInput::default()
            };
            classifier.classify(&row).severity != *expected
        })
        .count();
    assert!(differ * 2 > corpus.len(), "{differ} of {}", corpus.len());
}
