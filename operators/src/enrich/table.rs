//! The reference table: IP addresses and CIDR blocks to service, owner, contact.
//!
//! CSV with a header naming the columns (any order): `cidr` (or `ip`), and any
//! of `service`, `owner`, `contact`. A bare address is a /32 (IPv4) or /128
//! (IPv6). Lookups pick the longest matching prefix.

use std::collections::HashMap;
use std::net::IpAddr;

/// What the table says about an address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostInfo {
    /// Application or service name.
    pub service: Option<String>,
    /// Owning team.
    pub owner: Option<String>,
    /// Who to call.
    pub contact: Option<String>,
}

/// A table that cannot be loaded, with the line at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct TableError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Longest-prefix lookup over IPv4 and IPv6 blocks.
#[derive(Debug, Clone, Default)]
pub struct ReferenceTable {
    /// (is_v6, prefix length, masked network) → entry index.
    blocks: HashMap<(bool, u8, u128), usize>,
    /// Prefix lengths present, longest first, per family.
    lengths_v4: Vec<u8>,
    lengths_v6: Vec<u8>,
    entries: Vec<HostInfo>,
}

fn key(ip: IpAddr) -> (bool, u128, u8) {
    match ip {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (true, u128::from(v6), 128),
    }
}

fn mask(value: u128, len: u8, bits: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let shift = u32::from(bits - len);
    (value >> shift) << shift
}

/// Splits one CSV line into fields, honouring double quotes (`""` escapes a quote).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (',', false) => fields.push(std::mem::take(&mut field).trim().to_string()),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(field.trim().to_string());
    Ok(fields)
}

impl ReferenceTable {
    /// Parses CSV text.
    ///
    /// ```
    /// use spate_operators::enrich::table::ReferenceTable;
    /// let t = ReferenceTable::parse("cidr,service,owner,contact\n10.1.0.0/16,billing,payments-team,#pay-oncall\n10.1.2.3,billing-db,dba,dba@example.com\n").unwrap();
    /// assert_eq!(t.lookup("10.1.9.9".parse().unwrap()).unwrap().service.as_deref(), Some("billing"));
    /// assert_eq!(t.lookup("10.1.2.3".parse().unwrap()).unwrap().owner.as_deref(), Some("dba"));
    /// assert!(t.lookup("192.0.2.1".parse().unwrap()).is_none());
    /// ```
    pub fn parse(text: &str) -> Result<Self, TableError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_start_matches('\u{feff}')))
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let Some((header_line, header)) = lines.next() else {
            return Ok(ReferenceTable::default());
        };
        let header = split_csv(header).map_err(|reason| TableError {
            line: header_line,
            reason,
        })?;
        let col = |names: &[&str]| {
            header
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
        };
        let Some(cidr_col) = col(&["cidr", "ip", "network"]) else {
            return Err(TableError {
                line: header_line,
                reason: "header has no cidr (or ip) column".into(),
            });
        };
        let (service_col, owner_col, contact_col) = (
            col(&["service", "application", "app"]),
            col(&["owner"]),
            col(&["contact"]),
        );
        let mut table = ReferenceTable::default();
        for (line, text) in lines {
            let err = |reason: String| TableError { line, reason };
            let fields = split_csv(text).map_err(err)?;
            let cell = |c: Option<usize>| {
                c.and_then(|i| fields.get(i))
                    .filter(|v| !v.is_empty())
                    .cloned()
            };
            let cidr = cell(Some(cidr_col)).ok_or_else(|| err("empty cidr".into()))?;
            let (addr, len) = match cidr.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (cidr.as_str(), None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| err(format!("{cidr:?} is not an ip address or cidr block")))?;
            let (v6, value, bits) = key(ip);
            let len = match len {
                None => bits,
                Some(l) => l
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= bits)
                    .ok_or_else(|| err(format!("{cidr:?} has a bad prefix length")))?,
            };
            let index = table.entries.len();
            table.entries.push(HostInfo {
                service: cell(service_col),
                owner: cell(owner_col),
                contact: cell(contact_col),
            });
            table
                .blocks
                .insert((v6, len, mask(value, len, bits)), index);
            let lengths = if v6 {
                &mut table.lengths_v6
            } else {
                &mut table.lengths_v4
            };
            if !lengths.contains(&len) {
                lengths.push(len);
                lengths.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
        Ok(table)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no blocks.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of the longest block containing `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&HostInfo> {
        let (v6, value, bits) = key(ip);
        let lengths = if v6 {
            &self.lengths_v6
        } else {
            &self.lengths_v4
        };
        lengths.iter().find_map(|&len| {
            self.blocks
                .get(&(v6, len, mask(value, len, bits)))
                .map(|&i| &self.entries[i])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_in_both_families() {
        let t = ReferenceTable::parse(
            "owner,cidr,service\n\
             net,0.0.0.0/0,internet\n\
             ops,10.0.0.0/8,corp\n\
             db,10.2.0.0/16,database\n\
             v6,2001:db8::/32,lab\n",
        )
        .unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(
            t.lookup(ip("10.2.3.4")).unwrap().service.as_deref(),
            Some("database")
        );
        assert_eq!(
            t.lookup(ip("10.9.3.4")).unwrap().owner.as_deref(),
            Some("ops")
        );
        assert_eq!(
            t.lookup(ip("8.8.8.8")).unwrap().service.as_deref(),
            Some("internet")
        );
        assert_eq!(
            t.lookup(ip("2001:db8::1")).unwrap().service.as_deref(),
            Some("lab")
        );
        assert!(t.lookup(ip("2001:db9::1")).is_none());
    }

    #[test]
    fn quoted_fields_comments_and_blank_cells() {
        let t = ReferenceTable::parse(
            "# hosts\ncidr,service,owner,contact\n\n192.0.2.7,\"web, edge\",,\"a \"\"b\"\"\"\n",
        )
        .unwrap();
        let info = t.lookup(ip("192.0.2.7")).unwrap();
        assert_eq!(info.service.as_deref(), Some("web, edge"));
        assert_eq!(info.owner, None);
        assert_eq!(info.contact.as_deref(), Some("a \"b\""));
    }

    #[test]
    fn errors_name_the_line() {
        let e = ReferenceTable::parse("cidr,service\n10.0.0.0/8,a\nnot-an-ip,b\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("not an ip"), "{e}");
        let e = ReferenceTable::parse("cidr\n10.0.0.0/33\n").unwrap_err();
        assert_eq!((e.line, e.reason.contains("prefix")), (2, true));
        let e = ReferenceTable::parse("service,owner\nx,y\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = ReferenceTable::parse("cidr\n\"10.0.0.1\n").unwrap_err();
        assert_eq!(e.reason, "unterminated quote");
    }

    #[test]
    fn empty_file_is_an_empty_table() {
        assert!(ReferenceTable::parse("").unwrap().is_empty());
    }
}
