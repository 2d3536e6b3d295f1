//! Severity and tags for decoded events.
//!
//! # Severity
//! The ladder is `CRITICAL > ERROR > WARNING > INFO` (DEBUG, TRACE, NOTICE and
//! VERBOSE count as INFO; see [`parse_level`] for the accepted spellings).
//! 1. An explicit level (a level field, a level token in the text, a syslog
//!    priority) decides on its own.
//! 2. Otherwise the **strongest** of the message keywords and the HTTP status
//!    (5xx ERROR, 4xx WARNING) wins.
//!
//! Keywords are ASCII case-insensitive and word-bounded: `critical`, `fatal`,
//! `panic`, `emergency` → CRITICAL; `error`, `exception`, `failed`, `failure` →
//! ERROR; `warning`, `warn`, `deprecated` → WARNING. A word boundary is any byte
//! that is not an ASCII letter, digit, `_` or part of a non-ASCII character, so
//! `terrorist`, `errors`, `error_code` and `warned` do not match (plurals are
//! deliberately not keywords: "0 errors" is routine). One exception: `Error` and
//! `Exception` with a capital letter also match as the tail of a CamelCase word
//! (`TypeError`, `NullPointerException`).
//!
//! # Tags
//! Built in (unless `builtin_tags = false`): `http_5xx` (status 500-599) and
//! `failed_login` (sshd `Failed password` / `Invalid user`, PAM `authentication
//! failure`, `login failed` and similar phrases, or status 401 on a request path
//! containing `login`, `logon`, `signin`, `sign-in` or `auth`). Configured
//! [`TagRule`]s add keyword, regex and CloudWatch metric-filter tags.
//!
//! # Cost
//! Without configured keyword rules, the built-in keywords and phrases are
//! found in one word-by-word pass (`words.rs`; keywords are skipped when an
//! explicit level decides). Otherwise built-in keywords, built-in tag phrases
//! and every configured keyword are compiled into ONE ASCII case-insensitive
//! Aho-Corasick DFA; each message is scanned once and matches are checked for
//! word boundaries. Configured regexes
//! run as one `RegexSet` pass (the regex engine prefilters on literals) and only
//! when regex rules exist; metric filters use precompiled `memmem` finders.

mod level;
mod metric_filter;
mod words;

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::RegexSet;
use serde::{Deserialize, Serialize};

use crate::event::{EventBatch, Severity};
pub use level::{level_from_number, parse_level, status_severity, syslog_severity};
pub use metric_filter::{FieldValue, MetricFilter};
use words::{BuiltinWords, is_word};

/// Name of the built-in tag for HTTP 5xx responses.
pub const TAG_HTTP_5XX: &str = "http_5xx";
/// Name of the built-in tag for failed logins.
pub const TAG_FAILED_LOGIN: &str = "failed_login";

const SEVERITY_KEYWORDS: &[(&str, Severity, bool)] = &[
    ("critical", Severity::Critical, false),
    ("fatal", Severity::Critical, false),
    ("panic", Severity::Critical, false),
    ("emergency", Severity::Critical, false),
    ("error", Severity::Error, true),
    ("exception", Severity::Error, true),
    ("failed", Severity::Error, false),
    ("failure", Severity::Error, false),
    ("warning", Severity::Warning, false),
    ("warn", Severity::Warning, false),
    ("deprecated", Severity::Warning, false),
];

const FAILED_LOGIN_PHRASES: &[&str] = &[
    "failed password",
    "failed publickey",
    "invalid user",
    "authentication failure",
    "authentication failed",
    "login failed",
    "failed login",
    "login failure",
    "logon failure",
    "incorrect password",
    "invalid password",
];

const LOGIN_PATH_HINTS: &[&[u8]] = &[b"login", b"logon", b"signin", b"sign-in", b"auth"];

fn default_true() -> bool {
    true
}

/// Classifier configuration (`[classify]` in the Spate config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Enable the built-in `http_5xx` and `failed_login` tags.
    #[serde(default = "default_true")]
    pub builtin_tags: bool,
    /// Derive severity from message keywords when there is no explicit level.
    #[serde(default = "default_true")]
    pub keyword_severity: bool,
    /// Extra tag rules; rules sharing a name set the same tag.
    #[serde(default)]
    pub tags: Vec<TagRule>,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            builtin_tags: true,
            keyword_severity: true,
            tags: Vec::new(),
        }
    }
}

/// A configured tag rule. In TOML: `name` plus exactly one of `keywords`,
/// `regex` or `metric_filter`.
///
/// ```
/// use spate_operators::classify::{TagRule, TagRuleKind};
/// let r: TagRule = serde_json::from_str(r#"{"name":"oom","keywords":["out of memory"]}"#).unwrap();
/// assert_eq!(r.kind, TagRuleKind::Keyword(vec!["out of memory".into()]));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "TagRuleSpec", into = "TagRuleSpec")]
pub struct TagRule {
    /// Tag name set on matching events.
    pub name: String,
    /// How events are matched.
    pub kind: TagRuleKind,
}

