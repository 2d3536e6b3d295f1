//! CloudWatch Logs subscription payloads: gzip, base64 of gzip, or plain JSON
//! `{"messageType","owner","logGroup","logStream","subscriptionFilters","logEvents"}`.

use simd_json::{Node, StaticNode};

use super::json::{as_str, members};
use super::unpack::Unpacked;
use super::{
    BOM, DeadLetter, DecodeContext, DecodeStats, Engine, EventId, JsonScratch, LineDecoder,
    LineMeta, LineOutcome, dead_letter, parse_json,
};
use crate::event::EventBatch;

impl LineDecoder {
    /// Decodes one CloudWatch Logs subscription payload (gzip or zstd bytes,
    /// base64 of either, or plain JSON; see `unpack.rs`). `CONTROL_MESSAGE` payloads are counted in
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
        let p = payload.strip_prefix(BOM).unwrap_or(payload).trim_ascii();
        match self.unpacker.unpack(p, self.engine.cfg.max_payload_bytes) {
            Ok(unpacked) => {
                let stats = self.read_cloudwatch(unpacked, payload, position, ctx, out, dead);
                self.unpacker.shrink();
                stats
            }
            Err(reason) => self.payload_dead_letter(reason, payload, position, ctx, dead),
        }
    }

    /// One dead letter for a whole payload that did not unpack, at
    /// `position`, keeping its first `max_line` bytes.
    pub(super) fn payload_dead_letter(
        &self,
        reason: String,
        payload: &[u8],
        position: u64,
        ctx: &DecodeContext<'_>,
        dead: &mut Vec<DeadLetter>,
    ) -> DecodeStats {
        let keep = payload.len().min(self.engine.cfg.max_line_bytes);
        dead.push(dead_letter(reason, ctx, position, &payload[..keep]));
        DecodeStats {
            dead_letters: 1,
            ..DecodeStats::default()
        }
    }

    /// Reads the CloudWatch JSON that `Unpacker::unpack` left in place
    /// (`unpacked` says where; `payload` is the whole payload, for dead letters).
    pub(super) fn read_cloudwatch(
        &mut self,
        unpacked: Unpacked,
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
        let json: &[u8] = match unpacked {
            Unpacked::Plain => payload.strip_prefix(BOM).unwrap_or(payload).trim_ascii(),
            Unpacked::Base64 => &self.unpacker.base64,
            Unpacked::Inflated => &self.unpacker.inflated,
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
