//! The built-in keywords and failed-login phrases found word by word, used
//! instead of the Aho-Corasick automaton when no keyword rules are configured.
//!
//! Every built-in pattern is letters (and one space in a phrase), so a
//! word-bounded match of one is exactly a word equal to it (ASCII
//! case-insensitively), a phrase is two such words with one space between, and
//! the CamelCase rule of `Error`/`Exception` is a word ending in `Error` /
//! `Exception` (capital `E`, any case after) right after an ASCII letter. One
//! pass classifies bytes into words; only words whose length and first letter
//! fit a pattern are compared. `tests.rs` checks it against the automaton.

use crate::event::Severity;

/// Bytes that make up words (ASCII letters, digits, `_`, and any byte of a
/// multi-byte UTF-8 character): a keyword matches only between non-word bytes.
#[inline]
pub(super) const fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Which built-in patterns are on.
#[derive(Debug, Clone, Copy)]
pub(super) struct BuiltinWords {
    /// Severity keywords (`keyword_severity`).
    pub severity: bool,
    /// Failed-login phrases (`builtin_tags`).
    pub phrases: bool,
}

const WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = is_word(i as u8);
        i += 1;
    }
    t
};

/// Longest built-in word (`authentication`).
const MAX_WORD: usize = 14;

fn keyword(w: &[u8]) -> Option<Severity> {
    use Severity::*;
    let (s, name): (Severity, &[u8]) = match (w.len(), w[0]) {
        (8, b'c') => (Critical, b"critical"),
        (5, b'f') => (Critical, b"fatal"),
        (5, b'p') => (Critical, b"panic"),
        (9, b'e') if w[1] == b'm' => (Critical, b"emergency"),
        (9, b'e') => (Error, b"exception"),
        (5, b'e') => (Error, b"error"),
        (6, b'f') => (Error, b"failed"),
        (7, b'f') => (Error, b"failure"),
        (7, b'w') => (Warning, b"warning"),
        (4, b'w') => (Warning, b"warn"),
        (10, b'd') => (Warning, b"deprecated"),
        _ => return None,
    };
    (w == name).then_some(s)
}

/// Second words of the phrases starting with the (lower-case) word `w`.
fn phrase_tails(w: &[u8]) -> &'static [&'static [u8]] {
    match w {
        b"failed" => &[b"password", b"publickey", b"login"],
        b"invalid" => &[b"user", b"password"],
        b"authentication" => &[b"failure", b"failed"],
        b"login" => &[b"failed", b"failure"],
        b"logon" => &[b"failure"],
        b"incorrect" => &[b"password"],
        _ => &[],
    }
}

/// `h[at..]` is ` <tail>` followed by a word boundary, for one of `tails`.
fn phrase_at(h: &[u8], at: usize, tails: &[&[u8]]) -> bool {
    h.get(at) == Some(&b' ')
        && tails.iter().any(|t| {
            let end = at + 1 + t.len();
            h.get(at + 1..end)
                .is_some_and(|s| s.eq_ignore_ascii_case(t))
                && h.get(end).is_none_or(|&c| !WORD[c as usize])
        })
}

/// A CamelCase `...Error` / `...Exception` tail of the word `w` (longer than
/// the keyword).
fn camel(w: &[u8]) -> Option<Severity> {
    let tail = |name: &[u8]| {
        let n = name.len();
        w.len() > n
            && w[w.len() - n] == b'E'
            && w[w.len() - n - 1].is_ascii_alphabetic()
            && w[w.len() - n..].eq_ignore_ascii_case(name)
    };
    (tail(b"error") || tail(b"exception")).then_some(Severity::Error)
}

impl BuiltinWords {
    /// Strongest keyword severity (INFO when none) and whether a failed-login
    /// phrase occurs in `h`.
    /// `need_severity` false (an explicit level decides) skips the keywords.
    pub(super) fn scan(self, h: &[u8], need_severity: bool) -> (Severity, bool) {
        let severity = self.severity && need_severity;
        if !severity && !self.phrases {
            return (Severity::Info, false);
        }
        let (mut sev, mut login) = (Severity::Info, false);
        let mut i = 0;
        let n = h.len();
        while i < n {
            // Skip separators, then take one word.
            while i < n && !WORD[h[i] as usize] {
                i += 1;
            }
            let start = i;
            while i < n && WORD[h[i] as usize] {
                i += 1;
            }
            let w = &h[start..i];
            if w.len() < 4 {
                continue;
            }
            if severity && sev < Severity::Critical {
                let last = w[w.len() - 1] | 0x20;
                if w.len() > 5 && (last == b'r' || last == b'n') {
                    sev = sev.max(camel(w).unwrap_or(Severity::Info));
                }
            }
            // Every pattern starts with one of these letters.
            if w.len() > MAX_WORD
                || !matches!(w[0] | 0x20, b'a' | b'c'..=b'f' | b'i' | b'l' | b'p' | b'w')
            {
                continue;
            }
            let mut buf = [0u8; MAX_WORD];
            for (d, c) in buf.iter_mut().zip(w) {
                *d = c.to_ascii_lowercase();
            }
            let lower = &buf[..w.len()];
            if severity && let Some(s) = keyword(lower) {
                sev = sev.max(s);
            }
            if self.phrases && !login {
                let tails = phrase_tails(lower);
                login = !tails.is_empty() && phrase_at(h, i, tails);
            }
        }
        (sev, login)
    }
}
