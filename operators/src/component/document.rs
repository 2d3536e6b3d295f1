//! Reading a TOML configuration document with its layout kept, so that every
//! error names the key path and the line.
//!
//! [`ConfigDocument`] parses the text once with spans, takes out the sections
//! of the registered source kinds (each read by its kind), and reads what is
//! left into the program's own configuration struct. [`KeyLines`] remembers
//! the line of every key, so that errors found later, by validation, are
//! located too.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::{ConfigError, ConfiguredSource, SourceRegistry};

/// Unit suffixes the keys of durations and sizes had before they took units
/// in their values (`max_file_age_secs`, `chunk_kib`); still accepted.
const OLD_UNIT_SUFFIXES: &[&str] = &["secs", "ms", "hours", "days", "bytes", "kib", "mib"];

/// The line of every key in a document (`lake.s3.bucket` → 12).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLines {
    lines: BTreeMap<String, usize>,
}

impl KeyLines {
    /// The line of `key`, or of its nearest enclosing table that the document
    /// names (a key left at its default is not in the file).
    pub fn line_of(&self, key: &str) -> Option<usize> {
        let mut key = key;
        loop {
            if let Some(line) = self.lines.get(key) {
                return Some(*line);
            }
            // The key's older spelling with its unit (`size_secs` for `size`).
            if let Some(line) = OLD_UNIT_SUFFIXES
                .iter()
                .find_map(|suffix| self.lines.get(&format!("{key}_{suffix}")))
            {
                return Some(*line);
            }
            let cut = key.rfind(['.', '['])?;
            key = &key[..cut];
        }
    }

    /// `error` with its line, when it has none and its key is in the document.
    pub fn locate(&self, error: ConfigError) -> ConfigError {
        match (error.line(), self.line_of(error.key())) {
            (None, Some(line)) => error.at_line(line),
            _ => error,
        }
    }
}

/// A parsed configuration document.
pub struct ConfigDocument<'t> {
    text: &'t str,
    root: Spanned<DeTable<'t>>,
    lines: KeyLines,
}

impl<'t> ConfigDocument<'t> {
    /// Parses `text`; a syntax error names its line.
    pub fn parse(text: &'t str) -> Result<Self, ConfigError> {
        let root = DeTable::parse(text).map_err(|e| toml_error(text, "", &e))?;
        let mut lines = KeyLines::default();
        record_lines(text, "", root.get_ref(), &mut lines.lines);
        Ok(ConfigDocument { text, root, lines })
    }

    /// The line of every key.
    pub fn lines(&self) -> &KeyLines {
        &self.lines
    }

    /// Takes the sections of the kinds in `registry` out of the document
    /// (`[sources.<kind>]`, and a kind's legacy top-level section), each read
    /// by its kind. A `[sources.<name>]` no kind is registered for is an error.
    pub fn take_sources(
        &mut self,
        registry: &SourceRegistry,
    ) -> Result<Vec<ConfiguredSource>, ConfigError> {
        let text = self.text;
        let root = self.root.get_mut();
        let mut sections: Vec<(String, Spanned<DeValue<'t>>)> = Vec::new();
        for kind in registry.kinds() {
            if let Some(legacy) = kind.legacy_section()
                && let Some(value) = root.remove(legacy)
            {
                sections.push((legacy.to_string(), value));
            }
        }
        if let Some(sources) = root.remove("sources") {
            let span = sources.span();
            let DeValue::Table(table) = sources.into_inner() else {
                return Err(at(
                    text,
                    &span,
                    ConfigError::new("sources", "must be a table"),
                ));
            };
            for (name, value) in table {
                sections.push((format!("sources.{}", name.get_ref()), value));
            }
        }
        let mut configured = Vec::new();
        for (key, value) in sections {
            let kind_name = key.strip_prefix("sources.").unwrap_or(&key);
            let Some(kind) = registry
                .kinds()
                .find(|k| k.kind() == kind_name || k.legacy_section() == Some(kind_name))
            else {
                let known = registry.names().join(", ");
                let e = ConfigError::new(&key, format!("unknown source kind (known: {known})"));
                return Err(self.lines.locate(e));
            };
            if configured
                .iter()
                .any(|c: &ConfiguredSource| c.kind() == kind.kind())
            {
                let e = ConfigError::new(&key, "configured twice (here and in its old section)");
                return Err(self.lines.locate(e));
            }
            let span = value.span();
            let instances: Vec<(String, Spanned<DeValue<'t>>)> = match value.into_inner() {
                DeValue::Array(items) if kind.multiple() => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| (format!("{key}[{i}]"), item))
                    .collect(),
                DeValue::Table(table) => {
                    vec![(key.clone(), Spanned::new(span, DeValue::Table(table)))]
                }
                _ if kind.multiple() => {
                    return Err(at(
                        text,
                        &span,
                        ConfigError::new(&key, "must be tables ([[...]])"),
                    ));
                }
                _ => return Err(at(text, &span, ConfigError::new(&key, "must be a table"))),
            };
            for (index, (instance_key, value)) in instances.into_iter().enumerate() {
                let config = kind
                    .read(ValueDeserializer::from(value))
                    .map_err(|e| path_error(text, &instance_key, &e))?;
                let name = if kind.multiple() {
                    format!("{}-{index}", kind.kind())
                } else {
                    kind.kind().to_string()
                };
                configured.push(ConfiguredSource::new(
                    kind.clone(),
                    instance_key,
                    name,
                    config,
                ));
            }
        }
        Ok(configured)
    }

