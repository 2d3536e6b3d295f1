//! The configuration reference, derived from the configuration structs and
//! their doc comments (`spate config reference`, `docs/configuration.md`).
//!
//! The structs derive a JSON schema (`schemars`); this module walks it: one
//! section per table (`[lake]`, `[lake.s3]`, `[[sources.sqs]]`), one entry per
//! key with its type, default and documentation. Source kinds come from the
//! registry, so a new kind documents itself.

use std::fmt::Write as _;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};
use spate_operators::component::SourceRegistry;

use super::SpateConfig;

/// One key of the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The table it is in (`lake.s3`, `sources.sqs`).
    pub section: String,
    /// Its name in the table.
    pub name: String,
    /// Its type in words (`integer`, `list of strings`, `one of a, b`).
    pub kind: String,
    /// Its default, as TOML, when it has one.
    pub default: Option<String>,
    /// Its documentation.
    pub doc: String,
}

/// One table of the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Its path (`lake.s3`).
    pub path: String,
    /// Whether it is an array of tables (`[[sources.sqs]]`).
    pub array: bool,
    /// Its documentation.
    pub doc: String,
    /// Its keys (tables inside it are sections of their own).
    pub keys: Vec<Key>,
}

impl Section {
    /// `[path]` or `[[path]]`.
    pub fn header(&self) -> String {
        if self.array {
            format!("[[{}]]", self.path)
        } else {
            format!("[{}]", self.path)
        }
    }
}

struct Walker {
    defs: Map<String, Value>,
    sections: Vec<Section>,
}

/// Every section and key of the configuration, sources from `registry`.
pub fn sections(registry: &SourceRegistry) -> Vec<Section> {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let root = generator.root_schema_for::<SpateConfig>();
    let mut sources = Vec::new();
    for kind in registry.kinds() {
        sources.push((kind.kind(), kind.multiple(), kind.schema(&mut generator)));
    }
    let mut defs: Map<String, Value> = root
        .as_object()
        .and_then(|o| o.get("$defs"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (name, schema) in generator.take_definitions(true) {
        defs.insert(name, schema);
    }
    let mut walker = Walker {
        defs,
        sections: Vec::new(),
    };
    let root = walker.resolve(root.as_value());
    walker.table("", false, &root, "");
    for (kind, multiple, schema) in sources {
        let schema = walker.resolve(schema.as_value());
        walker.table(&format!("sources.{kind}"), multiple, &schema, "");
    }
    walker
        .sections
        .retain(|s| !s.path.is_empty() || !s.keys.is_empty());
    walker.sections
}

impl Walker {
    /// `schema` with `$ref`s followed and `Option`'s `null` alternative
    /// dropped.
    fn resolve(&self, schema: &Value) -> Value {
        let mut schema = schema.clone();
        for _ in 0..8 {
            let Some(obj) = schema.as_object() else {
                return schema;
            };
            if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
                let name = reference.rsplit('/').next().unwrap_or_default();
                let mut target = self.defs.get(name).cloned().unwrap_or(Value::Null);
                // Keep the field's own description and default.
                if let (Some(target), Some(outer)) = (target.as_object_mut(), schema.as_object()) {
                    for key in ["description", "default"] {
                        if let Some(v) = outer.get(key) {
                            target.insert(key.to_string(), v.clone());
                        }
                    }
                }
                schema = target;
                continue;
            }
            let alternatives = obj
                .get("anyOf")
                .or_else(|| obj.get("oneOf"))
                .and_then(Value::as_array);
            if let Some(alternatives) = alternatives {
                let non_null: Vec<&Value> = alternatives
                    .iter()
                    .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                    .collect();
                if non_null.len() == 1 && non_null.len() < alternatives.len() {
                    let mut inner = non_null[0].clone();
                    if let (Some(inner), Some(outer)) = (inner.as_object_mut(), schema.as_object())
                    {
                        for key in ["description", "default"] {
                            if let Some(v) = outer.get(key) {
                                inner.insert(key.to_string(), v.clone());
                            }
                        }
                    }
                    schema = inner;
                    continue;
                }
            }
            return schema;
        }
        schema
    }

    fn is_table(&self, schema: &Value) -> bool {
        let schema = self.resolve(schema);
        type_of(&schema).contains(&"object") && schema.get("properties").is_some()
    }

    fn table(&mut self, path: &str, array: bool, schema: &Value, doc: &str) {
        let index = self.sections.len();
        self.sections.push(Section {
            path: path.to_string(),
            array,
            doc: first_non_empty(doc, description(schema)),
            keys: Vec::new(),
        });
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        let mut nested = Vec::new();
        for (name, field) in properties {
            let field_doc = description(field).to_string();
            let resolved = self.resolve(field);
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            if self.is_table(&resolved) {
                nested.push((child, false, resolved, field_doc));
                continue;
            }
            if type_of(&resolved).contains(&"array")
                && let Some(items) = resolved.get("items")
                && self.is_table(items)
            {
                let items = self.resolve(items);
                nested.push((child, true, items, field_doc));
                continue;
            }
            let default = field
                .get("default")
                .or_else(|| resolved.get("default"))
                .filter(|d| !d.is_null())
                .map(toml_value);
            let key = Key {
                section: path.to_string(),
                name: name.clone(),
                kind: self.kind_of(&resolved),
                default,
                doc: first_non_empty(&field_doc, description(&resolved)),
            };
            self.sections[index].keys.push(key);
        }
        for (child, array, schema, doc) in nested {
            self.table(&child, array, &schema, &doc);
        }
    }

    fn kind_of(&self, schema: &Value) -> String {
        let schema = self.resolve(schema);
        let bare_unit = schema
            .get("x-bare-number-unit")
            .and_then(Value::as_str)
            .unwrap_or("units");
        match schema.get("format").and_then(Value::as_str) {
            Some("duration") => {
                return format!(
                    "duration: \"30s\", \"5m\", \"250ms\"; a bare number is {bare_unit}"
                );
            }
            Some("size") => {
                return format!("size: \"512KiB\", \"128MiB\"; a bare number is {bare_unit}");
            }
            _ => {}
        }
        if let Some(values) = enum_values(&schema) {
            return format!("one of {}", values.join(", "));
        }
        let types = type_of(&schema);
        if types.contains(&"array") {
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            return format!("list of {}", plural(&self.kind_of(&items)));
        }
        if types.contains(&"object") {
            let values = schema
                .get("additionalProperties")
                .cloned()
                .unwrap_or(Value::Null);
            return format!("table of {}", plural(&self.kind_of(&values)));
        }
        if types.contains(&"integer") {
            let non_negative = schema
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| m >= 0.0);
            return if non_negative {
                "non-negative integer".into()
            } else {
                "integer".into()
            };
        }
        if types.contains(&"number") {
            return "number".into();
        }
        if types.contains(&"boolean") {
            return "boolean".into();
        }
        if types.contains(&"string") {
            return "string".into();
        }
        "value".into()
    }
}

