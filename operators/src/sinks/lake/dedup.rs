//! Dedup at seal: the rows of a seal whose `event_id` is already in the
//! partition (earlier in the same file, or in a file sealed there before)
//! are dropped, so a redelivered or replayed event lands once.
//!
//! # The id index
//!
//! Each partition has an index beside the lake, `<lake>/dedup/<partition>/ids.idx`
//! (never under `logs/`, which Athena reads whole): the names of the sealed
//! files it covers and the sorted 128-bit fingerprints (SipHash-1-3, fixed
//! keys) of their `event_id`s, with a CRC-32 of the whole. 128 bits make a
//! false match negligible (below 10⁻²² for a partition of 10⁸ ids), so the
//! fingerprints stand for the exact ids: a seal compares fingerprints only.
//! A seal loads the index of its partition alone, so memory is 16 bytes per
//! id of one partition, plus 16 per row of the file being sealed.
//!
//! # Crash protocol
//!
//! The index never claims an id whose file was not published: it is written
//! (temporary file, fsync, rename, fsync of the directory) only after the
//! sealed file is published. A crash between the two leaves the index
//! *behind*: when it is loaded for the next seal of the partition, the local
//! lake's sealed files are listed, and files it does not cover are read
//! (their `event_id` column) and added; if it covers files that are gone
//! (compacted, deleted) or is missing or corrupt, it is rebuilt from the
//! files. A failure to write the index after publishing is logged and leaves
//! it behind in the same way (never fails the seal: the file is published).
//!
//! With `[lake.s3]` the sealed files are in the bucket and the index is on
//! the task's local disk and trusted, but checked against the partition's
//! objects before each seal ([`super::dedup_s3`]): a missing or corrupt
//! index (a new container) is rebuilt from all of them, and this writer's
//! own objects it does not cover (the upload of a seal whose answer was
//! lost) are added. Objects written by another task into the same partition
//! after the index was built are not in it (see the guarantee below).
//!
//! # Horizon
//!
//! A partition whose hour ended more than `lake.dedup_horizon` before the
//! newest event time its writer has seen (which never runs ahead of the
//! clock) is past the horizon: its index is deleted (by writer 0, every ten
//! minutes as seals run) and rows sealed into it are not checked. The
//! horizon runs on event time so that a replay of old data is checked as it
//! was the first time. The guarantee is therefore: exactly
//! one row per `event_id` per partition for redeliveries and replays that
//! are sealed within the horizon.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;
use siphasher::sip128::SipHasher13;

use super::LakeError;
use super::part_file::sync_dir;
use super::partition::PartitionKey;
use super::staging::{dir_entries, subdirs};

/// Directory of the id indexes inside the lake directory.
pub const DEDUP_DIR: &str = "dedup";
/// File name of a partition's index.
const INDEX_FILE: &str = "ids.idx";
const MAGIC: &[u8; 8] = b"SPIDX001";
/// Fixed SipHash keys: fingerprints are persisted, so they never change.
const KEYS: (u64, u64) = (0x7370_6174_655f_6964, 0x6465_6475_705f_7631);

/// The fingerprint of an event id.
///
/// ```
/// use spate_operators::sinks::lake::dedup::fingerprint;
/// assert_eq!(fingerprint("a"), fingerprint("a"));
/// assert_ne!(fingerprint("a"), fingerprint("b"));
/// ```
pub fn fingerprint(id: &str) -> u128 {
    SipHasher13::new_with_keys(KEYS.0, KEYS.1)
        .hash(id.as_bytes())
        .as_u128()
}

/// Whether a partition is still within the dedup horizon when the newest
/// event time is `now_ms`: its hour ended at most `horizon_ms` before.
///
/// ```
/// use spate_operators::sinks::lake::dedup::within_horizon;
/// use spate_operators::sinks::lake::partition::PartitionKey;
/// let key = PartitionKey::of(0, "api"); // hour ends at 3,600,000
/// assert!(within_horizon(&key, 3_600_000 + 10, 10));
/// assert!(!within_horizon(&key, 3_600_000 + 11, 10));
/// ```
pub fn within_horizon(key: &PartitionKey, now_ms: i64, horizon_ms: i64) -> bool {
    now_ms.saturating_sub(key.hour_end_ms()) <= horizon_ms
}

/// The decision for one row: keep it unless its fingerprint is among the
/// partition's `sealed` ones (sorted) or was already kept in this seal
/// (`kept`, which it joins when kept).
pub fn keep_row(fp: u128, sealed: &[u128], kept: &mut KeptFingerprints) -> bool {
    sealed.binary_search(&fp).is_err() && kept.insert(fp)
}

