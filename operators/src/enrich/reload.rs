//! The reload decision: what a check of the table's source means for the
//! table in force. Pure: the text is parsed here, nothing is read or swapped.

use super::source::Poll;
use super::table::{ReferenceTable, TableError};

/// What to do after a check of the table's source.
#[derive(Debug)]
pub enum Reload {
    /// Nothing new: keep the table in force.
    Keep,
    /// A new version that parsed: swap it in.
    Swap {
        /// Its version (ETag or modification time).
        version: String,
        /// When it was last modified (Unix ms), if known.
        modified_ms: Option<i64>,
        /// The table.
        table: ReferenceTable,
    },
    /// A new version that does not parse: keep the table in force, remember
    /// the version so it is not parsed again.
    Reject {
        /// The broken version.
        version: String,
        /// Why it does not parse.
        error: TableError,
    },
    /// The source could not be read: keep the table in force.
    Unreachable(String),
}

/// Decides what a check's result means for the table in force; pure.
///
/// ```
/// use spate_operators::enrich::source::Poll;
/// use spate_operators::enrich::{Reload, decide};
/// assert!(matches!(decide(Poll::Unchanged), Reload::Keep));
/// let new = Poll::Changed { version: "e2".into(), modified_ms: None, text: "ip\n10.0.0.1\n".into() };
/// assert!(matches!(decide(new), Reload::Swap { .. }));
/// let broken = Poll::Changed { version: "e3".into(), modified_ms: None, text: "ip\nnope\n".into() };
/// assert!(matches!(decide(broken), Reload::Reject { .. }));
/// ```
pub fn decide(poll: Poll) -> Reload {
    match poll {
        Poll::Unchanged => Reload::Keep,
        Poll::Unreachable(reason) => Reload::Unreachable(reason),
        Poll::Changed {
            version,
            modified_ms,
            text,
        } => match ReferenceTable::parse(&text) {
            Ok(table) => Reload::Swap {
                version,
                modified_ms,
                table,
            },
            Err(error) => Reload::Reject { version, error },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_decisions() {
        assert!(matches!(decide(Poll::Unchanged), Reload::Keep));
        assert!(matches!(
            decide(Poll::Unreachable("down".into())),
            Reload::Unreachable(r) if r == "down"
        ));
        let changed = |text: &str| Poll::Changed {
            version: "\"e1\"".into(),
            modified_ms: Some(7),
            text: text.into(),
        };
        match decide(changed("ip,owner\n10.0.0.1,a\n")) {
            Reload::Swap {
                version,
                modified_ms,
                table,
            } => assert_eq!(
                (version.as_str(), modified_ms, table.len()),
                ("\"e1\"", Some(7), 1)
            ),
            other => panic!("{other:?}"),
        }
        match decide(changed("ip,owner\n10.0.0.1,a\n10.0.0.300,b\n")) {
            Reload::Reject { version, error } => {
                assert_eq!(version, "\"e1\"");
                assert_eq!(error.line, 3);
            }
            other => panic!("{other:?}"),
        }
        // An empty new version is an empty table, not an error.
        assert!(matches!(decide(changed("")), Reload::Swap { table, .. } if table.is_empty()));
    }
}
