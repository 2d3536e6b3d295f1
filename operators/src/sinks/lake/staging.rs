//! The staging area: rows appended per partition, as Arrow IPC stream
//! segments on local disk, until they are sealed into Parquet.
//!
//! Layout: `<lake>/staging/dt=YYYY-MM-DD/hour=HH/service=NAME/seg-<seq>.arrows`
//! (Arrow IPC stream, LZ4-compressed unless `[lake] staging_compression` says
//! `none`; `seq` 16 hex digits). A segment is appended to
//! by one writer, one whole message per batch, and fsynced at each staging
//! commit when the acks wait for it ([`StagingDurability`]); a crash can
//! leave a torn last message, which readers and recovery ignore
//! ([`complete_prefix_len`]). A batch job's segments are scratch files,
//! `.seg-<seq>.arrows.tmp`, never fsynced: readers skip them and the next
//! start deletes them.
//!
//! # The seal handoff
//!
//! Segment numbers grow per partition for the life of the lake (a clock in
//! microseconds, [`SeqClock`], that never goes below a number already
//! used). A seal takes **every** segment of its partition up to the newest,
//! writes them as one Parquet file named after that newest number and the
//! stager that wrote them ([`sealed_file_name`]: `part-<stager>-<seq>.parquet`),
//! publishes the file (rename into `logs/`, or upload to S3), and only then
//! deletes the segments. So a segment is *covered* by a sealed file of its
//! partition whose number is at least its own ([`covered_up_to`]), and a
//! reader that takes its snapshot of staging first and lists the sealed files
//! second ([`StagingSnapshot::take`]) skips exactly the covered segments:
//! every row once, whichever step of a seal it lands between.
//!
//! A local lake has one stager (one process per data dir, by its lock), so
//! every sealed name counts; in a bucket shared by several tasks only the
//! names of this process's stager ([`stager_tag`]) cover its segments.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Take, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use arrow_ipc::CompressionType;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::ArrowError;

use super::LakeError;
use super::partition::{PartitionKey, sliced_bytes};
use super::schema::{logs_file_schema, upgrade_file_batch};

/// Directory of the staging area inside the lake directory.
pub const STAGING_DIR: &str = "staging";
const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_EXT: &str = ".arrows";
const SEALED_PREFIX: &str = "part-";
const SEALED_EXT: &str = ".parquet";

/// The file name of segment `seq`.
///
/// ```
/// use spate_operators::sinks::lake::staging::{parse_segment_name, segment_name};
/// assert_eq!(segment_name(42), "seg-000000000000002a.arrows");
/// assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
/// assert_eq!(parse_segment_name("seg-2a.arrows"), None);
/// ```
pub fn segment_name(seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{seq:016x}{SEGMENT_EXT}")
}

/// The file name of scratch segment `seq` (a batch job's, never fsynced):
/// hidden, so that readers and recovery never take it for a segment.
///
/// ```
/// use spate_operators::sinks::lake::staging::{parse_scratch_segment_name, parse_segment_name, scratch_segment_name};
/// assert_eq!(scratch_segment_name(42), ".seg-000000000000002a.arrows.tmp");
/// assert_eq!(parse_scratch_segment_name(&scratch_segment_name(42)), Some(42));
/// assert_eq!(parse_segment_name(&scratch_segment_name(42)), None);
/// ```
pub fn scratch_segment_name(seq: u64) -> String {
    format!(".{}.tmp", segment_name(seq))
}

/// The number of a scratch segment file name, if it is one.
pub fn parse_scratch_segment_name(name: &str) -> Option<u64> {
    parse_segment_name(name.strip_prefix('.')?.strip_suffix(".tmp")?)
}

/// The number of a segment file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_EXT)?;
    parse_hex16(hex)
}