/// The fingerprints kept by one seal. A fingerprint is already a keyed
/// 128-bit hash, so the set hashes it by folding its halves instead of
/// hashing it again.
pub type KeptFingerprints = HashSet<u128, BuildHasherDefault<FoldedFingerprint>>;

/// The [`Hasher`] of [`KeptFingerprints`]: a fingerprint's two halves XORed.
#[derive(Default)]
pub struct FoldedFingerprint(u64);

impl Hasher for FoldedFingerprint {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used by a set of `u128`; anything else still
        // spreads, byte by byte.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }
}

/// The index of one partition: which sealed files it covers and the sorted
/// fingerprints of their ids.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdIndex {
    /// Names of the sealed files covered, sorted.
    pub files: Vec<String>,
    /// Fingerprints, sorted, without repeats.
    pub fingerprints: Vec<u128>,
}

impl IdIndex {
    /// Adds a file's fingerprints.
    pub fn add(&mut self, file: &str, mut fingerprints: Vec<u128>) {
        if let Err(at) = self.files.binary_search_by(|f| f.as_str().cmp(file)) {
            self.files.insert(at, file.to_string());
        }
        fingerprints.append(&mut self.fingerprints);
        fingerprints.sort_unstable();
        fingerprints.dedup();
        self.fingerprints = fingerprints;
    }

    /// The encoded index.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36 + self.fingerprints.len() * 16);
        self.encode_to(&mut out)
            .expect("writing to a vector does not fail");
        out
    }

    /// Writes the encoded index to `out` as it goes, without holding it
    /// whole (an index of millions of ids is tens of MB).
    pub fn encode_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut crc = crc32fast::Hasher::new();
        let mut put = |bytes: &[u8]| {
            crc.update(bytes);
            out.write_all(bytes)
        };
        put(MAGIC)?;
        put(&(self.files.len() as u32).to_le_bytes())?;
        for file in &self.files {
            put(&(file.len() as u16).to_le_bytes())?;
            put(file.as_bytes())?;
        }
        put(&(self.fingerprints.len() as u64).to_le_bytes())?;
        for fp in &self.fingerprints {
            put(&fp.to_le_bytes())?;
        }
        out.write_all(&crc.finalize().to_le_bytes())
    }

    /// Decodes an index; `None` if it is truncated or corrupt.
    pub fn decode(bytes: &[u8]) -> Option<IdIndex> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body).to_le_bytes() != crc {
            return None;
        }
        let mut rest = body.strip_prefix(MAGIC.as_slice())?;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let n_files = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let mut files = Vec::with_capacity(n_files.min(1 << 16));
        for _ in 0..n_files {
            let len = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
            files.push(String::from_utf8(take(len)?.to_vec()).ok()?);
        }
        let n = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
        let raw = take(n.checked_mul(16)?)?;
        if !take(0)?.is_empty() || !rest.is_empty() {
            return None;
        }
        let fingerprints: Vec<u128> = raw
            .chunks_exact(16)
            .map(|c| u128::from_le_bytes(c.try_into().expect("16 bytes")))
            .collect();
        if !fingerprints.is_sorted() || !files.is_sorted() {
            return None;
        }
        Some(IdIndex {
            files,
            fingerprints,
        })
    }
}

/// Where a partition's index lives.
pub fn index_path(dedup_root: &Path, key: &PartitionKey) -> PathBuf {
    dedup_root.join(key.path()).join(INDEX_FILE)
}

/// Reads a partition's index: `None` if missing or corrupt.
pub fn read_index(path: &Path) -> Result<Option<IdIndex>, LakeError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map_err(|e| LakeError::io("read", path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LakeError::io("open", path, e)),
    };
    let index = IdIndex::decode(&bytes);
    if index.is_none() {
        tracing::warn!(path = %path.display(), "corrupt dedup index; rebuilding it from the sealed files");
    }
    Ok(index)
}

/// Writes a partition's index durably (temporary file, fsync, rename, fsync).
pub fn write_index(path: &Path, index: &IdIndex) -> Result<(), LakeError> {
    let dir = path.parent().expect("an index path has a directory");
    std::fs::create_dir_all(dir).map_err(|e| LakeError::io("create directory", dir, e))?;
    let tmp = dir.join(format!(".{INDEX_FILE}.tmp"));
    let file = File::create(&tmp).map_err(|e| LakeError::io("create", &tmp, e))?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    index
        .encode_to(&mut out)
        .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
        .and_then(|file| file.sync_all())
        .map_err(|e| LakeError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LakeError::io("rename", &tmp, e))?;
    sync_dir(dir)
}

