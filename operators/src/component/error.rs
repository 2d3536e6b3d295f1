//! What can go wrong between a configuration file and a running pipeline.
//!
//! [`ConfigError`] is a setting that cannot work, found without I/O: it names
//! the key path (`sources.sqs[0].pollers`) and, once the file's layout is
//! known, the line. [`BuildError`] is a valid setting that could not be put to
//! work (a file that cannot be opened, a client that cannot be made).

use spate_engine::{ErrorClass, RetryHint};

/// A setting that cannot work.
///
/// ```
/// use spate_operators::component::ConfigError;
/// let e = ConfigError::new("pollers", "must be at least 1").within("sources.sqs[0]");
/// assert_eq!(e.key(), "sources.sqs[0].pollers");
/// assert_eq!(e.to_string(), "sources.sqs[0].pollers: must be at least 1");
/// assert_eq!(e.at_line(12).to_string(), "line 12: sources.sqs[0].pollers: must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), key_prefix(key))]
pub struct ConfigError {
    key: String,
    message: String,
    line: Option<usize>,
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

impl ConfigError {
    /// `message` about the setting at `key` (relative to the section being
    /// checked; empty for the section itself).
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
            line: None,
        }
    }

    /// An error from a message that starts with the key it is about
    /// (`"segment_size must be at least 1"`, `"namespace: too long"`); a
    /// message that starts otherwise is about the section itself.
    ///
    /// ```
    /// use spate_operators::component::ConfigError;
    /// let e = ConfigError::from_keyed_message("chunk_size must be at least 1").within("journal");
    /// assert_eq!(e.to_string(), "journal.chunk_size: must be at least 1");
    /// let e = ConfigError::from_keyed_message("table is empty").within("hot_dynamodb");
    /// assert_eq!(e.to_string(), "hot_dynamodb: table is empty");
    /// ```
    pub fn from_keyed_message(message: &str) -> Self {
        let key_end = message
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
            .unwrap_or(message.len());
        let (key, rest) = message.split_at(key_end);
        let colon = rest.starts_with(':');
        let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
        if !key.is_empty() && !rest.is_empty() && (colon || key.contains('_')) {
            ConfigError::new(key, rest)
        } else {
            ConfigError::new("", message)
        }
    }

    /// The same error seen from the enclosing section `section` (`lake`,
    /// `sources.sqs[0]`).
    pub fn within(mut self, section: &str) -> Self {
        self.key = match (section.is_empty(), self.key.is_empty()) {
            (true, _) => self.key,
            (false, true) => section.to_string(),
            (false, false) if self.key.starts_with('[') => format!("{section}{}", self.key),
            (false, false) => format!("{section}.{}", self.key),
        };
        self
    }

    /// The same error, located on line `line` of the file.
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// The full key path (`lake.s3.bucket`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong, without the key.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The line of the file, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }
}

/// A valid setting that could not be put to work while the pipeline was built.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct BuildError {
    what: String,
    message: String,
    class: ErrorClass,
}

impl BuildError {
    /// `what` (the component or key, `sources.tail`) failed with `message`
    /// because of something outside Spate (a file, a service).
    pub fn external(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        BuildError {
            what: what.into(),
            message: message.to_string(),
            class: ErrorClass::External,
        }
    }

    /// A bug: the pieces of the build do not fit together.
    pub fn internal(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        BuildError {
            what: what.into(),
            message: message.to_string(),
            class: ErrorClass::Internal,
        }
    }

    /// Whose fault it is.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// Whether starting again may help: an external cause may go away.
    pub fn retry(&self) -> RetryHint {
        match self.class {
            ErrorClass::External => RetryHint::Backoff,
            _ => RetryHint::Never,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_nest_and_lines_show_first() {
        let e = ConfigError::new("[2]", "bad")
            .within("tags")
            .within("classify");
        assert_eq!(e.key(), "classify.tags[2]");
        let e = ConfigError::new("", "needs a bucket").within("lake.s3");
        assert_eq!(e.to_string(), "lake.s3: needs a bucket");
        assert_eq!(e.clone().at_line(3).line(), Some(3));
        assert_eq!(ConfigError::new("", "empty").to_string(), "empty");
    }

    #[test]
    fn build_errors_say_whether_to_retry() {
        let e = BuildError::external("sources.tail", "cannot read checkpoints");
        assert_eq!(e.to_string(), "sources.tail: cannot read checkpoints");
        assert_eq!(e.retry(), RetryHint::Backoff);
        assert_eq!(BuildError::internal("x", "y").retry(), RetryHint::Never);
    }
}