fn parse_hex16(hex: &str) -> Option<u64> {
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// The name of the Parquet file sealed from `stager`'s segments of one
/// partition up to segment `hi`.
///
/// ```
/// use spate_operators::sinks::lake::staging::{parse_sealed_file_name, sealed_file_name};
/// let name = sealed_file_name("0badcafe", 42);
/// assert_eq!(name, "part-0badcafe-000000000000002a.parquet");
/// assert_eq!(parse_sealed_file_name(&name), Some(("0badcafe", 42)));
/// // Files of older versions and compacted files cover nothing.
/// assert_eq!(parse_sealed_file_name("part-1763892000123-77x0badcafe-0-000001.parquet"), None);
/// ```
pub fn sealed_file_name(stager: &str, hi: u64) -> String {
    format!("{SEALED_PREFIX}{stager}-{hi:016x}{SEALED_EXT}")
}

/// The stager and newest segment of a sealed file name, if it is one.
pub fn parse_sealed_file_name(name: &str) -> Option<(&str, u64)> {
    let rest = name.strip_prefix(SEALED_PREFIX)?.strip_suffix(SEALED_EXT)?;
    let (stager, hex) = rest.split_once('-')?;
    let valid_stager = stager.len() == 8 && stager.bytes().all(|b| b.is_ascii_hexdigit());
    valid_stager.then_some(())?;
    Some((stager, parse_hex16(hex)?))
}

/// Whose sealed files cover a staging area's segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Any stager's: the lake has one writer (a local lake, locked).
    AnyStager,
    /// Only this stager's: the lake is shared (a bucket several tasks write).
    Stager(String),
}

/// The newest segment number that the sealed files named `names` (of one
/// partition) cover, if any.
///
/// ```
/// use spate_operators::sinks::lake::staging::{covered_up_to, sealed_file_name, Coverage};
/// let names = [sealed_file_name("0000000a", 7), sealed_file_name("0000000b", 9), "x.parquet".into()];
/// let names = || names.iter().map(String::as_str);
/// assert_eq!(covered_up_to(names(), &Coverage::AnyStager), Some(9));
/// assert_eq!(covered_up_to(names(), &Coverage::Stager("0000000a".into())), Some(7));
/// assert_eq!(covered_up_to(names(), &Coverage::Stager("0000000c".into())), None);
/// ```
pub fn covered_up_to<'a>(
    names: impl IntoIterator<Item = &'a str>,
    coverage: &Coverage,
) -> Option<u64> {
    names
        .into_iter()
        .filter_map(parse_sealed_file_name)
        .filter(|(stager, _)| match coverage {
            Coverage::AnyStager => true,
            Coverage::Stager(mine) => stager == mine,
        })
        .map(|(_, hi)| hi)
        .max()
}

/// This process's stager tag: 8 hex digits, random, fixed for its life.
pub fn stager_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        format!("{:08x}", hasher.finish() as u32)
    })
}

/// Segment numbers: microseconds of the wall clock, never below one already
/// given out (or seen on disk, [`SeqClock::raise_to`]).
#[derive(Debug, Default)]
pub struct SeqClock {
    last: AtomicU64,
}

impl SeqClock {
    /// The next number.
    pub fn next(&self) -> u64 {
        let now = (crate::event::wall_clock_ms().max(0) as u64).saturating_mul(1000);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Makes every later number greater than `seen`.
    pub fn raise_to(&self, seen: u64) {
        self.last.fetch_max(seen, Ordering::AcqRel);
    }
}

/// How staged segments are compressed (`[lake] staging_compression`).
///
/// Each message of a segment says how its buffers are compressed, so
/// segments written either way (and by older versions, always LZ4) read
/// the same, and a data dir staged by one command is sealed by another.
///
/// ```
/// use spate_operators::sinks::lake::staging::StagingCompression;
/// let c: StagingCompression = serde_json::from_str("\"none\"").unwrap();
/// assert_eq!(c, StagingCompression::None);
/// assert_eq!(StagingCompression::default(), StagingCompression::Lz4);
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StagingCompression {
    /// LZ4 frames: the staging area takes about 45 % of the bytes of the
    /// rows (W1), for the CPU of compressing each row once and decompressing
    /// it at its seal.
    #[default]
    Lz4,
    /// Arrow's own layout, uncompressed: less CPU, more disk and page cache.
    None,
}

/// When staged rows reach the disk, which decides what a crash leaves.
///
/// ```
/// use spate_operators::sinks::lake::staging::StagingDurability;
/// assert_eq!(StagingDurability::default(), StagingDurability::EachCommit);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StagingDurability {
    /// Each staging commit fsyncs what it staged before the acks it holds
    /// go: a local lake's acks mean the rows are on disk, and recovery seals
    /// them after a crash.
    #[default]
    EachCommit,
    /// Never fsynced: the acks wait for the sealed file's upload (an S3
    /// lake), and recovery deletes whatever is staged.
    Never,
    /// A batch job's scratch space: never fsynced, hidden from readers
    /// ([`scratch_segment_name`]), deleted by the next start. The job ends
    /// only once every partition is sealed into fsynced Parquet files; one
    /// that did not end is run again over its inputs (dedup at seal drops
    /// what it had already sealed).
    Scratch,
}

