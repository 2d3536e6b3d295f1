//! `${VAR}` substitution in configuration text.
//!
//! Rules, applied to the raw text before it is parsed:
//! - `${NAME}` becomes the value of the environment variable `NAME`; an unset
//!   variable is an error (a config silently missing a queue URL is worse).
//! - `${NAME:-fallback}` becomes the value of `NAME` if it is set and not
//!   empty, else `fallback` (which is taken literally).
//! - `$${` is a literal `${`; any other `$` is left alone.
//! - Lines whose first non-blank character is `#` (TOML comments) are copied
//!   unchanged, so commented-out settings may name variables that are unset.
//!
//! `NAME` is ASCII letters, digits and `_`, not starting with a digit. Values
//! are inserted as they are: quote them in the TOML around the `${...}`.

/// Why configuration text cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvExpandError {
    /// `${NAME}` names a variable that is not set and has no fallback.
    #[error("line {line}: environment variable {name} is not set")]
    Unset {
        /// The variable.
        name: String,
        /// 1-based line of the reference.
        line: usize,
    },
    /// `${` without a closing `}` on the same line.
    #[error("line {line}: unterminated ${{...}}")]
    Unterminated {
        /// 1-based line of the reference.
        line: usize,
    },
    /// `${...}` whose name is empty or has characters other than letters,
    /// digits and `_`.
    #[error("line {line}: invalid variable name {name:?}")]
    InvalidName {
        /// The text between `${` and `}` (or `:-`).
        name: String,
        /// 1-based line of the reference.
        line: usize,
    },
}

/// Expands `${VAR}` references from the process environment.
///
/// ```
/// use spate_operators::aws::env_expand::expand_env;
/// let text = "bucket = \"${SPATE_DOC_UNSET_BUCKET:-local}\"";
/// assert_eq!(expand_env(text).unwrap(), "bucket = \"local\"");
/// ```
pub fn expand_env(text: &str) -> Result<String, EnvExpandError> {
    expand_with(text, |name| std::env::var(name).ok())
}

/// Expands `${VAR}` references with `lookup` giving each variable's value.
///
/// ```
/// use spate_operators::aws::env_expand::expand_with;
/// let out = expand_with("url = \"${Q}\"", |n| (n == "Q").then(|| "http://q".to_string()));
/// assert_eq!(out.unwrap(), "url = \"http://q\"");
/// ```
pub fn expand_with(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, EnvExpandError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            expand_line(line, index + 1, &lookup, &mut out)?;
        }
    }
    Ok(out)
}

fn expand_line(
    line: &str,
    line_no: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), EnvExpandError> {
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let close = tail
                .find('}')
                .ok_or(EnvExpandError::Unterminated { line: line_no })?;
            let inner = &tail[..close];
            let (name, fallback) = match inner.split_once(":-") {
                Some((name, fallback)) => (name, Some(fallback)),
                None => (inner, None),
            };
            if !valid_name(name) {
                return Err(EnvExpandError::InvalidName {
                    name: name.to_string(),
                    line: line_no,
                });
            }
            let value = match (lookup(name), fallback) {
                (Some(v), Some(fallback)) if v.is_empty() => fallback.to_string(),
                (Some(v), _) => v,
                (None, Some(fallback)) => fallback.to_string(),
                (None, None) => {
                    return Err(EnvExpandError::Unset {
                        name: name.to_string(),
                        line: line_no,
                    });
                }
            };
            out.push_str(&value);
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "QUEUE" => Some("http://127.0.0.1:5000/123/logs".into()),
            "EMPTY" => Some(String::new()),
            "_X1" => Some("x".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_set_variables() {
        let text = "[aws]\nqueue_url = \"${QUEUE}\"\nboth = \"${_X1}-${_X1}\"\n";
        assert_eq!(
            expand_with(text, env).unwrap(),
            "[aws]\nqueue_url = \"http://127.0.0.1:5000/123/logs\"\nboth = \"x-x\"\n"
        );
    }

    #[test]
    fn fallback_applies_when_unset_or_empty() {
        assert_eq!(expand_with("${NOPE:-a:b}", env).unwrap(), "a:b");
        assert_eq!(expand_with("${EMPTY:-d}", env).unwrap(), "d");
        assert_eq!(expand_with("${EMPTY}", env).unwrap(), "");
        assert_eq!(
            expand_with("${QUEUE:-d}", env).unwrap(),
            env("QUEUE").unwrap()
        );
        assert_eq!(expand_with("${NOPE:-}", env).unwrap(), "");
    }

    #[test]
    fn unset_variable_is_an_error_with_its_line() {
        let err = expand_with("a = 1\nb = \"${NOPE}\"\n", env).unwrap_err();
        assert_eq!(
            err,
            EnvExpandError::Unset {
                name: "NOPE".into(),
                line: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "line 2: environment variable NOPE is not set"
        );
    }

    #[test]
    fn escapes_and_lone_dollars_stay_literal() {
        assert_eq!(
            expand_with("p = \"$${QUEUE}\"", env).unwrap(),
            "p = \"${QUEUE}\""
        );
        assert_eq!(
            expand_with("cost = \"$5 $x\"", env).unwrap(),
            "cost = \"$5 $x\""
        );
        assert_eq!(expand_with("end $", env).unwrap(), "end $");
    }

    #[test]
    fn comments_are_copied_unchanged() {
        let text = "  # queue = \"${NOPE}\"\nq = \"${_X1}\"";
        assert_eq!(
            expand_with(text, env).unwrap(),
            "  # queue = \"${NOPE}\"\nq = \"x\""
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert_eq!(
            expand_with("a\n${QUEUE", env).unwrap_err(),
            EnvExpandError::Unterminated { line: 2 }
        );
        assert_eq!(
            expand_with("${}", env).unwrap_err(),
            EnvExpandError::InvalidName {
                name: String::new(),
                line: 1
            }
        );
        assert!(matches!(
            expand_with("${1A}", env),
            Err(EnvExpandError::InvalidName { .. })
        ));
        assert!(matches!(
            expand_with("${A B}", env),
            Err(EnvExpandError::InvalidName { .. })
        ));
    }

    #[test]
    fn non_ascii_text_passes_through() {
        assert_eq!(expand_with("é ${_X1} ü", env).unwrap(), "é x ü");
    }

    #[test]
    fn local_deploy_config_names_only_the_variables_up_sh_exports() {
        let text = include_str!("../../../deploy/local/aws.toml");
        let exported = [
            "AWS_ENDPOINT_URL",
            "SPATE_SQS_QUEUE_URL",
            "SPATE_KINESIS_STREAM",
            "SPATE_BUCKET",
            "SPATE_HOT_TABLE",
            "SPATE_ALERT_TOPIC_ARN",
        ];
        let out = expand_with(text, |name| {
            exported.contains(&name).then(|| format!("<{name}>"))
        })
        .unwrap();
        assert!(out.contains("queue_url = \"<SPATE_SQS_QUEUE_URL>\""));
        assert!(out.contains("region = \"us-east-1\""));
        assert!(
            !out.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("${"))
        );
    }
}
