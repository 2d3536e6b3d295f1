//! The optional fields of a W1 event (span id, pod, tenant, ...), added in random subsets
//! until the line reaches its target length. Field values follow the vocabulary's keyword
//! discipline.

use rand::Rng;

use super::vocabulary::{LOGGERS, POD_ALPHABET, REGIONS, SERVICES, TENANTS, THREADS};
use super::{AppJson, MAX_LINE};
use crate::workload::format::{push_hex, push_u64};

/// How many optional fields there are (`push_extra` indices).
const EXTRA_FIELDS: usize = 14;

impl AppJson {
    /// Adds optional fields until the line (from `start`, plus the closing brace) reaches a
    /// random target length, never exceeding `MAX_LINE` and never staying below `MIN_LINE`.
    pub(super) fn push_extras(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        svc: usize,
        with_duration: bool,
    ) {
        let target = self.rng.random_range(255..=395usize);
        let mut used = 0u32;
        for pass in 0..2 {
            for idx in 0..EXTRA_FIELDS {
                if buf.len() + 1 - start >= target {
                    return;
                }
                if used & (1 << idx) != 0 || (pass == 0 && self.rng.random_bool(0.5)) {
                    continue;
                }
                let before = buf.len();
                if !self.push_extra(buf, idx, svc, with_duration) {
                    continue;
                }
                if buf.len() + 1 - start > MAX_LINE {
                    buf.truncate(before);
                } else {
                    used |= 1 << idx;
                }
            }
        }
    }

    /// Appends extra field `idx`; false if it does not apply to this event.
    fn push_extra(
        &mut self,
        buf: &mut Vec<u8>,
        idx: usize,
        svc: usize,
        with_duration: bool,
    ) -> bool {
        let region = REGIONS[svc % REGIONS.len()];
        match idx {
            0 => {
                buf.extend_from_slice(b",\"span_id\":\"");
                push_hex(buf, self.rng.random(), 16);
                buf.push(b'"');
            }
            1 => {
                let env = if self.rng.random_range(0..100u32) < 97 {
                    "prod"
                } else {
                    "staging"
                };
                self.push_str_field(buf, "env", env);
            }
            2 => self.push_str_field(buf, "region", region),
            3 => {
                buf.extend_from_slice(b",\"pid\":");
                push_u64(
                    buf,
                    1000 + (svc as u64 * 977 + self.rng.random_range(0..4u64)) % 60_000,
                );
            }
            4 => {
                buf.extend_from_slice(b",\"thread\":\"");
                let template = self.pick(&THREADS);
                self.expand(buf, template);
                buf.push(b'"');
            }
            5 => {
                buf.extend_from_slice(b",\"version\":\"1.");
                push_u64(buf, svc as u64 + 3);
                buf.push(b'.');
                push_u64(buf, self.rng.random_range(0..3u64));
                buf.push(b'"');
            }
            6 => {
                let (a, b): (u64, u64) = (self.rng.random(), self.rng.random());
                buf.extend_from_slice(b",\"request_id\":\"");
                push_hex(buf, a >> 32, 8);
                buf.push(b'-');
                push_hex(buf, a >> 16, 4);
                buf.extend_from_slice(b"-4");
                push_hex(buf, a, 3);
                buf.push(b'-');
                push_hex(buf, 0x8000 | (b >> 48) & 0x3fff, 4);
                buf.push(b'-');
                push_hex(buf, b, 12);
                buf.push(b'"');
            }
            7 => {
                buf.extend_from_slice(b",\"user_id\":\"u_");
                push_u64(buf, self.rng.random_range(1000..2_000_000u64));
                buf.push(b'"');
            }
            8 => {
                buf.extend_from_slice(b",\"pod\":\"");
                buf.extend_from_slice(SERVICES[svc].as_bytes());
                buf.push(b'-');
                // A stable replica-set hash per service, then a random pod suffix.
                let mut h = (svc as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                for _ in 0..9 {
                    buf.push(POD_ALPHABET[(h % POD_ALPHABET.len() as u64) as usize]);
                    h /= POD_ALPHABET.len() as u64;
                }
                buf.push(b'-');
                for _ in 0..5 {
                    buf.push(POD_ALPHABET[self.rng.random_range(0..POD_ALPHABET.len())]);
                }
                buf.push(b'"');
            }
            9 => {
                let tenant = self.pick(&TENANTS);
                self.push_str_field(buf, "tenant", tenant);
            }
            10 if with_duration => {
                buf.extend_from_slice(b",\"duration_ms\":");
                let millis = self.millis();
                push_u64(buf, millis);
            }
            10 => return false,
            11 => {
                buf.extend_from_slice(b",\"logger\":\"");
                buf.extend_from_slice(SERVICES[svc].as_bytes());
                buf.push(b'.');
                buf.extend_from_slice(self.pick(&LOGGERS).as_bytes());
                buf.push(b'"');
            }
            12 => {
                buf.extend_from_slice(b",\"commit\":\"");
                push_hex(buf, (svc as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d), 7);
                buf.push(b'"');
            }
            _ => {
                buf.extend_from_slice(b",\"az\":\"");
                buf.extend_from_slice(region.as_bytes());
                buf.push(b"abc"[self.rng.random_range(0..3usize)]);
                buf.push(b'"');
            }
        }
        true
    }

    fn push_str_field(&mut self, buf: &mut Vec<u8>, key: &str, value: &str) {
        buf.extend_from_slice(b",\"");
        buf.extend_from_slice(key.as_bytes());
        buf.extend_from_slice(b"\":\"");
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'"');
    }
}