/// Options of staged IPC streams.
fn ipc_options(compression: StagingCompression) -> Result<IpcWriteOptions, LakeError> {
    let codec = match compression {
        StagingCompression::Lz4 => Some(CompressionType::LZ4_FRAME),
        StagingCompression::None => None,
    };
    IpcWriteOptions::default()
        .try_with_compression(codec)
        .map_err(|e| LakeError::Parquet(format!("ipc options: {e}")))
}

/// The file under a stream writer, counting what was written. The IPC
/// writer hands over each buffer of each column (and each padding) as a
/// separate write: the sink gathers them and [`SegmentWriter::append`]
/// writes the whole message to the file at once (W1 1 M through `spate
/// ingest`: 146 k `write` calls, about one per buffer, before). The
/// gathered bytes are released after each message, so an open segment
/// holds no memory between appends.
struct SegmentSink {
    file: File,
    pending: Vec<u8>,
    written: u64,
}

impl Write for SegmentSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.file.write_all(&pending)?;
        }
        Ok(())
    }
}

/// A segment open for appending.
pub struct SegmentWriter {
    path: PathBuf,
    seq: u64,
    stream: StreamWriter<SegmentSink>,
    durability: StagingDurability,
    committed: u64,
    rows: u64,
    dirty: bool,
}

/// A segment no longer appended to.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedSegment {
    /// Its number.
    pub seq: u64,
    /// Where it is.
    pub path: PathBuf,
    /// Its size on disk.
    pub bytes: u64,
}

