//! Finding the bytes a JSON string cannot hold as they are, eight at a time:
//! the scan under the flat JSON reader and the JSON string writer.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Index of the first byte at or after `from` that a JSON string cannot hold
/// as is: `"`, `\` or a control byte below 0x20.
///
/// Eight bytes at a time: the classic "has zero byte" test on `x ^ '"'`,
/// `x ^ '\'` and `x - 0x20`; its lowest flagged byte is always a real hit.
#[inline]
pub(super) fn find_special(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().ok()?);
        let q = x ^ (ONES * u64::from(b'"'));
        let s = x ^ (ONES * u64::from(b'\\'));
        let hit = (q.wrapping_sub(ONES) & !q)
            | (s.wrapping_sub(ONES) & !s)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let hit = hit & HIGHS;
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bytes_are_found_exactly() {
        let naive = |b: &[u8], from: usize| {
            b[from..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .map(|p| from + p)
        };
        let mut s: Vec<u8> = (0..64u8).map(|i| b'a' + i % 26).collect();
        for pos in 0..s.len() {
            for c in [b'"', b'\\', 0u8, 0x1f, b'\n'] {
                let old = s[pos];
                s[pos] = c;
                for from in 0..=pos {
                    assert_eq!(find_special(&s, from), naive(&s, from));
                }
                s[pos] = old;
            }
        }
        let mixed = "é\u{7f}ÿ\u{80}abc\"".as_bytes();
        assert_eq!(find_special(mixed, 0), naive(mixed, 0));
        assert_eq!(find_special(b"abc", 0), None);
    }
}