    /// Reads the rest of the document as `T` (with `deny_unknown_fields`, a
    /// section nobody reads is an error naming it).
    pub fn read_rest<T: DeserializeOwned>(self) -> Result<(T, KeyLines), ConfigError> {
        let text = self.text;
        let span = self.root.span();
        let root = Spanned::new(span, DeValue::Table(self.root.into_inner()));
        let value = serde_path_to_error::deserialize(ValueDeserializer::from(root))
            .map_err(|e| path_error(text, "", &e))?;
        Ok((value, self.lines))
    }
}

fn record_lines(
    text: &str,
    prefix: &str,
    table: &DeTable<'_>,
    lines: &mut BTreeMap<String, usize>,
) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        lines.insert(path.clone(), line_at(text, key.span().start));
        match value.get_ref() {
            DeValue::Table(inner) => record_lines(text, &path, inner, lines),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    lines.insert(item_path.clone(), line_at(text, item.span().start));
                    if let DeValue::Table(inner) = item.get_ref() {
                        record_lines(text, &item_path, inner, lines);
                    }
                }
            }
            _ => {}
        }
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn at(text: &str, span: &Range<usize>, error: ConfigError) -> ConfigError {
    error.at_line(line_at(text, span.start))
}

fn toml_error(text: &str, key: &str, error: &toml::de::Error) -> ConfigError {
    let e = ConfigError::new(key, clean_message(error.message()));
    match error.span() {
        Some(span) => at(text, &span, e),
        None => e,
    }
}

fn path_error(
    text: &str,
    section: &str,
    error: &serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    let path = error.path().to_string();
    let path = if path == "." { String::new() } else { path };
    toml_error(text, &path, error.inner()).within(section)
}

/// serde's message in an operator's words: no Rust type names
/// (`expected u64` → `expected a non-negative integer`).
///
/// ```
/// use spate_operators::component::clean_message;
/// assert_eq!(
///     clean_message("invalid type: string \"big\", expected usize"),
///     "invalid type: string \"big\", expected a non-negative integer"
/// );
/// assert_eq!(clean_message("invalid type: integer `1`, expected struct SqsConfig"), "invalid type: integer `1`, expected a table");
/// ```
pub fn clean_message(message: &str) -> String {
    let mut out = message.trim_end_matches('.').trim_end().to_string();
    for (rust, words) in [
        ("usize", "a non-negative integer"),
        ("u64", "a non-negative integer"),
        ("u32", "a non-negative integer"),
        ("u16", "a non-negative integer"),
        ("u8", "a non-negative integer"),
        ("isize", "an integer"),
        ("i64", "an integer"),
        ("i32", "an integer"),
        ("f64", "a number"),
        ("f32", "a number"),
        ("a sequence", "an array"),
        ("a map", "a table"),
    ] {
        out = replace_word(
            &out,
            &format!("expected {rust}"),
            &format!("expected {words}"),
        );
    }
    for shape in ["struct", "enum"] {
        let marker = format!("expected {shape} ");
        while let Some(at) = out.find(&marker) {
            let name_start = at + marker.len();
            let name_end = out[name_start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(out.len(), |n| name_start + n);
            let words = if shape == "struct" {
                "expected a table"
            } else {
                "expected one of its names"
            };
            out.replace_range(at..name_end, words);
        }
    }
    out
}

/// Replaces `from` where it is followed by a non-word character (so `u8` does
/// not match in `u80`).
fn replace_word(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let end = at + from.len();
        let boundary = rest[end..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        out.push_str(&rest[..at]);
        out.push_str(if boundary { to } else { from });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_keys_tables_and_array_items() {
        let text = "[lake]\nzstd_level = 3\n\n[[sources.sqs]]\nqueue_url = \"a\"\n[[sources.sqs]]\nqueue_url = \"b\"\n";
        let doc = ConfigDocument::parse(text).unwrap();
        let lines = doc.lines();
        assert_eq!(lines.line_of("lake.zstd_level"), Some(2));
        assert_eq!(lines.line_of("sources.sqs[1].queue_url"), Some(7));
        // A key left at its default: the line of its table.
        assert_eq!(lines.line_of("sources.sqs[1].pollers"), Some(6));
        assert_eq!(lines.line_of("http.listen"), None);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = ConfigDocument::parse("[lake]\nzstd_level = = 3\n")
            .err()
            .unwrap();
        assert_eq!(err.line(), Some(2), "{err}");
    }

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            clean_message("invalid value: integer `-1`, expected u32"),
            "invalid value: integer `-1`, expected a non-negative integer"
        );
        assert_eq!(clean_message("expected u80"), "expected u80");
        assert_eq!(
            clean_message("invalid type: string \"x\", expected a sequence"),
            "invalid type: string \"x\", expected an array"
        );
    }
}