impl SegmentWriter {
    /// Creates segment `seq` in `dir` (created if missing) with the schema
    /// message written; its messages are compressed as `compression` says,
    /// and its commits are fsynced as `durability` says (a scratch segment
    /// gets a hidden name).
    pub fn create(
        dir: &Path,
        seq: u64,
        compression: StagingCompression,
        durability: StagingDurability,
    ) -> Result<Self, LakeError> {
        std::fs::create_dir_all(dir).map_err(|e| LakeError::io("create directory", dir, e))?;
        let path = dir.join(match durability {
            StagingDurability::Scratch => scratch_segment_name(seq),
            StagingDurability::EachCommit | StagingDurability::Never => segment_name(seq),
        });
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| LakeError::io("create", &path, e))?;
        let sink = SegmentSink {
            file,
            pending: Vec::new(),
            written: 0,
        };
        let stream = StreamWriter::try_new_with_options(
            sink,
            &logs_file_schema(),
            ipc_options(compression)?,
        )
        .map_err(|e| LakeError::Parquet(format!("staging {}: {e}", path.display())))?;
        Ok(SegmentWriter {
            path,
            seq,
            stream,
            durability,
            committed: 0,
            rows: 0,
            dirty: true,
        })
    }

    /// Appends rows as one message (one write to the file); returns their
    /// Arrow size ([`sliced_bytes`]).
    pub fn append(&mut self, records: &RecordBatch) -> Result<usize, LakeError> {
        let bytes = sliced_bytes(records);
        let path = &self.path;
        let failed = |e: ArrowError| match e {
            ArrowError::IoError(_, io) => LakeError::io("write", path, io),
            other => LakeError::Parquet(format!("staging {}: {other}", path.display())),
        };
        // Room for the message up front (its header and paddings are small;
        // compressed, it is smaller than the rows).
        self.stream.get_mut().pending.reserve(bytes + 4096);
        self.stream.write(records).map_err(failed)?;
        self.stream
            .get_mut()
            .flush()
            .map_err(|e| LakeError::io("write", path, e))?;
        self.rows += records.num_rows() as u64;
        self.dirty = true;
        Ok(bytes)
    }

    /// Its number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Bytes written.
    pub fn len(&self) -> u64 {
        self.stream.get_ref().written
    }

    /// Whether nothing but the schema was written.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Rows appended.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Commits everything appended: [`abort`](Self::abort) keeps it from
    /// now on, and with [`StagingDurability::EachCommit`] it is fsynced
    /// (fdatasync) first.
    pub fn commit(&mut self) -> Result<(), LakeError> {
        if self.dirty {
            self.stream
                .get_mut()
                .flush()
                .map_err(|e| LakeError::io("write", &self.path, e))?;
            if self.durability == StagingDurability::EachCommit {
                self.stream
                    .get_ref()
                    .file
                    .sync_data()
                    .map_err(|e| LakeError::io("fsync", &self.path, e))?;
            }
            self.committed = self.len();
            self.dirty = false;
        }
        Ok(())
    }

    /// Ends the stream and commits it.
    pub fn finish(mut self) -> Result<ClosedSegment, LakeError> {
        self.stream
            .finish()
            .map_err(|e| LakeError::Parquet(format!("staging {}: {e}", self.path.display())))?;
        self.dirty = true;
        self.commit()?;
        Ok(ClosedSegment {
            seq: self.seq,
            bytes: self.len(),
            path: self.path,
        })
    }

    /// Drops what was appended since the last commit (its batches are failed
    /// and will be redelivered); a segment never committed is removed.
    pub fn abort(self) {
        if self.committed == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = self.stream.get_ref().file.set_len(self.committed);
        }
    }
}

/// Bytes of `file` (of `len` bytes) holding whole IPC messages: where a torn
/// last message (a crash mid-append, or an append in progress) begins, or the
/// end of the stream marker.
pub fn complete_prefix_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut pos = 0u64;
    let mut head = [0u8; 8];
    loop {
        if pos + 8 > len {
            return Ok(pos);
        }
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut head)?;
        let first = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let (meta_len, prefix) = if first == 0xFFFF_FFFF {
            (u32::from_le_bytes([head[4], head[5], head[6], head[7]]), 8)
        } else {
            (first, 4)
        };
        if meta_len == 0 || meta_len > i32::MAX as u32 {
            // End of stream (or garbage): nothing after it counts.
            return Ok(pos);
        }
        let meta_end = pos + prefix + u64::from(meta_len);
        if meta_end > len {
            return Ok(pos);
        }
        let mut meta = vec![0u8; meta_len as usize];
        file.seek(SeekFrom::Start(pos + prefix))?;
        file.read_exact(&mut meta)?;
        let Ok(message) = arrow_ipc::root_as_message(&meta) else {
            return Ok(pos);
        };
        let end = meta_end.saturating_add(message.bodyLength().max(0) as u64);
        if end > len {
            return Ok(pos);
        }
        pos = end;
    }
}

/// A reader of the first `len` bytes of a segment (whole messages, from
/// [`complete_prefix_len`]), decoding only the columns of `projection`.
pub fn read_segment(
    mut file: File,
    len: u64,
    projection: Option<Vec<usize>>,
    path: &Path,
) -> Result<StreamReader<BufReader<Take<File>>>, LakeError> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| LakeError::io("seek", path, e))?;
    let reader = BufReader::with_capacity(256 * 1024, file.take(len));
    StreamReader::try_new(reader, projection)
        .map_err(|e| LakeError::Parquet(format!("staging {}: {e}", path.display())))
}

