//! W3 cloudwatch: CloudWatch Logs subscription payloads, one per output line.
//!
//! Each line is the base64 of a gzip-compressed JSON document as a subscription filter
//! delivers it to Kinesis, Firehose or SQS: `DATA_MESSAGE` payloads of 100–500 `logEvents`
//! (the last may be smaller) whose messages are W1 events of the payload's service
//! (`logGroup` `/aws/ecs/<service>`, `logStream` `ecs/<service>/<task id>`). The first payload
//! is a `CONTROL_MESSAGE`, as on a newly created subscription, and another follows every
//! 35–65 data payloads; control messages do not count as events.

use std::io::{self, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::format::{push_hex, push_json_escaped, push_padded, push_u64};
use super::marks::Marker;
use super::w1_app_json::{AppJson, SERVICES};
use super::{EventMeta, Output};
use crate::GenerateStats;

const OWNER: &str = "123456789012";
const TASKS_PER_SERVICE: usize = 4;
/// Data payloads between two control messages.
const CONTROL_INTERVAL: std::ops::RangeInclusive<u64> = 35..=65;
const CONTROL_MESSAGE: &str = "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.";
/// Mixed into the seed for the payload-level choices, so they do not mirror the W1 stream.
const PAYLOAD_SEED_SALT: u64 = 0x5741_524e_4333_5733;

/// Builds, compresses and encodes payloads, reusing its buffers across payloads.
struct Encoder {
    json: Vec<u8>,
    message: Vec<u8>,
    gzip: Vec<u8>,
    base64: String,
}

impl Encoder {
    /// Compresses and encodes the payload in `self.json`; the result is in `self.base64`.
    fn encode(&mut self) -> io::Result<()> {
        let mut gz = GzEncoder::new(std::mem::take(&mut self.gzip), Compression::fast());
        gz.write_all(&self.json)?;
        self.gzip = gz.finish()?;
        self.base64.clear();
        STANDARD.encode_string(&self.gzip, &mut self.base64);
        self.gzip.clear();
        Ok(())
    }

    fn control_message(&mut self, ts_ms: u64) {
        self.json.clear();
        self.json.extend_from_slice(
            b"{\"messageType\":\"CONTROL_MESSAGE\",\"owner\":\"CloudwatchLogs\",\"logGroup\":\"\",\
              \"logStream\":\"\",\"subscriptionFilters\":[],\"logEvents\":[{\"id\":\"\",\"timestamp\":",
        );
        push_u64(&mut self.json, ts_ms);
        self.json.extend_from_slice(b",\"message\":\"");
        self.json.extend_from_slice(CONTROL_MESSAGE.as_bytes());
        self.json.extend_from_slice(b"\"}]}");
    }

    fn data_header(&mut self, service: &str, task: [u64; 2]) {
        self.json.clear();
        self.json
            .extend_from_slice(b"{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"");
        self.json.extend_from_slice(OWNER.as_bytes());
        self.json.extend_from_slice(b"\",\"logGroup\":\"/aws/ecs/");
        self.json.extend_from_slice(service.as_bytes());
        self.json.extend_from_slice(b"\",\"logStream\":\"ecs/");
        self.json.extend_from_slice(service.as_bytes());
        self.json.push(b'/');
        push_hex(&mut self.json, task[0], 16);
        push_hex(&mut self.json, task[1], 16);
        self.json
            .extend_from_slice(b"\",\"subscriptionFilters\":[\"spate\"],\"logEvents\":[");
    }

    /// Appends one log event; `self.message` holds its W1 line.
    fn log_event(&mut self, first: bool, sequence: u64, random: u64, meta: EventMeta) {
        if !first {
            self.json.push(b',');
        }
        // A 56-digit id: a leading 3, the timestamp, a sequence number and random digits.
        self.json.extend_from_slice(b"{\"id\":\"3");
        push_padded(&mut self.json, meta.ts_ms, 14);
        push_padded(&mut self.json, sequence, 20);
        push_padded(&mut self.json, random % 10u64.pow(19), 21);
        self.json.extend_from_slice(b"\",\"timestamp\":");
        push_u64(&mut self.json, meta.ts_ms);
        self.json.extend_from_slice(b",\"message\":\"");
        push_json_escaped(&mut self.json, &self.message);
        self.json.extend_from_slice(b"\"}");
    }
}

/// Generates W3 payloads one at a time, in the same order as [`write`].
pub(crate) struct CloudWatchStream {
    rng: SmallRng,
    app: AppJson,
    tasks: Vec<[u64; 2]>,
    enc: Encoder,
    data_payloads: u64,
    next_control: u64,
    sequence: u64,
}

impl CloudWatchStream {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ PAYLOAD_SEED_SALT);
        let tasks: Vec<[u64; 2]> = (0..SERVICES.len() * TASKS_PER_SERVICE)
            .map(|_| [rng.random(), rng.random()])
            .collect();
        CloudWatchStream {
            rng,
            app: AppJson::new(seed),
            tasks,
            enc: Encoder {
                json: Vec::with_capacity(256 * 1024),
                message: Vec::with_capacity(512),
                gzip: Vec::with_capacity(64 * 1024),
                base64: String::with_capacity(96 * 1024),
            },
            data_payloads: 0,
            next_control: 0,
            sequence: 0,
        }
    }

    /// Emits the next payload lines through `line`: a control message first when one is
    /// due, then one data payload of 100–500 log events (fewer when `max_events` is smaller).
    /// Each W1 message is stamped by `marker` when given. Returns the log events written.
    pub(crate) fn next_payload(
        &mut self,
        max_events: u64,
        mut marker: Option<&mut Marker<'_>>,
        stats: &mut GenerateStats,
        line: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<u64> {
        let enc = &mut self.enc;
        if self.data_payloads == self.next_control {
            enc.control_message(self.app.clock_ms());
            enc.encode()?;
            line(enc.base64.as_bytes())?;
            stats.control_messages += 1;
            self.next_control = self.data_payloads + self.rng.random_range(CONTROL_INTERVAL);
        }
        let count = self.rng.random_range(100..=500u64).min(max_events);
        let svc = self.app.pick_service();
        let task =
            self.tasks[svc * TASKS_PER_SERVICE + self.rng.random_range(0..TASKS_PER_SERVICE)];
        enc.data_header(SERVICES[svc], task);
        for i in 0..count {
            enc.message.clear();
            let meta = self.app.next_event(&mut enc.message, Some(svc));
            if let Some(marker) = marker.as_deref_mut() {
                marker.stamp(&mut enc.message);
            }
            self.sequence += 1;
            enc.log_event(i == 0, self.sequence, self.rng.random(), meta);
            stats.record(meta);
        }
        enc.json.extend_from_slice(b"]}");
        enc.encode()?;
        line(enc.base64.as_bytes())?;
        self.data_payloads += 1;
        Ok(count)
    }
}

/// Writes payloads until `events` log events have been written.
pub(crate) fn write<W: Write>(
    events: u64,
    seed: u64,
    out: &mut Output<W>,
    stats: &mut GenerateStats,
) -> io::Result<()> {
    let mut stream = CloudWatchStream::new(seed);
    let mut remaining = events;
    while remaining > 0 {
        remaining -= stream.next_payload(remaining, None, stats, &mut |l| out.line(l))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::Read;

    use flate2::read::GzDecoder;
    use serde_json::{Value, json};

    use super::super::format::START_MS;
    use super::super::reference_classifier::classify_app_json;
    use super::*;
    use crate::{Severity, Workload};

    /// Decodes every output line back to its JSON document.
    fn decode(output: &[u8]) -> Vec<Value> {
        output
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let gz = STANDARD.decode(line).expect("line is base64");
                let mut json = String::new();
                GzDecoder::new(&gz[..])
                    .read_to_string(&mut json)
                    .expect("payload is gzip");
                serde_json::from_str(&json).expect("payload is JSON")
            })
            .collect()
    }

    fn run(events: u64, seed: u64) -> (Vec<Value>, GenerateStats) {
        let mut out = Vec::new();
        let stats = crate::generate(Workload::CloudWatch, events, seed, &mut out).unwrap();
        (decode(&out), stats)
    }

    #[test]
    fn payloads_decode_to_subscription_documents_with_w1_messages() {
        let events = 60_000;
        let (docs, stats) = run(events, 31);
        assert_eq!(stats.events, events);
        assert_eq!(stats.records, docs.len() as u64);
        let mut expected = GenerateStats {
            events,
            ..GenerateStats::default()
        };
        let (mut data, mut controls, mut ids) = (Vec::new(), 0, HashSet::new());
        for doc in &docs {
            if doc["messageType"] == "CONTROL_MESSAGE" {
                controls += 1;
                continue;
            }
            assert_eq!(doc["messageType"], "DATA_MESSAGE");
            assert_eq!(doc["owner"], OWNER);
            assert_eq!(doc["subscriptionFilters"], json!(["spate"]));
            let group = doc["logGroup"].as_str().unwrap();
            let service = group.strip_prefix("/aws/ecs/").expect("ecs log group");
            assert!(SERVICES.contains(&service), "{group}");
            let stream = doc["logStream"].as_str().unwrap();
            assert!(stream.starts_with(&format!("ecs/{service}/")), "{stream}");
            let log_events = doc["logEvents"].as_array().unwrap();
            data.push(log_events.len());
            for event in log_events {
                let id = event["id"].as_str().unwrap();
                assert!(
                    id.len() == 56 && id.bytes().all(|b| b.is_ascii_digit()),
                    "{id}"
                );
                assert!(ids.insert(id.to_owned()), "duplicate id {id}");
                let timestamp = event["timestamp"].as_u64().unwrap();
                assert!(timestamp >= START_MS);
                let message = event["message"].as_str().unwrap();
                let inner: Value = serde_json::from_str(message).unwrap();
                assert_eq!(inner["service"], service);
                let verdict = classify_app_json(message);
                expected.expected_severity[verdict.severity.index()] += 1;
                expected.expected_tags.http_5xx += u64::from(verdict.http_5xx);
                expected.expected_tags.failed_login += u64::from(verdict.failed_login);
            }
        }
        let (last, full) = data.split_last().unwrap();
        assert!(full.iter().all(|n| (100..=500).contains(n)), "{data:?}");
        assert!((1..=500).contains(last));
        assert_eq!(data.iter().sum::<usize>() as u64, events);
        assert_eq!(stats.expected_severity, expected.expected_severity);
        assert_eq!(stats.expected_tags, expected.expected_tags);
        assert!(stats.severity(Severity::Critical) > 0);
        assert_eq!(stats.control_messages, controls);
        // The first payload is a control message, then about one in 50.
        assert_eq!(docs[0]["messageType"], "CONTROL_MESSAGE");
        let expected_controls = 1 + data.len() / 65..=1 + data.len() / 35;
        assert!(
            expected_controls.contains(&(controls as usize)),
            "{controls} of {}",
            docs.len()
        );
    }

    #[test]
    fn control_messages_have_the_cloudwatch_shape() {
        let (docs, _) = run(1, 32);
        assert_eq!(docs.len(), 2);
        let control = &docs[0];
        let timestamp = control["logEvents"][0]["timestamp"].clone();
        assert!(timestamp.as_u64().is_some_and(|ts| ts >= START_MS));
        assert_eq!(
            control,
            &json!({
                "messageType": "CONTROL_MESSAGE",
                "owner": "CloudwatchLogs",
                "logGroup": "",
                "logStream": "",
                "subscriptionFilters": [],
                "logEvents": [{"id": "", "timestamp": timestamp, "message": CONTROL_MESSAGE}],
            })
        );
        assert_eq!(docs[1]["logEvents"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn last_payload_takes_the_remainder() {
        let (docs, stats) = run(1_234, 33);
        let sizes: Vec<usize> = docs
            .iter()
            .filter(|d| d["messageType"] == "DATA_MESSAGE")
            .map(|d| d["logEvents"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 1_234);
        assert_eq!(stats.events, 1_234);
        assert_eq!(stats.expected_severity.iter().sum::<u64>(), 1_234);
    }
}
