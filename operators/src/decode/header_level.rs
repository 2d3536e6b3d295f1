//! Level tokens in the header of a plain-text line ([`super::text`]).
//!
//! A level token is an upper-case level spelling (`ERROR`, `WARN`, `SEVERE`,
//! `FATAL`, `FAILURE`), or any case when bracketed or colon-terminated
//! (`[warn]`, `error:`), or a Cisco-style message code
//! `%FACILITY-SEVERITY-MNEMONIC` whose severity is a syslog digit
//! (`%LINK-3-UPDOWN` is an error). It is looked for in the first
//! [`LEVEL_FIELDS`] fields whatever they are (log4j, logback and most app
//! formats put it there), and further, up to [`HEADER_FIELDS`] fields, as
//! long as every field before it is a header field: something with a digit
//! (times, dates, node ids, pids), punctuation alone (`-`, `|`), a bracketed
//! group, an upper-case name (facilities and subsystems: `RAS KERNEL`), a
//! dotted, slashed or `@` name (hosts, classes, paths), a month or weekday
//! abbreviation, a `tag:`, or a capitalised name followed by another header
//! field (`Job MMCS INFO`). So in a fixed header of many fields, such as
//! `- 1764153600 2025.11.26 R12-M0-N4-C:J03-U01 2025-11-26-10.40.00.123456
//! R12-M0-N4-C:J03-U01 RAS KERNEL INFO 2 parity errors corrected` (the layout
//! of IBM Blue Gene/L RAS logs), the `INFO` decides, not the word `error` of
//! the message; and once a word of prose has started the message, later
//! upper-case words are the message's.
//!
//! The test corpus of such formats is `operators/tests/data/header_levels.txt`.
use crate::classify::{parse_level, syslog_severity};
use crate::event::Severity;

use super::timestamp::month_abbrev;

/// Number of leading fields searched for a level token, whatever they are.
pub const LEVEL_FIELDS: usize = 6;
/// Number of leading fields searched for a level token while every field
/// before it is a header field.
pub const HEADER_FIELDS: usize = 16;

/// The level token of the header of `s` (see the module docs).
pub(super) fn level_token(s: &str) -> Option<Severity> {
    let mut header = true;
    let mut fields = s
        .split_ascii_whitespace()
        .take(HEADER_FIELDS)
        .enumerate()
        .peekable();
    while let Some((i, tok)) = fields.next() {
        if i >= LEVEL_FIELDS && !header {
            return None;
        }
        if let Some(level) = token_level(tok) {
            return Some(level);
        }
        header = header
            && match field_kind(tok) {
                FieldKind::Header => true,
                // `Job MMCS INFO`: a name among header fields is one of them.
                FieldKind::Name => fields
                    .peek()
                    .is_some_and(|(_, next)| field_kind(next) == FieldKind::Header),
                FieldKind::Prose => false,
            };
    }
    None
}

/// The level one field spells, if it is a level token.
pub(super) fn token_level(tok: &str) -> Option<Severity> {
    if tok.starts_with('%') {
        return cisco_severity(tok);
    }
    let bracketed = tok.starts_with(['[', '(', '<', '{']);
    let inner = tok.trim_matches(|c: char| "[](){}<>:,;|-".contains(c));
    let colon = tok.ends_with(':');
    if inner.len() < 3 || inner.len() > 11 {
        return None;
    }
    let upper = inner.bytes().all(|c| c.is_ascii_uppercase());
    if !(upper || bracketed || colon) {
        return None;
    }
    if matches!(
        inner.to_ascii_lowercase().as_str(),
        "fine" | "finer" | "finest" | "config"
    ) {
        return None;
    }
    parse_level(inner)
}

/// `%FACILITY-SEVERITY-MNEMONIC:` (Cisco IOS, NX-OS; `%ASA-6-302013:`), also
/// with a sub-facility (`%FAC-SUB-SEVERITY-MNEMONIC`): the syslog severity
/// digit (0-7).
fn cisco_severity(tok: &str) -> Option<Severity> {
    let code = tok.strip_prefix('%')?.trim_end_matches(':');
    let name = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
    };
    let mut parts = code.split('-');
    let (facility, second, third) = (parts.next()?, parts.next()?, parts.next()?);
    let fourth = parts.next();
    if parts.next().is_some() || !facility.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    let severity = match fourth {
        None if name(facility) && name(third) => second,
        Some(mnemonic) if name(facility) && name(second) && name(mnemonic) => third,
        _ => return None,
    };
    match severity.as_bytes() {
        &[digit @ b'0'..=b'7'] => Some(syslog_severity(digit - b'0')),
        _ => None,
    }
}

/// How a field reads: part of a fixed header, a capitalised name (a header
/// field when another header field follows), or a word of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Header,
    Name,
    Prose,
}

/// What `tok` reads as (see the module docs for the header fields).
fn field_kind(tok: &str) -> FieldKind {
    let b = tok.as_bytes();
    let interior = b.get(1..b.len().saturating_sub(1)).unwrap_or_default();
    let header = b.iter().any(u8::is_ascii_digit)
        || b.iter().all(|c| !c.is_ascii_alphanumeric())
        || tok.starts_with(['[', '(', '<', '{'])
        || b.iter()
            .all(|&c| c.is_ascii_uppercase() || matches!(c, b'_' | b'-' | b':'))
        || interior
            .iter()
            .any(|c| matches!(c, b'.' | b'/' | b'@' | b'$' | b'_' | b'='))
        || (b.len() > 1
            && b.ends_with(b":")
            && b[..b.len() - 1].iter().all(u8::is_ascii_alphabetic))
        || is_month_or_weekday(b);
    if header {
        FieldKind::Header
    } else if b.len() > 1 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_lowercase)
    {
        FieldKind::Name
    } else {
        FieldKind::Prose
    }
}

