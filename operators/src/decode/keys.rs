//! Which extracted field a JSON member key names (the key table of `json.rs`).

/// What a member key means to `json::extract_members`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    CloudWatch,
    Ts,
    Level,
    Message,
    Log,
    Service,
    Host,
    Status,
    Http,
    ClientIp,
    Path,
    Other,
}

/// `Some(field)` when `key` is `name` (`name.len()` is known to match).
#[inline(always)]
fn is(key: &str, name: &str, field: Field) -> Field {
    if key == name { field } else { Field::Other }
}

/// The field a key names: dispatch on length and first/last byte, then one
/// comparison (instead of comparing against every name in turn).
#[inline]
pub(super) fn field_of(key: &str) -> Field {
    use Field::*;
    let b = key.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return Other;
    };
    match (b.len(), first, last) {
        (2, b't', b's') => is(key, "ts", Ts),
        (2, b'i', b'p') => is(key, "ip", ClientIp),
        (3, b'l', b'l') => is(key, "lvl", Level),
        (3, b'l', b'g') => is(key, "log", Log),
        (3, b'm', b'g') => is(key, "msg", Message),
        (3, b'a', b'p') => is(key, "app", Service),
        (3, b'u', b'l') => is(key, "url", Path),
        (3, b'u', b'i') => is(key, "uri", Path),
        (4, b't', b'e') => is(key, "time", Ts),
        (4, b'h', b't') => is(key, "host", Host),
        (4, b'h', b'p') => is(key, "http", Http),
        (4, b'p', b'h') => is(key, "path", Path),
        (5, b'l', b'l') => is(key, "level", Level),
        (6, b's', b's') => is(key, "status", Status),
        (7, b'm', b'e') => is(key, "message", Message),
        (7, b's', b'e') => is(key, "service", Service),
        (8, b's', b'y') => is(key, "severity", Level),
        (8, b'l', b'l') => is(key, "loglevel", Level),
        (8, b'h', b'e') => is(key, "hostname", Host),
        (9, b't', b'p') => is(key, "timestamp", Ts),
        (9, b'l', b'e') => is(key, "levelname", Level),
        (9, b'l', b'l') => match is(key, "log_level", Level) {
            Other => is(key, "log.level", Level),
            f => f,
        },
        (9, b'l', b's') => is(key, "logEvents", CloudWatch),
        (9, b'h', b'e') => is(key, "host.name", Host),
        (9, b'c', b'p') => match is(key, "client_ip", ClientIp) {
            Other => is(key, "client.ip", ClientIp),
            f => f,
        },
        (10, b'@', b'p') => is(key, "@timestamp", Ts),
        (10, b's', b'e') => is(key, "statusCode", Status),
        (11, b'a', b'n') => is(key, "application", Service),
        (11, b'm', b'e') => is(key, "messageType", CloudWatch),
        (11, b's', b'e') => is(key, "status_code", Status),
        (11, b'h', b's') => is(key, "http.status", Status),
        (11, b'r', b'r') => is(key, "remote_addr", ClientIp),
        (12, b's', b'e') => is(key, "service.name", Service),
        (16, b'h', b'e') => is(key, "http.status_code", Status),
        _ => Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_dispatch_matches_the_names() {
        let table: &[(&str, Field)] = &[
            ("messageType", Field::CloudWatch),
            ("logEvents", Field::CloudWatch),
            ("ts", Field::Ts),
            ("timestamp", Field::Ts),
            ("time", Field::Ts),
            ("@timestamp", Field::Ts),
            ("level", Field::Level),
            ("severity", Field::Level),
            ("lvl", Field::Level),
            ("levelname", Field::Level),
            ("log_level", Field::Level),
            ("loglevel", Field::Level),
            ("log.level", Field::Level),
            ("msg", Field::Message),
            ("message", Field::Message),
            ("log", Field::Log),
            ("service", Field::Service),
            ("app", Field::Service),
            ("application", Field::Service),
            ("service.name", Field::Service),
            ("host", Field::Host),
            ("hostname", Field::Host),
            ("host.name", Field::Host),
            ("status", Field::Status),
            ("status_code", Field::Status),
            ("statusCode", Field::Status),
            ("http.status", Field::Status),
            ("http.status_code", Field::Status),
            ("http", Field::Http),
            ("client_ip", Field::ClientIp),
            ("ip", Field::ClientIp),
            ("remote_addr", Field::ClientIp),
            ("client.ip", Field::ClientIp),
            ("path", Field::Path),
            ("url", Field::Path),
            ("uri", Field::Path),
        ];
        for (k, f) in table {
            assert_eq!(field_of(k), *f, "{k}");
            // Near misses of every name are ordinary keys.
            for bad in [k.to_uppercase(), format!("{k}x"), k[1..].to_string()] {
                if !table.iter().any(|(n, _)| *n == bad) {
                    assert_eq!(field_of(&bad), Field::Other, "{bad}");
                }
            }
        }
        for k in ["", "t", "trace_id", "lol", "l\0l", "hpst", "sssssss"] {
            assert_eq!(field_of(k), Field::Other, "{k}");
        }
    }
}
