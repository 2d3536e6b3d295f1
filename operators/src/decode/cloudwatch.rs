//! CloudWatch Logs subscription payloads: gzip, base64 of gzip, or plain JSON
//! `{"messageType","owner","logGroup","logStream","subscriptionFilters","logEvents"}`.

use std::io::Read;

use base64::Engine as _;
use flate2::read::MultiGzDecoder;
use simd_json::{Node, StaticNode};

use super::json::{as_str, members};
use super::{
    BOM, DeadLetter, DecodeContext, DecodeStats, Engine, EventId, JsonScratch, LineDecoder,
    LineMeta, LineOutcome, dead_letter, parse_json,
};
use crate::event::EventBatch;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

impl LineDecoder {
    /// Decodes one CloudWatch Logs subscription payload (gzip bytes, base64 of
    /// gzip, or plain JSON). `CONTROL_MESSAGE` payloads are counted in
    /// [`DecodeStats::control_messages`]; each `DATA_MESSAGE` logEvent's message
    /// is decoded as a line (JSON, access log or text) with `log_group` and
    /// `log_stream` set, `event_id` = the logEvent id and `ts` falling back to the
    /// logEvent timestamp. A payload that cannot be unpacked is one dead letter at
    /// `position`.
    pub fn decode_cloudwatch(
        &mut self,
        payload: &[u8],
        position: u64,
        ctx: &DecodeContext<'_>,
        out: &mut EventBatch,
        dead: &mut Vec<DeadLetter>,
    ) -> DecodeStats {
        let mut stats = DecodeStats::default();
        let keep = payload.len().min(self.engine.cfg.max_line_bytes);
        let fail = |reason: String, dead: &mut Vec<DeadLetter>| {
            dead.push(dead_letter(reason, ctx, position, &payload[..keep]));
            DecodeStats {
                dead_letters: 1,
                ..DecodeStats::default()
            }
        };
        let p = payload.strip_prefix(BOM).unwrap_or(payload).trim_ascii();
        let max = self.engine.cfg.max_payload_bytes;
        let json: &[u8] = if p.starts_with(b"{") {
            p
        } else {
            let compressed: &[u8] = if p.starts_with(GZIP_MAGIC) {
                p
            } else {
                self.b64.clear();
                let clean: Vec<u8>;
                let text = if p.iter().any(u8::is_ascii_whitespace) {
                    clean = p
                        .iter()
                        .copied()
                        .filter(|b| !b.is_ascii_whitespace())
                        .collect();
                    &clean[..]
                } else {
                    p
                };
                if base64::engine::general_purpose::STANDARD
                    .decode_vec(text, &mut self.b64)
                    .is_err()
                {
                    return fail("bad base64".into(), dead);
                }
                &self.b64
            };
            if compressed.starts_with(b"{") {
                compressed
            } else {
                if !compressed.starts_with(GZIP_MAGIC) {
                    return fail("bad gzip: not gzip data".into(), dead);
                }
                self.gz.clear();
                let read = MultiGzDecoder::new(compressed)
                    .take(max as u64 + 1)
                    .read_to_end(&mut self.gz);
                if let Err(e) = read {
                    return fail(format!("bad gzip: {}", e.to_string().to_lowercase()), dead);
                }
                if self.gz.len() > max {
                    return fail(
                        format!("gzip payload exceeds {max} bytes decompressed"),
                        dead,
                    );
                }
                &self.gz
            }
        };
        let JsonScratch {
            buf,
            buffers,
            spare,
        } = &mut self.cw;
        let tape = match parse_json(buf, buffers, spare, json) {
            Ok(t) => t,
            Err(e) => {
                let msg = e.to_string().to_lowercase();
                return fail(format!("invalid cloudwatch json: {msg}"), dead);
            }
        };
        let (mut kind, mut group, mut stream, mut events) = (None, None, None, None);
        for (k, v) in members(&tape.0) {
            match k {
                "messageType" => kind = as_str(v),
                "logGroup" => group = as_str(v),
                "logStream" => stream = as_str(v),
                "logEvents" if matches!(v.first(), Some(Node::Array { .. })) => events = Some(v),
                _ => {}
            }
        }
        if kind == Some("CONTROL_MESSAGE") {
            stats.control_messages += 1;
        } else if let (Some(events), None | Some("DATA_MESSAGE")) = (events, kind) {
            let mut idx = 1;
            let mut n = 0u64;
            while let Some(head) = events.get(idx) {
                let len = match head {
                    Node::Object { count, .. } => count + 1,
                    Node::Array { count, .. } => count + 1,
                    _ => 1,
                };
                let ev = &events[idx..(idx + len).min(events.len())];
                idx += len;
                let meta = (group, stream, position, n);
                decode_log_event(&mut self.engine, ev, meta, ctx, out, dead, &mut stats);
                n += 1;
            }
        } else {
            let reason = match kind {
                Some(k) => format!(
                    "not a cloudwatch logs payload: messagetype {}",
                    k.to_lowercase()
                ),
                None => "not a cloudwatch logs payload".into(),
            };
            *spare = Some(tape.reset());
            return fail(reason, dead);
        }
        *spare = Some(tape.reset());
        stats
    }
}

/// Decodes one logEvent object; `(group, stream, position, index)`.
#[allow(clippy::type_complexity)]
fn decode_log_event(
    engine: &mut Engine,
    ev: &[Node<'_>],
    (group, stream, position, n): (Option<&str>, Option<&str>, u64, u64),
    ctx: &DecodeContext<'_>,
    out: &mut EventBatch,
    dead: &mut Vec<DeadLetter>,
    stats: &mut DecodeStats,
) {
    let (mut id, mut ts, mut message) = (None, None, None);
    for (k, v) in members(ev) {
        match (k, v.first()) {
            ("id", _) => id = as_str(v),
            ("timestamp", Some(Node::Static(StaticNode::I64(t)))) => ts = Some(*t),
            ("timestamp", Some(Node::Static(StaticNode::U64(t)))) => ts = i64::try_from(*t).ok(),
            ("message", _) => message = as_str(v),
            _ => {}
        }
    }
    let Some(message) = message else {
        let raw = id.unwrap_or("").as_bytes();
        dead.push(dead_letter(
            "cloudwatch log event without message".into(),
            ctx,
            position,
            raw,
        ));
        stats.dead_letters += 1;
        return;
    };
    let meta = LineMeta {
        id: id.map_or(EventId::Position(position + n), EventId::Literal),
        position,
        fallback_ts: ts.unwrap_or(ctx.ingest_ts_ms),
        log_group: group,
        log_stream: stream,
        allow_cloudwatch: false,
    };
    match engine.decode_line(message.as_bytes(), &meta, ctx, out, dead) {
        LineOutcome::Event => stats.events += 1,
        LineOutcome::Dead => stats.dead_letters += 1,
        LineOutcome::Skipped | LineOutcome::CloudWatch => {}
    }
}