/// The fingerprints of the `event_id`s of a sealed Parquet file.
pub fn file_fingerprints(path: &Path) -> Result<Vec<u128>, LakeError> {
    let file = File::open(path).map_err(|e| LakeError::io("open", path, e))?;
    fingerprints_of(file, &path.display().to_string())
}

/// The fingerprints of the `event_id`s of the Parquet file `reader` reads
/// (`what`: its name, for errors).
pub fn fingerprints_of<R: ChunkReader + 'static>(
    reader: R,
    what: &str,
) -> Result<Vec<u128>, LakeError> {
    let bad = |e: &dyn std::fmt::Display| LakeError::Parquet(format!("{what}: {e}"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(reader).map_err(|e| bad(&e))?;
    let column = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.name() == "event_id")
        .ok_or_else(|| bad(&"no event_id column"))?;
    let mask = ProjectionMask::leaves(builder.parquet_schema(), [column]);
    let reader = builder.with_projection(mask).build().map_err(|e| bad(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        let ids = event_ids(&batch).ok_or_else(|| bad(&"event_id is not a string column"))?;
        out.extend(ids.iter().flatten().map(fingerprint));
    }
    Ok(out)
}

/// The `event_id` column of a batch of lake rows.
pub fn event_ids(batch: &RecordBatch) -> Option<&StringArray> {
    batch
        .column_by_name("event_id")?
        .as_any()
        .downcast_ref::<StringArray>()
}

/// The sealed Parquet files of a local partition directory, sorted.
pub fn sealed_files(dir: &Path) -> Result<Vec<String>, LakeError> {
    let mut out: Vec<String> = dir_entries(dir)?
        .into_iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n.ends_with(".parquet"))
        .collect();
    out.sort();
    Ok(out)
}

/// What to do with a partition's stored index given its sealed files.
#[derive(Debug, PartialEq)]
pub enum Catchup {
    /// It covers exactly the files.
    Current,
    /// It is behind: these files are to be added.
    Add(Vec<String>),
    /// Missing, corrupt, or covering files that are gone: rebuild from all.
    Rebuild,
}

/// Compares an index with a partition's sealed files (both sorted).
pub fn catchup(index: Option<&IdIndex>, files: &[String]) -> Catchup {
    let Some(index) = index else {
        return if files.is_empty() {
            Catchup::Current
        } else {
            Catchup::Rebuild
        };
    };
    if index.files.iter().any(|f| files.binary_search(f).is_err()) {
        return Catchup::Rebuild;
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|f| index.files.binary_search(f).is_err())
        .cloned()
        .collect();
    if missing.is_empty() {
        Catchup::Current
    } else {
        Catchup::Add(missing)
    }
}

/// Loads the index of a partition for a seal. `partition_dir`: the local
/// lake's directory of the partition, whose sealed files the index is
/// checked against (caught up or rebuilt, and rewritten if it changed);
/// `None` for an S3 lake (checked against the bucket before, by
/// [`super::dedup_s3::catch_up_from_s3`]; missing means empty).
pub fn load_index(path: &Path, partition_dir: Option<&Path>) -> Result<IdIndex, LakeError> {
    let stored = read_index(path)?;
    let Some(dir) = partition_dir else {
        return Ok(stored.unwrap_or_default());
    };
    let files = sealed_files(dir)?;
    let (mut index, add) = match catchup(stored.as_ref(), &files) {
        Catchup::Current => return Ok(stored.unwrap_or_default()),
        Catchup::Add(add) => (stored.unwrap_or_default(), add),
        Catchup::Rebuild => (IdIndex::default(), files),
    };
    tracing::info!(index = %path.display(), files = add.len(), "catching the dedup index up with the sealed files");
    for name in &add {
        index.add(name, file_fingerprints(&dir.join(name))?);
    }
    write_index(path, &index)?;
    Ok(index)
}

/// The `source` label of the duplicates counter for a row's `source`: the
/// source without the part that names one item of it (an SQS message, a
/// Kinesis shard, an `Idempotency-Key`), so the label has one value per
/// configured source: `sqs:<name>`, `kinesis:<stream>`, and the kind alone
/// for the others (`http`, `file`, `stdin`).
///
/// ```
/// use spate_operators::sinks::lake::dedup::source_label;
/// assert_eq!(source_label("http"), "http");
/// assert_eq!(source_label("http:client-7/batch-3"), "http");
/// assert_eq!(source_label("sqs:orders:5f2c-11"), "sqs:orders");
/// assert_eq!(source_label("kinesis:clicks:shardId-000:4955"), "kinesis:clicks");
/// assert_eq!(source_label("file:/var/log/app.log@2"), "file");
/// ```
pub fn source_label(source: &str) -> &str {
    let mut parts = source.splitn(3, ':');
    let kind = parts.next().unwrap_or_default();
    match (kind, parts.next()) {
        ("sqs" | "kinesis", Some(name)) => &source[..kind.len() + 1 + name.len()],
        _ => kind,
    }
}

/// The dedup state of one seal: the partition's index and the rows kept so
/// far.
#[derive(Debug, Default)]
pub struct SealDedup {
    sealed: Vec<u128>,
    kept: KeptFingerprints,
    /// Rows dropped as duplicates.
    pub dropped: u64,
    /// Rows dropped, by [`source_label`] of their `source`.
    pub dropped_by_source: BTreeMap<String, u64>,
}

impl SealDedup {
    /// Starts a seal against a partition's index.
    pub fn new(index: IdIndex) -> Self {
        SealDedup {
            sealed: index.fingerprints,
            kept: KeptFingerprints::default(),
            dropped: 0,
            dropped_by_source: BTreeMap::new(),
        }
    }

    /// The rows of `batch` to keep: `None` if all of them.
    pub fn filter(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>, LakeError> {
        let ids = event_ids(batch)
            .ok_or_else(|| LakeError::Parquet("staged rows without an event_id column".into()))?;
        let mask: BooleanArray = ids
            .iter()
            .map(|id| {
                Some(id.is_none_or(|id| keep_row(fingerprint(id), &self.sealed, &mut self.kept)))
            })
            .collect();
        let dropped = mask.false_count() as u64;
        if dropped == 0 {
            return Ok(None);
        }
        self.dropped += dropped;
        let sources = batch
            .column_by_name("source")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>());
        for (i, keep) in mask.values().iter().enumerate() {
            if !keep {
                let label = sources.map_or("unknown", |s| source_label(s.value(i)));
                match self.dropped_by_source.get_mut(label) {
                    Some(n) => *n += 1,
                    None => {
                        self.dropped_by_source.insert(label.to_string(), 1);
                    }
                }
            }
        }
        arrow_select::filter::filter_record_batch(batch, &mask)
            .map(Some)
            .map_err(|e| LakeError::Parquet(e.to_string()))
    }

    /// The index after this seal's file `name` is published.
    pub fn into_index(self, mut before: Vec<String>, name: &str) -> IdIndex {
        let mut fingerprints = self.sealed;
        // Exactly: a partition of millions of rows would otherwise hold up to
        // twice its fingerprints while the vector grows.
        fingerprints.reserve_exact(self.kept.len());
        fingerprints.extend(self.kept);
        fingerprints.sort_unstable();
        if let Err(at) = before.binary_search_by(|f| f.as_str().cmp(name)) {
            before.insert(at, name.to_string());
        }
        IdIndex {
            files: before,
            fingerprints,
        }
    }
}

/// Deletes the indexes of partitions past the horizon at `now_ms`; returns
/// how many.
pub fn prune_expired(dedup_root: &Path, now_ms: i64, horizon_ms: i64) -> usize {
    let subdirs = |dir: &Path| subdirs(dir).unwrap_or_default();
    let mut pruned = 0;
    for dt in subdirs(dedup_root) {
        for hour in subdirs(&dt) {
            for service in subdirs(&hour) {
                let relative = service.strip_prefix(dedup_root).unwrap_or(&service);
                let Some(key) = PartitionKey::parse_path(&relative.to_string_lossy()) else {
                    continue;
                };
                if !within_horizon(&key, now_ms, horizon_ms)
                    && std::fs::remove_dir_all(&service).is_ok()
                {
                    pruned += 1;
                }
            }
            let _ = std::fs::remove_dir(&hour);
        }
        let _ = std::fs::remove_dir(&dt);
    }
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_kept_once_and_never_if_sealed_before() {
        let mut sealed = vec![fingerprint("a"), fingerprint("b")];
        sealed.sort_unstable();
        let mut kept = KeptFingerprints::default();
        let decisions: Vec<bool> = ["a", "c", "c", "b", "d"]
            .iter()
            .map(|id| keep_row(fingerprint(id), &sealed, &mut kept))
            .collect();
        assert_eq!(decisions, [false, true, false, false, true]);
    }

    #[test]
    fn duplicates_are_counted_by_source() {
        use arrow_array::ArrayRef;
        let mut index = IdIndex::default();
        index.add("a.parquet", vec![fingerprint("sqs:q:m1:0")]);
        let mut dedup = SealDedup::new(index);
        let ids = ["sqs:q:m1:0", "http:k:0", "http:k:0", "http:k:9"];
        let sources = ["sqs:q:m1", "http:k", "http:k", "http:k"];
        let batch = RecordBatch::try_from_iter([
            (
                "event_id",
                std::sync::Arc::new(StringArray::from(ids.to_vec())) as ArrayRef,
            ),
            (
                "source",
                std::sync::Arc::new(StringArray::from(sources.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap();
        let kept = dedup.filter(&batch).unwrap().unwrap();
        assert_eq!(kept.num_rows(), 2);
        assert_eq!(dedup.dropped, 2);
        let by_source: Vec<(&str, u64)> = dedup
            .dropped_by_source
            .iter()
            .map(|(s, n)| (s.as_str(), *n))
            .collect();
        assert_eq!(by_source, [("http", 1), ("sqs:q", 1)]);
    }

    #[test]
    fn an_index_written_to_a_file_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p").join(INDEX_FILE);
        let mut index = IdIndex::default();
        let many: Vec<u128> = (0..100_000)
            .map(|i| fingerprint(&format!("e:{i}")))
            .collect();
        index.add("part-a.parquet", many);
        write_index(&path, &index).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes, index.encode());
        assert_eq!(IdIndex::decode(&bytes), Some(index));
    }

    #[test]
    fn kept_fingerprints_spread_over_the_set() {
        use std::hash::BuildHasher;
        let hasher = BuildHasherDefault::<FoldedFingerprint>::default();
        let low_bits: HashSet<u64> = (0..4096)
            .map(|i| hasher.hash_one(fingerprint(&format!("id:{i}"))) & 0xfff)
            .collect();
        // 4,096 ids over 4,096 buckets: about 63 % distinct if uniform.
        assert!(low_bits.len() > 2_400, "{}", low_bits.len());
        let mut kept = KeptFingerprints::default();
        assert!(kept.insert(fingerprint("a")));
        assert!(!kept.insert(fingerprint("a")));
    }

    #[test]
    fn the_index_round_trips_and_detects_corruption() {
        let mut index = IdIndex::default();
        index.add("part-b.parquet", vec![fingerprint("2"), fingerprint("1")]);
        index.add("part-a.parquet", vec![fingerprint("3"), fingerprint("1")]);
        assert_eq!(index.files, ["part-a.parquet", "part-b.parquet"]);
        assert_eq!(index.fingerprints.len(), 3);
        let bytes = index.encode();
        assert_eq!(IdIndex::decode(&bytes), Some(index.clone()));
        for cut in [0, 3, 12, bytes.len() - 1] {
            assert_eq!(IdIndex::decode(&bytes[..cut]), None, "truncated at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert_eq!(IdIndex::decode(&flipped), None);
    }

    #[test]
    fn an_index_behind_the_files_is_caught_up_and_a_stale_one_rebuilt() {
        let files = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let index = IdIndex {
            files: files(&["a", "b"]),
            fingerprints: vec![],
        };
        assert_eq!(catchup(Some(&index), &files(&["a", "b"])), Catchup::Current);
        assert_eq!(
            catchup(Some(&index), &files(&["a", "b", "c"])),
            Catchup::Add(files(&["c"]))
        );
        assert_eq!(catchup(Some(&index), &files(&["a", "m"])), Catchup::Rebuild);
        assert_eq!(catchup(None, &files(&["a"])), Catchup::Rebuild);
        assert_eq!(catchup(None, &[]), Catchup::Current);
    }

    #[test]
    fn expired_indexes_are_pruned() {
        let root = tempfile::tempdir().unwrap();
        let old = PartitionKey::of(0, "api");
        let new = PartitionKey::of(10 * 3_600_000, "api");
        for key in [&old, &new] {
            write_index(&index_path(root.path(), key), &IdIndex::default()).unwrap();
        }
        assert_eq!(prune_expired(root.path(), 11 * 3_600_000, 3_600_000), 1);
        assert!(!index_path(root.path(), &old).exists());
        assert!(index_path(root.path(), &new).exists());
    }
}
