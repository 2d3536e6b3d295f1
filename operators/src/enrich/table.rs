//! The reference table: IP addresses and CIDR blocks to service, owner, contact.
//!
//! CSV with a header naming the columns (any order): `cidr` (or `ip`), and any
//! of `service`, `owner`, `contact`; further columns are extra attributes. Or
//! JSON lines (the text starts with `{`): one object a line with the same keys,
//! other string, number or boolean members being extra attributes. A bare
//! address is a /32 (IPv4) or /128 (IPv6). Lookups pick the longest matching
//! prefix.

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
    /// Further columns (name, value), in table order; added to `attrs` too.
    pub extra: Vec<(String, String)>,
}

impl HostInfo {
    /// Whether the entry adds anything to `attrs`.
    pub fn has_attrs(&self) -> bool {
        self.owner.is_some() || self.contact.is_some() || !self.extra.is_empty()
    }
}

const CIDR_NAMES: &[&str] = &["cidr", "ip", "network"];
const SERVICE_NAMES: &[&str] = &["service", "application", "app"];

/// A table that cannot be loaded, with the line at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct TableError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// The block and entry of one JSON-lines row.
fn json_row(text: &str) -> Result<(String, HostInfo), String> {
    let serde_json::Value::Object(object) =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?
    else {
        return Err("not a JSON object".into());
    };
    let mut cidr = None;
    let mut info = HostInfo::default();
    for (name, value) in object {
        let value = match value {
            serde_json::Value::String(s) if s.is_empty() => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => continue,
            v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => v.to_string(),
            _ => return Err(format!("{name:?} is not a string, number or boolean")),
        };
        let is = |names: &[&str]| names.iter().any(|n| name.eq_ignore_ascii_case(n));
        if is(CIDR_NAMES) {
            cidr = Some(value);
        } else if is(SERVICE_NAMES) {
            info.service = Some(value);
        } else if is(&["owner"]) {
            info.owner = Some(value);
        } else if is(&["contact"]) {
            info.contact = Some(value);
        } else {
            info.extra.push((name, value));
        }
    }
    let cidr = cidr.ok_or("no cidr (or ip) member")?;
    Ok((cidr, info))
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
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .peekable();
        let mut table = ReferenceTable::default();
        match lines.peek() {
            None => return Ok(table),
            Some((_, first)) if first.trim_start().starts_with('{') => {
                for (line, text) in lines {
                    let err = |reason: String| TableError { line, reason };
                    let (cidr, info) = json_row(text).map_err(err)?;
                    table.insert(&cidr, info).map_err(err)?;
                }
                return Ok(table);
            }
            Some(_) => {}
        }
        let (header_line, header) = lines.next().expect("peeked");
        let header = split_csv(header).map_err(|reason| TableError {
            line: header_line,
            reason,
        })?;
        let col = |names: &[&str]| {
            header
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
        };
        let Some(cidr_col) = col(CIDR_NAMES) else {
            return Err(TableError {
                line: header_line,
                reason: "header has no cidr (or ip) column".into(),
            });
        };
        let (service_col, owner_col, contact_col) =
            (col(SERVICE_NAMES), col(&["owner"]), col(&["contact"]));
        let known = [Some(cidr_col), service_col, owner_col, contact_col];
        let extra_cols: Vec<usize> = (0..header.len())
            .filter(|i| !known.contains(&Some(*i)) && !header[*i].is_empty())
            .collect();
        for (line, text) in lines {
            let err = |reason: String| TableError { line, reason };
            let fields = split_csv(text).map_err(err)?;
            let cell = |c: Option<usize>| {
                c.and_then(|i| fields.get(i))
                    .filter(|v| !v.is_empty())
                    .cloned()
            };
            let cidr = cell(Some(cidr_col)).ok_or_else(|| err("empty cidr".into()))?;
            let info = HostInfo {
                service: cell(service_col),
                owner: cell(owner_col),
                contact: cell(contact_col),
                extra: extra_cols
                    .iter()
                    .filter_map(|&i| Some((header[i].clone(), cell(Some(i))?)))
                    .collect(),
            };
            table.insert(&cidr, info).map_err(err)?;
        }
        Ok(table)
    }

    /// Adds the block `cidr` (or a bare address) with `info`.
    fn insert(&mut self, cidr: &str, info: HostInfo) -> Result<(), String> {
        let (addr, len) = match cidr.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (cidr, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{cidr:?} is not an ip address or cidr block"))?;
        let (v6, value, bits) = key(ip);
        let len = match len {
            None => bits,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= bits)
                .ok_or_else(|| format!("{cidr:?} has a bad prefix length"))?,
        };
        let index = self.entries.len();
        self.entries.push(info);
        self.blocks.insert((v6, len, mask(value, len, bits)), index);
        let lengths = if v6 {
            &mut self.lengths_v6
        } else {
            &mut self.lengths_v4
        };
        if !lengths.contains(&len) {
            lengths.push(len);
            lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        Ok(())
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
    fn extra_columns_and_json_lines() {
        let csv = ReferenceTable::parse("cidr,service,rack,owner,tier\n10.0.0.0/8,corp,r7,ops,\n")
            .unwrap();
        let info = csv.lookup(ip("10.1.1.1")).unwrap();
        assert_eq!(info.extra, vec![("rack".to_string(), "r7".to_string())]);
        assert!(info.has_attrs());
        let json = ReferenceTable::parse(
            "{\"ip\": \"192.0.2.1\", \"app\": \"edge\", \"contact\": \"#edge\", \"cores\": 8, \"env\": \"prod\"}\n\
             \n{\"cidr\": \"2001:db8::/32\", \"service\": \"lab\", \"owner\": null}\n",
        )
        .unwrap();
        assert_eq!(json.len(), 2);
        let edge = json.lookup(ip("192.0.2.1")).unwrap();
        assert_eq!(edge.service.as_deref(), Some("edge"));
        assert_eq!(edge.contact.as_deref(), Some("#edge"));
        assert_eq!(
            edge.extra,
            vec![
                ("cores".to_string(), "8".to_string()),
                ("env".to_string(), "prod".to_string())
            ]
        );
        let lab = json.lookup(ip("2001:db8::9")).unwrap();
        assert!(!lab.has_attrs());
        let e =
            ReferenceTable::parse("{\"ip\": \"10.0.0.1\"}\n{\"service\": \"x\"}\n").unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (2, "no cidr (or ip) member"));
        let e = ReferenceTable::parse("{\"ip\": \"10.0.0.1\", \"tags\": [1]}\n").unwrap_err();
        assert!(e.reason.contains("\"tags\""), "{e}");
        let e = ReferenceTable::parse("{\"ip\": \"10.0.0.1\"\n").unwrap_err();
        assert!(e.reason.starts_with("not a JSON object"), "{e}");
    }

    #[test]
    fn empty_file_is_an_empty_table() {
        assert!(ReferenceTable::parse("").unwrap().is_empty());
    }
}