/// `Jan`..`Dec`, `Mon`..`Sun`, capitalised, possibly after Cisco's clock
/// marks `*` (not synchronised) or `.` (synchronised, then lost).
fn is_month_or_weekday(b: &[u8]) -> bool {
    let b = b
        .strip_prefix(b"*")
        .or_else(|| b.strip_prefix(b"."))
        .unwrap_or(b);
    b.len() == 3
        && b[0].is_ascii_uppercase()
        && (month_abbrev(b).is_some()
            || matches!(
                b,
                b"Mon" | b"Tue" | b"Wed" | b"Thu" | b"Fri" | b"Sat" | b"Sun"
            ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Severity::*;

    fn level(l: &str) -> Option<Severity> {
        super::super::text::parse_text(l, 1_764_154_800_000).level
    }

    #[test]
    fn level_deep_in_a_fixed_header_wins() {
        let bgl = |facility: &str, level: &str, message: &str| {
            format!(
                "- 1764153600 2025.11.26 R12-M0-N4-C:J03-U01 2025-11-26-10.40.00.123456 \
                 R12-M0-N4-C:J03-U01 RAS {facility} {level} {message}"
            )
        };
        let line = bgl("KERNEL", "INFO", "2 parity errors corrected");
        assert_eq!(level(&line), Some(Info));
        assert_eq!(level(&bgl("APP", "WARNING", "x")), Some(Warning));
        assert_eq!(level(&bgl("LINKCARD", "SEVERE", "x")), Some(Error));
        assert_eq!(level(&bgl("KERNEL", "ERROR", "x")), Some(Error));
        assert_eq!(level(&bgl("KERNEL", "FATAL", "x")), Some(Critical));
        assert_eq!(level(&bgl("APP", "FAILURE", "x")), Some(Critical));
        // The level is the 9th field: beyond the first six, found because
        // every field before it is a header field.
        const { assert!(LEVEL_FIELDS < 9 && 9 <= HEADER_FIELDS) };
        // A capitalised name among header fields, then the level.
        assert_eq!(
            level("18822005 2025-11-26-10.41.04.1 455903 MIR-4-2048 R05-M1 Job MMCS INFO x"),
            Some(Info)
        );
        // Syslog behind a fixed prefix: `tag: level:`.
        assert_eq!(
            level("- 1764154000 2025.11.26 cn4 Nov 26 10:46:40 cn4/cn4 kernel: INFO: task blocked"),
            Some(Info)
        );
    }

    #[test]
    fn prose_ends_the_header() {
        // Beyond the first fields, after a word of the message: not a level.
        assert_eq!(
            level("- 1764154100 2025.11.26 cn9 operator note: the INFO panel"),
            None
        );
        assert_eq!(
            level("backup of volume vol7 ended in state ALERT now"),
            None
        );
        // A capitalised word followed by prose is prose.
        assert_eq!(
            level("- 1764154100 2025.11.26 cn9 Operator replaced it, ERROR gone"),
            None
        );
        // Within the first fields, a level token counts whatever precedes it.
        assert_eq!(level("backup of vol7: ERROR"), Some(Error));
        // Never beyond the header's limit.
        let deep = format!("{}INFO x", "- ".repeat(HEADER_FIELDS));
        assert_eq!(level(&deep), None);
    }

    #[test]
    fn fields_read_as_header_name_or_prose() {
        use FieldKind::*;
        for tok in [
            "-",
            "1764153600",
            "2025.11.26",
            "R12-M0-N4-C:J03-U01",
            "[main]",
            "RAS",
            "KERNEL",
            "dfs.DataNode$PacketResponder:",
            "local@adm1",
            "postfix/pickup[4412]:",
            "kernel:",
            "Nov",
            "*Mar",
            "Software_Error",
            "key=value",
        ] {
            assert_eq!(field_kind(tok), Header, "{tok}");
        }
        for tok in ["Job", "Card", "Operator", "November"] {
            assert_eq!(field_kind(tok), Name, "{tok}");
        }
        for tok in ["instruction", "the", "corrected.", "may", "Info,"] {
            assert_eq!(field_kind(tok), Prose, "{tok}");
        }
    }

    #[test]
    fn cisco_message_codes_carry_a_syslog_severity() {
        assert_eq!(
            level("000412: *Nov 26 10:45:00.123: %LINK-3-UPDOWN: Interface Gi0/1, down"),
            Some(Error)
        );
        assert_eq!(
            level("%ETHPORT-5-IF_DOWN_LINK_FAILURE: Interface Ethernet1/7 is down"),
            Some(Info)
        );
        assert_eq!(level("%SYS-2-MALLOCFAIL: x"), Some(Critical));
        assert_eq!(level("%ASA-4-106023: Deny tcp"), Some(Warning));
        assert_eq!(
            level(
                "RP/0/RSP0/CPU0:Nov 26 10:45:05.000 UTC: ifmgr[254]: %PKT_INFRA-LINK-3-UPDOWN : x"
            ),
            Some(Error)
        );
        for not_a_code in [
            "%LINK-8-UPDOWN: x",
            "%LINK-33-UPDOWN: x",
            "%link-3-updown: x",
            "%LINK-3: x",
            "%A-B-C-3-D: x",
            "%-3-UPDOWN: x",
            "%3-3-UPDOWN: x",
            "95%-3-X",
        ] {
            assert_eq!(level(not_a_code), None, "{not_a_code}");
        }
    }
}