/// The batches of the first `len` bytes of a segment in the current file
/// schema, with only the columns of `projection` (indexes into
/// [`logs_file_schema`]). A segment staged by an older version (without the
/// `position` column) whose projection names `position` is read whole and
/// upgraded, then projected.
pub fn read_segment_projected(
    file: File,
    len: u64,
    projection: Vec<usize>,
    path: &Path,
) -> Result<Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>, LakeError> {
    // Reading with the projection fails on an older segment's schema only
    // when the projection names a column it lacks: then read it whole and
    // upgrade. A current segment is read once, as projected.
    let whole = file
        .try_clone()
        .map_err(|e| LakeError::io("open", path, e))?;
    if let Ok(reader) = read_segment(file, len, Some(projection.clone()), path) {
        return Ok(Box::new(reader));
    }
    let reader = read_segment(whole, len, None, path)?;
    Ok(Box::new(reader.map(move |batch| {
        upgrade_file_batch(batch?)?.project(&projection)
    })))
}

/// One partition's segments on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedPartition {
    /// The partition.
    pub key: PartitionKey,
    /// Its staging directory.
    pub dir: PathBuf,
    /// Its segments, oldest first.
    pub segments: Vec<ClosedSegment>,
    /// Its scratch segments ([`StagingDurability::Scratch`]), oldest first:
    /// never read, and at a process's start deleted by recovery.
    pub scratch: Vec<ClosedSegment>,
}