/// How a [`TagRule`] matches.
#[derive(Debug, Clone, PartialEq)]
pub enum TagRuleKind {
    /// Any of these words or phrases, ASCII case-insensitive and word-bounded.
    Keyword(Vec<String>),
    /// A regular expression over the message (`regex` crate syntax).
    Regex(String),
    /// A CloudWatch Logs metric-filter pattern (see [`MetricFilter`]).
    MetricFilter(String),
}

/// Serialized form of a [`TagRule`].
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TagRuleSpec {
    /// Tag name.
    name: String,
    /// Keywords (any matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keywords: Option<Vec<String>>,
    /// Regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    /// Metric-filter pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metric_filter: Option<String>,
}

impl TryFrom<TagRuleSpec> for TagRule {
    type Error = String;
    fn try_from(s: TagRuleSpec) -> Result<Self, String> {
        let kind = match (s.keywords, s.regex, s.metric_filter) {
            (Some(k), None, None) => TagRuleKind::Keyword(k),
            (None, Some(r), None) => TagRuleKind::Regex(r),
            (None, None, Some(m)) => TagRuleKind::MetricFilter(m),
            _ => {
                return Err(format!(
                    "tag rule {}: set exactly one of keywords, regex, metric_filter",
                    s.name
                ));
            }
        };
        Ok(TagRule { name: s.name, kind })
    }
}

impl From<TagRule> for TagRuleSpec {
    fn from(r: TagRule) -> Self {
        let mut s = TagRuleSpec {
            name: r.name,
            keywords: None,
            regex: None,
            metric_filter: None,
        };
        match r.kind {
            TagRuleKind::Keyword(k) => s.keywords = Some(k),
            TagRuleKind::Regex(x) => s.regex = Some(x),
            TagRuleKind::MetricFilter(m) => s.metric_filter = Some(m),
        }
        s
    }
}

/// Errors building a [`Classifier`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClassifierError {
    /// A rule could not be compiled.
    #[error("tag rule {name}: {reason}")]
    BadRule {
        /// Rule name.
        name: String,
        /// What is wrong, lowercase.
        reason: String,
    },
    /// More than 64 distinct tag names.
    #[error("too many distinct tags ({0}); at most 64 are supported")]
    TooManyTags(usize),
}

/// What the classifier looks at for one event.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowInput<'a> {
    /// The message text.
    pub message: &'a str,
    /// Explicit level from a field or text token, if any.
    pub level: Option<Severity>,
    /// HTTP status, 0 when absent.
    pub status: u16,
    /// Request path, when known (used for `failed_login` on 401).
    pub path: Option<&'a str>,
    /// Service name.
    pub service: Option<&'a str>,
    /// Host.
    pub host: Option<&'a str>,
    /// Client IP.
    pub client_ip: Option<&'a str>,
    /// Remaining fields as a JSON object text (for JSON metric filters).
    pub attrs: Option<&'a str>,
}

/// Result for one event; `tags` bits index [`Classifier::tag_names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// Severity on the ladder.
    pub severity: Severity,
    /// Tag bit set over the classifier's own tag names.
    pub tags: u64,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Severity(Severity, bool),
    Tag(u32),
}

/// The compiled classifier; cheap to share (`&self` methods only).
#[derive(Debug, Clone)]
pub struct Classifier {
    /// Built-in patterns only: found word by word instead of by `ac`.
    words: Option<BuiltinWords>,
    ac: Option<AhoCorasick>,
    actions: Vec<Action>,
    tag_names: Vec<String>,
    builtin: bool,
    regex: Option<(RegexSet, Vec<u32>)>,
    text_filters: Vec<(MetricFilter, u32)>,
    json_filters: Vec<(MetricFilter, u32)>,
}

const BIT_HTTP_5XX: u32 = 0;
const BIT_FAILED_LOGIN: u32 = 1;

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new(&ClassifierConfig::default()).expect("built-in rules compile")
    }
}

impl Classifier {
    /// Compiles `config`.
    pub fn new(config: &ClassifierConfig) -> Result<Self, ClassifierError> {
        Self::build(config, true)
    }