fn type_of(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn enum_values(schema: &Value) -> Option<Vec<String>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(|v| format!("`{}`", plain(v))).collect());
    }
    let alternatives = schema.get("oneOf").or_else(|| schema.get("anyOf"))?;
    let consts: Option<Vec<String>> = alternatives
        .as_array()?
        .iter()
        .map(|a| {
            a.get("const")
                .or_else(|| a.get("enum").and_then(|e| e.get(0)))
                .map(|v| format!("`{}`", plain(v)))
        })
        .collect();
    consts.filter(|c| !c.is_empty())
}

fn plural(kind: &str) -> String {
    match kind {
        "string" => "strings".into(),
        "integer" | "non-negative integer" => format!("{kind}s"),
        "number" => "numbers".into(),
        "boolean" => "booleans".into(),
        other => other.into(),
    }
}

fn description(schema: &Value) -> &str {
    schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn first_non_empty(a: &str, b: &str) -> String {
    if a.trim().is_empty() { b } else { a }.trim().to_string()
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON default as TOML.
fn toml_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Documentation text on one line.
fn one_paragraph(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The reference as Markdown: what `spate config reference` prints and
/// `docs/configuration.md` holds.
pub fn markdown(registry: &SourceRegistry) -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the code by `spate config reference`; do not edit by hand \
         (a test checks that this page is current). Every key is optional unless \
         it has no default; `spate config default` prints a commented file with \
         the defaults, and `spate config check FILE` validates one.\n\n\
         `${VAR}` and `${VAR:-fallback}` anywhere in the file are replaced from \
         the environment before it is read.\n",
    );
    for section in sections(registry) {
        let _ = write!(out, "\n## `{}`\n\n", section.header());
        if !section.doc.is_empty() {
            let _ = writeln!(out, "{}\n", one_paragraph(&section.doc));
        }
        for key in &section.keys {
            let default = match &key.default {
                Some(default) => format!(", default `{default}`"),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "- **`{}`** ({}{default}): {}",
                key.name,
                key.kind,
                one_paragraph(&key.doc)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_documented_with_a_type() {
        let sections = sections(&spate_operators::sources::supported_sources());
        for section in &sections {
            for key in &section.keys {
                assert!(
                    !key.doc.is_empty(),
                    "{}.{} has no doc comment",
                    section.path,
                    key.name
                );
                assert_ne!(key.kind, "value", "{}.{}", section.path, key.name);
            }
        }
        let headers: Vec<String> = sections.iter().map(Section::header).collect();
        for expected in [
            "[lake]",
            "[lake.s3]",
            "[[sources.sqs]]",
            "[[sources.kinesis]]",
            "[sources.tail]",
            "[hot_dynamodb]",
            "[aws.endpoints]",
            "[alerts.webhook]",
            "[[alerts.rules]]",
            "[[classify.tags]]",
            "[metrics.emf]",
        ] {
            assert!(
                headers.contains(&expected.to_string()),
                "{expected} missing from {headers:?}"
            );
        }
    }
}
