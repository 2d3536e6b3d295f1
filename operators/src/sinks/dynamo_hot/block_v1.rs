//! Blocks of layout 1 (written before layout 2, still read until they
//! expire): a zstd frame of the block's events as JSON, one vector per
//! field, `ts` as differences from the previous event (the first from 0).

use serde::{Deserialize, Serialize};

use super::DynamoHotError;
use super::wire::MAX_RAW_BYTES;
use crate::event::Severity;
use crate::sinks::hot::StoredEvent;

/// Version of the body layout (`v`).
const BODY_VERSION: u32 = 1;

/// The JSON body.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    v: u32,
    id: Vec<String>,
    ts: Vec<i64>,
    sev: Vec<u8>,
    host: Vec<Option<String>>,
    src: Vec<String>,
    lg: Vec<Option<String>>,
    ls: Vec<Option<String>>,
    tags: Vec<Vec<String>>,
    st: Vec<Option<u16>>,
    ip: Vec<Option<String>>,
    msg: Vec<String>,
    attrs: Vec<Option<String>>,
}

/// A block of layout 1 as it was written: the compressed body and its
/// length uncompressed (the item's `raw`). For tests of reading old items.
pub fn encode(events: &[StoredEvent]) -> Result<(Vec<u8>, usize), DynamoHotError> {
    let mut body = Body {
        v: BODY_VERSION,
        ..Body::default()
    };
    let mut previous = 0i64;
    for e in events {
        body.id.push(e.event_id.clone());
        body.ts.push(e.ts_ms.wrapping_sub(previous));
        previous = e.ts_ms;
        body.sev.push(e.severity.index() as u8);
        body.host.push(e.host.clone());
        body.src.push(e.source.clone());
        body.lg.push(e.log_group.clone());
        body.ls.push(e.log_stream.clone());
        body.tags.push(e.tags.clone());
        body.st.push(e.status);
        body.ip.push(e.client_ip.clone());
        body.msg.push(e.message.clone());
        body.attrs.push(e.attrs.as_ref().map(|a| a.to_string()));
    }
    let raw =
        serde_json::to_vec(&body).map_err(|e| DynamoHotError::Data(format!("block body: {e}")))?;
    let bytes = zstd::bulk::compress(&raw, 9)
        .map_err(|e| DynamoHotError::Data(format!("block compression: {e}")))?;
    Ok((bytes, raw.len()))
}

/// The events of a block body (`raw_len` as stored with it), oldest first.
pub(super) fn unpack(bytes: &[u8], raw_len: usize) -> Result<Vec<StoredEvent>, DynamoHotError> {
    if raw_len > MAX_RAW_BYTES {
        return Err(DynamoHotError::Data(format!(
            "block body of {raw_len} bytes is above the {MAX_RAW_BYTES} bytes a reader accepts"
        )));
    }
    let raw = zstd::bulk::decompress(bytes, raw_len)
        .map_err(|e| DynamoHotError::Data(format!("block body does not decompress: {e}")))?;
    let body: Body = serde_json::from_slice(&raw)
        .map_err(|e| DynamoHotError::Data(format!("block body is not readable: {e}")))?;
    if body.v != BODY_VERSION {
        return Err(DynamoHotError::Data(format!(
            "block body version {} (this build reads {BODY_VERSION})",
            body.v
        )));
    }
    let n = body.id.len();
    let lengths = [
        body.ts.len(),
        body.sev.len(),
        body.host.len(),
        body.src.len(),
        body.lg.len(),
        body.ls.len(),
        body.tags.len(),
        body.st.len(),
        body.ip.len(),
        body.msg.len(),
        body.attrs.len(),
    ];
    if lengths.iter().any(|&l| l != n) {
        return Err(DynamoHotError::Data(
            "block body columns differ in length".into(),
        ));
    }
    let mut out = Vec::with_capacity(n);
    let mut ts = 0i64;
    let columns = body
        .id
        .into_iter()
        .zip(body.ts)
        .zip(body.sev)
        .zip(body.host)
        .zip(body.src)
        .zip(body.lg)
        .zip(body.ls)
        .zip(body.tags)
        .zip(body.st)
        .zip(body.ip)
        .zip(body.msg)
        .zip(body.attrs);
    for (((((((((((id, dt), sev), host), src), lg), ls), tags), st), ip), msg), attrs) in columns {
        ts = ts.wrapping_add(dt);
        let severity = *Severity::ALL.get(usize::from(sev)).ok_or_else(|| {
            DynamoHotError::Data(format!("block event {id} has severity index {sev}"))
        })?;
        let attrs = match attrs {
            Some(a) => Some(serde_json::from_str(&a).map_err(|e| {
                DynamoHotError::Data(format!("stored attrs of {id} are not JSON: {e}"))
            })?),
            None => None,
        };
        out.push(StoredEvent {
            event_id: id,
            ts_ms: ts,
            severity,
            host,
            source: src,
            log_group: lg,
            log_stream: ls,
            tags,
            status: st,
            client_ip: ip,
            message: msg,
            attrs,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::hot::event::tests::stored;

    #[test]
    fn layout_1_reads_back() {
        let events: Vec<StoredEvent> = (0..20).map(|i| stored(i, 1_000 + i as i64)).collect();
        let (bytes, raw_len) = encode(&events).unwrap();
        assert_eq!(unpack(&bytes, raw_len).unwrap(), events);
        assert!(unpack(&bytes[..bytes.len() / 2], raw_len).is_err());
        assert!(unpack(b"not zstd", 100).is_err());
        assert!(unpack(&bytes, MAX_RAW_BYTES + 1).is_err());
        let bad = zstd::bulk::compress(br#"{"v":1,"id":["a"]}"#, 1).unwrap();
        assert!(unpack(&bad, 100).is_err(), "columns of different lengths");
        let mut broken = stored(1, 1);
        broken.attrs = Some(serde_json::json!("x"));
        let (mut bytes, _) = encode(&[broken]).unwrap();
        let raw = zstd::bulk::decompress(&bytes, 1 << 16).unwrap();
        let raw = String::from_utf8(raw)
            .unwrap()
            .replace(r#""\"x\"""#, r#""{""#);
        bytes = zstd::bulk::compress(raw.as_bytes(), 1).unwrap();
        assert!(
            unpack(&bytes, raw.len()).is_err(),
            "attrs that are not JSON"
        );
        let later = zstd::bulk::compress(br#"{"v":7}"#, 1).unwrap();
        assert!(unpack(&later, 100).is_err(), "an unknown version");
    }
}