/// Every partition with segments or scratch segments under `staging` (a
/// missing directory holds none). Directories that are not partitions, and
/// other files, are left alone.
pub fn list_staged(staging: &Path) -> Result<Vec<StagedPartition>, LakeError> {
    let mut out = Vec::new();
    for dt in subdirs(staging)? {
        for hour in subdirs(&dt)? {
            for service in subdirs(&hour)? {
                let Ok(relative) = service.strip_prefix(staging) else {
                    continue;
                };
                let Some(key) = PartitionKey::parse_path(&relative.to_string_lossy()) else {
                    continue;
                };
                let (mut segments, mut scratch) = (Vec::new(), Vec::new());
                let entries = match std::fs::read_dir(&service) {
                    Ok(entries) => entries,
                    // Sealed and removed since its hour was listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(LakeError::io("list", &service, e)),
                };
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    let (list, seq) = match parse_scratch_segment_name(&name) {
                        Some(seq) => (&mut scratch, seq),
                        None => match parse_segment_name(&name) {
                            Some(seq) => (&mut segments, seq),
                            None => continue,
                        },
                    };
                    let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    list.push(ClosedSegment {
                        seq,
                        path: entry.path(),
                        bytes,
                    });
                }
                if !segments.is_empty() || !scratch.is_empty() {
                    segments.sort_by_key(|s| s.seq);
                    scratch.sort_by_key(|s| s.seq);
                    out.push(StagedPartition {
                        key,
                        dir: service,
                        segments,
                        scratch,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The entries of `dir`; none if it does not exist.
pub(crate) fn dir_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, LakeError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(LakeError::io("list", dir, e)),
    }
}

/// The visible subdirectories of `dir` (none if it does not exist), sorted.
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, LakeError> {
    let mut out: Vec<PathBuf> = dir_entries(dir)?
        .into_iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

/// Names of the sealed Parquet files of a partition directory (none if it
/// does not exist).
pub fn sealed_names_in(dir: &Path) -> Result<Vec<String>, LakeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LakeError::io("list", dir, e)),
    };
    Ok(entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| parse_sealed_file_name(n).is_some())
        .collect())
}

/// A segment open for reading, as a query's snapshot saw it.
#[derive(Debug)]
pub struct OpenSegment {
    /// Its number.
    pub seq: u64,
    /// Where it was.
    pub path: PathBuf,
    /// The open file (readable even once the segment is sealed and deleted).
    pub file: File,
    /// Bytes of whole messages when the snapshot was taken.
    pub len: u64,
}

/// One partition of a snapshot.
#[derive(Debug)]
pub struct SnapshotPartition {
    /// The partition.
    pub key: PartitionKey,
    /// Its relative path (`dt=…/hour=…/service=…`), as the sealed files'.
    pub path: String,
    /// Its segments, oldest first.
    pub segments: Vec<OpenSegment>,
}

/// What a reader sees of the staging area: every segment, opened, with the
/// length of its whole messages.
///
/// Take it **before** listing the sealed files, then drop the segments the
/// listing covers ([`StagingSnapshot::without_covered`]).
#[derive(Debug, Default)]
pub struct StagingSnapshot {
    /// Partitions with staged rows.
    pub partitions: Vec<SnapshotPartition>,
}

impl StagingSnapshot {
    /// Opens every segment under `staging`. A segment deleted between the
    /// listing and the open was sealed meanwhile, and is skipped (the sealed
    /// file is listed after this).
    pub fn take(staging: &Path) -> Result<Self, LakeError> {
        let mut partitions = Vec::new();
        for staged in list_staged(staging)? {
            let mut segments = Vec::new();
            for segment in staged.segments {
                let mut file = match File::open(&segment.path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(LakeError::io("open", &segment.path, e)),
                };
                let size = file
                    .metadata()
                    .map_err(|e| LakeError::io("stat", &segment.path, e))?
                    .len();
                let len = complete_prefix_len(&mut file, size)
                    .map_err(|e| LakeError::io("read", &segment.path, e))?;
                if len == 0 {
                    // Just created: not even its schema is whole yet.
                    continue;
                }
                segments.push(OpenSegment {
                    seq: segment.seq,
                    path: segment.path,
                    file,
                    len,
                });
            }
            if !segments.is_empty() {
                partitions.push(SnapshotPartition {
                    path: staged.key.path(),
                    key: staged.key,
                    segments,
                });
            }
        }
        Ok(StagingSnapshot { partitions })
    }

    /// Drops the segments covered by sealed files: `sealed` gives the names
    /// of the sealed files listed in a partition (by its relative path).
    pub fn without_covered<'a, F, I>(mut self, sealed: F, coverage: &Coverage) -> Self
    where
        F: Fn(&str) -> I,
        I: IntoIterator<Item = &'a str>,
    {
        for partition in &mut self.partitions {
            if let Some(hi) = covered_up_to(sealed(&partition.path), coverage) {
                partition.segments.retain(|s| s.seq > hi);
            }
        }
        self.partitions.retain(|p| !p.segments.is_empty());
        self
    }

    /// Segments in the snapshot.
    pub fn segment_count(&self) -> usize {
        self.partitions.iter().map(|p| p.segments.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::lake::schema::test_rows;

    fn rows(n: usize, tag: &str) -> RecordBatch {
        test_rows((0..n).map(|i| format!("{tag}:{i}")), 0, "s")
    }

    fn read_all(path: &Path, len: u64) -> Vec<RecordBatch> {
        let file = File::open(path).unwrap();
        read_segment(file, len, None, path)
            .unwrap()
            .map(|b| b.unwrap())
            .collect()
    }

    #[test]
    fn appended_batches_read_back_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = SegmentWriter::create(
            dir.path(),
            7,
            StagingCompression::Lz4,
            StagingDurability::EachCommit,
        )
        .unwrap();
        seg.append(&rows(3, "a")).unwrap();
        seg.commit().unwrap();
        let whole = seg.len();
        seg.append(&rows(2, "b")).unwrap();
        let path = dir.path().join(segment_name(7));
        let size = std::fs::metadata(&path).unwrap().len();
        let mut file = File::options().write(true).read(true).open(&path).unwrap();
        assert_eq!(complete_prefix_len(&mut file, size).unwrap(), size);
        assert_eq!(read_all(&path, size).len(), 2);
        // Cut the second message in half, as a crash would.
        let torn = whole + (size - whole) / 2;
        file.set_len(torn).unwrap();
        assert_eq!(complete_prefix_len(&mut file, torn).unwrap(), whole);
        let batches = read_all(&path, whole);
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    }

    /// A batch of 30 rows over three services, with nulls, tags and statuses
    /// at every offset a slice can start at.
    fn mixed_events() -> crate::event::EventBatch {
        let mut b = crate::event::EventBatch::default();
        let tag = 1u64 << b.tag_index("http_5xx").unwrap();
        for i in 0..30usize {
            b.event_id.push(&format!("t:{i}"));
            b.ts.push(1_763_892_000_000 + i as i64);
            b.ingest_ts.push(1_763_892_100_000);
            b.service.push(["api", "web", "db"][i % 3]);
            b.host
                .push_opt((i % 4 != 0).then(|| format!("h{i}")).as_deref());
            b.source.push("t");
            b.log_group.push_null();
            b.log_stream.push_opt((i % 5 == 0).then_some("s"));
            b.severity.push(crate::event::Severity::ALL[i % 4]);
            b.tags.push(if i % 7 == 0 { tag } else { 0 });
            b.status.push(if i % 2 == 0 { 500 + i as u16 } else { 0 });
            b.client_ip.push_null();
            b.message.push(&"m".repeat(i + 1));
            b.attrs.push_opt((i % 3 == 1).then_some(r#"{"k":1}"#));
        }
        b
    }

    #[test]
    fn partition_slices_stage_their_own_rows_only() {
        let whole = crate::sinks::lake::schema::to_record_batch(mixed_events()).unwrap();
        let batch = crate::log_batch::LogBatch::from_events(
            mixed_events(),
            Vec::new(),
            &crate::decode::DecodeStats::default(),
        )
        .unwrap();
        assert_eq!(batch.parts.len(), 3);
        let dir = tempfile::tempdir().unwrap();
        let mut whole_seg = SegmentWriter::create(
            dir.path(),
            1,
            StagingCompression::None,
            StagingDurability::EachCommit,
        )
        .unwrap();
        whole_seg.append(&whole).unwrap();
        for (i, part) in batch.parts.iter().enumerate() {
            let seq = 10 + i as u64;
            let mut seg = SegmentWriter::create(
                dir.path(),
                seq,
                StagingCompression::Lz4,
                StagingDurability::EachCommit,
            )
            .unwrap();
            let bytes = seg.append(&part.records).unwrap();
            // The message is in the file once appended, before any sync.
            let on_disk = std::fs::metadata(dir.path().join(segment_name(seq))).unwrap();
            assert_eq!(on_disk.len(), seg.len());
            assert!(seg.stream.get_ref().pending.is_empty());
            seg.commit().unwrap();
            // Its own rows' bytes, not the shared buffers'.
            assert!(bytes < sliced_bytes(&whole) / 2);
            assert!(seg.len() < whole_seg.len());
            let read = read_all(&dir.path().join(segment_name(seq)), seg.len());
            assert_eq!(read, vec![part.records.clone()], "part {}", part.key);
            let ids = read[0]
                .column(0)
                .as_any()
                .downcast_ref::<arrow_array::StringArray>();
            let expected: Vec<String> = (i..30).step_by(3).map(|r| format!("t:{r}")).collect();
            let ids: Vec<&str> = ids.unwrap().iter().map(Option::unwrap).collect();
            assert_eq!(ids, expected);
        }
    }

    #[test]
    fn segments_staged_before_the_position_column_read_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(3));
        let current = test_rows(["t:5".to_string(), "t:9".to_string()], 0, "s");
        let old_fields = logs_file_schema().fields()[..13].to_vec();
        let old_schema = std::sync::Arc::new(arrow_schema::Schema::new(old_fields));
        let old =
            RecordBatch::try_new(old_schema.clone(), current.columns()[..13].to_vec()).unwrap();
        let mut writer = StreamWriter::try_new(File::create(&path).unwrap(), &old_schema).unwrap();
        writer.write(&old).unwrap();
        writer.finish().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let position = logs_file_schema().index_of("position").unwrap();
        let file = File::open(&path).unwrap();
        let batches: Vec<RecordBatch> = read_segment_projected(file, len, vec![0, position], &path)
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0], current.project(&[0, position]).unwrap());
        // A current segment is read with the projection as it is.
        let mut seg = SegmentWriter::create(
            dir.path(),
            4,
            StagingCompression::Lz4,
            StagingDurability::EachCommit,
        )
        .unwrap();
        seg.append(&current).unwrap();
        let closed = seg.finish().unwrap();
        let file = File::open(&closed.path).unwrap();
        let batches: Vec<RecordBatch> =
            read_segment_projected(file, closed.bytes, vec![position], &closed.path)
                .unwrap()
                .map(|b| b.unwrap())
                .collect();
        assert_eq!(batches[0], current.project(&[position]).unwrap());
    }

    #[test]
    fn a_finished_segment_reads_to_its_end_marker() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = SegmentWriter::create(
            dir.path(),
            1,
            StagingCompression::Lz4,
            StagingDurability::EachCommit,
        )
        .unwrap();
        seg.append(&rows(4, "a")).unwrap();
        seg.append(&rows(5, "b")).unwrap();
        let closed = seg.finish().unwrap();
        let mut file = File::open(&closed.path).unwrap();
        let whole = complete_prefix_len(&mut file, closed.bytes).unwrap();
        assert!(
            whole <= closed.bytes && closed.bytes - whole <= 8,
            "{whole} {}",
            closed.bytes
        );
        let batches = read_all(&closed.path, closed.bytes);
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 9);
    }

    #[test]
    fn aborting_drops_what_was_not_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = SegmentWriter::create(
            dir.path(),
            1,
            StagingCompression::Lz4,
            StagingDurability::EachCommit,
        )
        .unwrap();
        seg.append(&rows(4, "a")).unwrap();
        seg.commit().unwrap();
        let committed = seg.len();
        seg.append(&rows(5, "b")).unwrap();
        seg.abort();
        let path = dir.path().join(segment_name(1));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), committed);
        let never = SegmentWriter::create(
            dir.path(),
            2,
            StagingCompression::Lz4,
            StagingDurability::EachCommit,
        )
        .unwrap();
        never.abort();
        assert!(!dir.path().join(segment_name(2)).exists());
    }

    #[test]
    fn snapshots_list_partitions_and_skip_covered_segments() {
        let dir = tempfile::tempdir().unwrap();
        let key = PartitionKey::of(1_763_892_000_000, "api");
        let part_dir = dir.path().join(key.path());
        for seq in [5, 9] {
            let mut seg = SegmentWriter::create(
                &part_dir,
                seq,
                StagingCompression::Lz4,
                StagingDurability::EachCommit,
            )
            .unwrap();
            seg.append(&rows(1, "x")).unwrap();
            seg.finish().unwrap();
        }
        std::fs::write(part_dir.join("notes.txt"), "ignored").unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
        // A batch job's scratch segment: listed apart, never read.
        let mut scratch = SegmentWriter::create(
            &part_dir,
            12,
            StagingCompression::None,
            StagingDurability::Scratch,
        )
        .unwrap();
        scratch.append(&rows(1, "x")).unwrap();
        scratch.commit().unwrap();
        let staged = list_staged(dir.path()).unwrap();
        assert_eq!(staged.len(), 1);
        assert_eq!(staged[0].key, key);
        assert_eq!(
            staged[0].segments.iter().map(|s| s.seq).collect::<Vec<_>>(),
            [5, 9]
        );
        assert_eq!(
            staged[0].scratch.iter().map(|s| s.seq).collect::<Vec<_>>(),
            [12]
        );
        let sealed = [sealed_file_name("0000000a", 5)];
        let snapshot = StagingSnapshot::take(dir.path()).unwrap().without_covered(
            |path| {
                assert_eq!(path, key.path());
                sealed.iter().map(String::as_str)
            },
            &Coverage::AnyStager,
        );
        assert_eq!(snapshot.segment_count(), 1);
        assert_eq!(snapshot.partitions[0].segments[0].seq, 9);
        let mine = StagingSnapshot::take(dir.path()).unwrap().without_covered(
            |_| sealed.iter().map(String::as_str),
            &Coverage::Stager("0000000b".into()),
        );
        assert_eq!(mine.segment_count(), 2);
    }

    #[test]
    fn segment_numbers_only_grow() {
        let clock = SeqClock::default();
        let a = clock.next();
        let b = clock.next();
        assert!(b > a);
        clock.raise_to(u64::MAX - 10);
        assert_eq!(clock.next(), u64::MAX - 9);
        assert_eq!(stager_tag().len(), 8);
        assert!(parse_sealed_file_name(&sealed_file_name(stager_tag(), 1)).is_some());
    }
}