    /// `new`; with `allow_words` false the built-in patterns also go through
    /// the automaton (the reference the word scan is tested against).
    fn build(config: &ClassifierConfig, allow_words: bool) -> Result<Self, ClassifierError> {
        let mut tag_names: Vec<String> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut actions = Vec::new();
        if config.keyword_severity {
            for (kw, sev, camel) in SEVERITY_KEYWORDS {
                patterns.push((*kw).to_string());
                actions.push(Action::Severity(*sev, *camel));
            }
        }
        if config.builtin_tags {
            tag_names.push(TAG_HTTP_5XX.into());
            tag_names.push(TAG_FAILED_LOGIN.into());
            for p in FAILED_LOGIN_PHRASES {
                patterns.push((*p).to_string());
                actions.push(Action::Tag(BIT_FAILED_LOGIN));
            }
        }
        let (mut regexes, mut regex_bits) = (Vec::new(), Vec::new());
        let (mut text_filters, mut json_filters) = (Vec::new(), Vec::new());
        for rule in &config.tags {
            let bad = |reason: String| ClassifierError::BadRule {
                name: rule.name.clone(),
                reason,
            };
            if rule.name.is_empty() {
                return Err(bad("empty tag name".into()));
            }
            let bit = match tag_names.iter().position(|n| *n == rule.name) {
                Some(b) => b as u32,
                None => {
                    tag_names.push(rule.name.clone());
                    (tag_names.len() - 1) as u32
                }
            };
            match &rule.kind {
                TagRuleKind::Keyword(words) => {
                    for w in words.iter().filter(|w| !w.is_empty()) {
                        patterns.push(w.clone());
                        actions.push(Action::Tag(bit));
                    }
                }
                TagRuleKind::Regex(r) => {
                    regex::Regex::new(r).map_err(|e| bad(e.to_string().to_lowercase()))?;
                    regexes.push(r.clone());
                    regex_bits.push(bit);
                }
                TagRuleKind::MetricFilter(p) => {
                    let f = MetricFilter::parse(p).map_err(bad)?;
                    if f.is_json() {
                        json_filters.push((f, bit));
                    } else {
                        text_filters.push((f, bit));
                    }
                }
            }
        }
        if tag_names.len() > 64 {
            return Err(ClassifierError::TooManyTags(tag_names.len()));
        }
        let builtin_only = !config
            .tags
            .iter()
            .any(|r| matches!(&r.kind, TagRuleKind::Keyword(w) if w.iter().any(|w| !w.is_empty())));
        let words = (allow_words && builtin_only && !patterns.is_empty()).then_some(BuiltinWords {
            severity: config.keyword_severity,
            phrases: config.builtin_tags,
        });
        let ac = if patterns.is_empty() || words.is_some() {
            None
        } else {
            let ac = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&patterns)
                .map_err(|e| ClassifierError::BadRule {
                    name: "keywords".into(),
                    reason: e.to_string().to_lowercase(),
                })?;
            Some(ac)
        };
        let regex = if regexes.is_empty() {
            None
        } else {
            let set = RegexSet::new(&regexes).map_err(|e| ClassifierError::BadRule {
                name: "regex".into(),
                reason: e.to_string().to_lowercase(),
            })?;
            Some((set, regex_bits))
        };
        Ok(Classifier {
            words,
            ac,
            actions,
            tag_names,
            builtin: config.builtin_tags,
            regex,
            text_filters,
            json_filters,
        })
    }

    /// Tag names, indexed by the bits of [`Classification::tags`].
    pub fn tag_names(&self) -> &[String] {
        &self.tag_names
    }

    /// Classifies one event.
    pub fn classify(&self, row: &RowInput<'_>) -> Classification {
        let mut keyword = Severity::Info;
        let mut tags = 0u64;
        let h = row.message.as_bytes();
        if let Some(words) = self.words {
            let (k, login) = words.scan(h, row.level.is_none());
            keyword = k;
            if login {
                tags |= 1 << BIT_FAILED_LOGIN;
            }
        } else if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(h) {
                match self.actions[m.pattern().as_usize()] {
                    Action::Severity(s, camel) => {
                        if s > keyword && bounded(h, m.start(), m.end(), camel) {
                            keyword = s;
                        }
                    }
                    Action::Tag(bit) => {
                        if tags & (1 << bit) == 0 && bounded(h, m.start(), m.end(), false) {
                            tags |= 1 << bit;
                        }
                    }
                }
            }
        }
        let severity = row
            .level
            .unwrap_or_else(|| keyword.max(status_severity(row.status)));
        if self.builtin {
            if (500..=599).contains(&row.status) {
                tags |= 1 << BIT_HTTP_5XX;
            }
            if row.status == 401 {
                let path = row.path.or_else(|| request_path(row.message)).unwrap_or("");
                if LOGIN_PATH_HINTS
                    .iter()
                    .any(|n| contains_ignore_ascii_case(path.as_bytes(), n))
                {
                    tags |= 1 << BIT_FAILED_LOGIN;
                }
            }
        }
        if let Some((set, bits)) = &self.regex {
            for i in set.matches(row.message).iter() {
                tags |= 1 << bits[i];
            }
        }
        for (f, bit) in &self.text_filters {
            if tags & (1 << bit) == 0 && f.matches_text(row.message) {
                tags |= 1 << bit;
            }
        }
        if !self.json_filters.is_empty() {
            tags |= self.json_tags(row, severity, tags);
        }
        Classification { severity, tags }
    }

    fn json_tags(&self, row: &RowInput<'_>, severity: Severity, have: u64) -> u64 {
        let mut attrs: Option<Option<serde_json::Value>> = None;
        let mut tags = 0;
        for (f, bit) in &self.json_filters {
            if (have | tags) & (1 << bit) != 0 {
                continue;
            }
            let mut lookup = |path: &str| -> Option<FieldValue<'_>> {
                let s = |v: Option<&str>| v.map(|v| FieldValue::Str(Cow::Owned(v.to_string())));
                match path {
                    "level" | "severity" => s(Some(severity.as_str())),
                    "status" if row.status != 0 => Some(FieldValue::Num(row.status as f64)),
                    "message" | "msg" => s(Some(row.message)),
                    "service" => s(row.service),
                    "host" => s(row.host),
                    "client_ip" => s(row.client_ip),
                    _ => {
                        let v = attrs.get_or_insert_with(|| {
                            row.attrs.and_then(|a| serde_json::from_str(a).ok())
                        });
                        json_path(v.as_ref()?, path)
                    }
                }
            };
            if f.matches_json(&mut lookup) {
                tags |= 1 << bit;
            }
        }
        tags
    }

    /// Maps classifier tag bits onto `batch.tag_names` bits (adding names as
    /// needed; tags past the batch's 64-name limit are dropped).
    pub fn batch_tag_bits(&self, tags: u64, batch: &mut EventBatch) -> u64 {
        let mut out = 0;
        let mut rest = tags;
        while rest != 0 {
            let bit = rest.trailing_zeros();
            rest &= rest - 1;
            if let Some(i) = batch.tag_index(&self.tag_names[bit as usize]) {
                out |= 1 << i;
            }
        }
        out
    }

    /// Re-classifies every row of a batch in place.
    ///
    /// A batch carries no "explicit level" flag, so a row whose current severity
    /// is above INFO is treated as explicit and kept; INFO rows are re-derived from
    /// keywords and status. Tags found are OR-ed into the existing ones.
    pub fn classify_batch(&self, batch: &mut EventBatch) {
        let n = batch.len();
        batch.severity.resize(n, Severity::Info);
        batch.tags.resize(n, 0);
        batch.status.resize(n, 0);
        for i in 0..n {
            let c = {
                let current = batch.severity[i];
                let row = RowInput {
                    message: batch.message.get(i).unwrap_or(""),
                    level: (current != Severity::Info).then_some(current),
                    status: batch.status[i],
                    path: None,
                    service: batch.service.get(i),
                    host: batch.host.get(i),
                    client_ip: batch.client_ip.get(i),
                    attrs: batch.attrs.get(i),
                };
                self.classify(&row)
            };
            batch.severity[i] = c.severity;
            let bits = self.batch_tag_bits(c.tags, batch);
            batch.tags[i] |= bits;
        }
    }
}

fn json_path<'v>(v: &serde_json::Value, path: &str) -> Option<FieldValue<'v>> {
    let found = v
        .get(path)
        .or_else(|| path.split('.').try_fold(v, |cur, k| cur.get(k)))?;
    Some(match found {
        serde_json::Value::String(s) => FieldValue::Str(Cow::Owned(s.clone())),
        serde_json::Value::Number(n) => FieldValue::Num(n.as_f64()?),
        serde_json::Value::Bool(b) => FieldValue::Bool(*b),
        serde_json::Value::Null => FieldValue::Null,
        _ => return None,
    })
}

/// Word boundary on both sides; `camel` also accepts an upper-case match glued to
/// a preceding letter (`TypeError`).
#[inline]
fn bounded(h: &[u8], start: usize, end: usize, camel: bool) -> bool {
    let right = end == h.len() || !is_word(h[end]);
    let left = start == 0
        || !is_word(h[start - 1])
        || (camel && h[start].is_ascii_uppercase() && h[start - 1].is_ascii_alphabetic());
    left && right
}

/// The path of an access-log request line inside `message` (`"GET /x HTTP/1.1"`).
fn request_path(message: &str) -> Option<&str> {
    let q = message.find('"')?;
    let rest = &message[q + 1..];
    let req = &rest[..rest.find('"').unwrap_or(rest.len())];
    req.split(' ').nth(1)
}

fn contains_ignore_ascii_case(h: &[u8], needle: &[u8]) -> bool {
    h.len() >= needle.len()
        && h.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests;
