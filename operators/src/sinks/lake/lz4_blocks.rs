//! Staged segments in LZ4 blocks: each append's Arrow IPC bytes compressed
//! whole, as one LZ4 block.
//!
//! Arrow's own IPC compression makes a separate LZ4 frame of every buffer
//! of every column, and each frame sets up an encoder of its own: buffers
//! sized for a whole block, a fresh hash table, and two copies of the data
//! besides the compression itself (a staged W1 partition of 500 rows has
//! about 40 buffers). Reading back, each buffer gets its own allocation.
//! Here the segment's IPC stream is written uncompressed and each append
//! (one or two whole messages) is compressed as one block, with a hash
//! table and an output buffer kept per thread; reading decompresses a
//! record into one buffer that the IPC decoder slices without copying.
//!
//! Layout: the 8 bytes [`MAGIC`], then one record per append:
//!
//! | bytes | what |
//! | --- | --- |
//! | 4 | `raw_len`, little endian: the IPC bytes the record holds |
//! | 4 | `stored_len`, little endian: the LZ4 block's length |
//! | 4 | CRC-32 of the block |
//! | `stored_len` | the LZ4 block (no frame) |
//!
//! A segment that does not start with the magic is a plain Arrow IPC stream:
//! `staging_compression = "none"`, or LZ4 frames staged by an earlier
//! version, which [`read_segment`](super::staging::read_segment) reads
//! with Arrow's reader.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Take};

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_schema::ArrowError;
use lz4_flex::block::{CompressTable, compress_into_with_table, get_maximum_output_size};

/// The first bytes of a segment in LZ4 blocks.
pub const MAGIC: [u8; 8] = *b"SPATELZ4";

/// Bytes before each record's block.
const RECORD_HEADER: usize = 12;

/// Largest record this format takes: lengths are 32 bits, and a staging
/// append is far below this.
const MAX_RECORD: usize = u32::MAX as usize - RECORD_HEADER;

/// Output buffers above this are let go after use rather than kept for the
/// thread's next record.
const KEEP_SCRATCH: usize = 8 << 20;

thread_local! {
    /// The thread's compression table and record buffer.
    static SCRATCH: RefCell<(CompressTable, Vec<u8>)> =
        RefCell::new((CompressTable::large(), Vec::new()));
}

/// Whether a segment's first bytes are [`MAGIC`].
///
/// ```
/// use spate_operators::sinks::lake::lz4_blocks::{MAGIC, is_blocked};
/// assert!(is_blocked(&MAGIC));
/// assert!(!is_blocked(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]));
/// ```
pub fn is_blocked(head: &[u8]) -> bool {
    head.starts_with(&MAGIC)
}

/// Compresses `raw` (whole IPC messages) into one record and hands it to
/// `write` (called once, with header and block together); returns the
/// record's length.
///
/// ```
/// use spate_operators::sinks::lake::lz4_blocks::write_record;
/// let mut file = Vec::new();
/// let n = write_record(&[7u8; 1000], |record| {
///     file.extend_from_slice(record);
///     Ok(())
/// })
/// .unwrap();
/// assert_eq!(n, file.len());
/// assert!(n < 100);
/// ```
pub fn write_record(
    raw: &[u8],
    write: impl FnOnce(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    if raw.len() > MAX_RECORD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "a staging append of {} bytes (at most {MAX_RECORD})",
                raw.len()
            ),
        ));
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let (table, out) = &mut *scratch;
        let need = RECORD_HEADER + get_maximum_output_size(raw.len());
        if out.len() < need {
            out.resize(need, 0);
        }
        let stored = compress_into_with_table(raw, &mut out[RECORD_HEADER..], table)
            .map_err(|e| std::io::Error::other(format!("lz4: {e}")))?;
        let crc = crc32fast::hash(&out[RECORD_HEADER..RECORD_HEADER + stored]);
        out[0..4].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        out[4..8].copy_from_slice(&(stored as u32).to_le_bytes());
        out[8..12].copy_from_slice(&crc.to_le_bytes());
        let len = RECORD_HEADER + stored;
        let written = write(&out[..len]);
        if out.capacity() > KEEP_SCRATCH {
            *out = Vec::new();
        }
        written.map(|()| len)
    })
}

/// One record's header.
#[derive(Debug, Clone, Copy)]
struct RecordHeader {
    raw_len: usize,
    stored_len: usize,
    crc: u32,
}

impl RecordHeader {
    fn parse(bytes: &[u8; RECORD_HEADER]) -> Self {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        RecordHeader {
            raw_len: word(0) as usize,
            stored_len: word(4) as usize,
            crc: word(8),
        }
    }
}

/// Bytes of a segment in LZ4 blocks (`len` bytes on disk) holding whole
/// records: where a torn last record begins. The last whole record's CRC
/// is checked too (what a crash tears is the tail after the last fsync).
pub fn complete_prefix_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    let magic = MAGIC.len() as u64;
    if len < magic {
        return Ok(0);
    }
    let mut pos = magic;
    let mut last: Option<(u64, RecordHeader)> = None;
    let mut head = [0u8; RECORD_HEADER];
    while pos + RECORD_HEADER as u64 <= len {
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut head)?;
        let header = RecordHeader::parse(&head);
        let end = pos + (RECORD_HEADER + header.stored_len) as u64;
        if header.stored_len == 0 || end > len {
            break;
        }
        last = Some((pos, header));
        pos = end;
    }
    if let Some((start, header)) = last {
        let mut block = vec![0u8; header.stored_len];
        file.seek(SeekFrom::Start(start + RECORD_HEADER as u64))?;
        file.read_exact(&mut block)?;
        if crc32fast::hash(&block) != header.crc {
            return Ok(start);
        }
    }
    Ok(pos)
}

/// The batches of the first `len` bytes of a segment in LZ4 blocks (whole
/// records, from [`complete_prefix_len`]).
pub struct BlockedSegmentReader {
    input: BufReader<Take<File>>,
    decoder: StreamDecoder,
    /// The rest of the current record's IPC bytes.
    current: Buffer,
    done: bool,
}

impl BlockedSegmentReader {
    /// Reads `file` from its start: the magic, then records up to `len`.
    pub fn new(mut file: File, len: u64) -> Result<Self, ArrowError> {
        file.seek(SeekFrom::Start(0))?;
        let mut input = BufReader::with_capacity(256 * 1024, file.take(len));
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic)?;
        if !is_blocked(&magic) {
            return Err(ArrowError::IpcError(
                "not a segment in lz4 blocks".to_string(),
            ));
        }
        Ok(BlockedSegmentReader {
            input,
            decoder: StreamDecoder::new(),
            current: Buffer::from_vec(Vec::<u8>::new()),
            done: false,
        })
    }

    /// The next record's IPC bytes; `None` at the end of the input.
    fn next_record(&mut self) -> Result<Option<Buffer>, ArrowError> {
        let mut head = [0u8; RECORD_HEADER];
        match self.input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let header = RecordHeader::parse(&head);
        let mut block = vec![0u8; header.stored_len];
        self.input.read_exact(&mut block)?;
        if crc32fast::hash(&block) != header.crc {
            return Err(ArrowError::IpcError(
                "a staged record whose checksum does not match".to_string(),
            ));
        }
        let raw = lz4_flex::block::decompress(&block, header.raw_len)
            .map_err(|e| ArrowError::IpcError(format!("lz4: {e}")))?;
        if raw.len() != header.raw_len {
            return Err(ArrowError::IpcError(format!(
                "a staged record of {} bytes where its header says {}",
                raw.len(),
                header.raw_len
            )));
        }
        Ok(Some(Buffer::from_vec(raw)))
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        loop {
            while !self.current.is_empty() {
                if let Some(batch) = self.decoder.decode(&mut self.current)? {
                    return Ok(Some(batch));
                }
            }
            match self.next_record()? {
                Some(record) => self.current = record,
                None => {
                    self.decoder.finish()?;
                    return Ok(None);
                }
            }
        }
    }
}

impl Iterator for BlockedSegmentReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_batch().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn segment_of(records: &[&[u8]]) -> (tempfile::NamedTempFile, u64) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&MAGIC).unwrap();
        for raw in records {
            write_record(raw, |r| file.write_all(r)).unwrap();
        }
        let len = file.as_file().metadata().unwrap().len();
        (file, len)
    }

    #[test]
    fn a_record_round_trips_and_compresses() {
        let raw: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (file, len) = segment_of(&[&raw]);
        let mut f = file.reopen().unwrap();
        assert_eq!(complete_prefix_len(&mut f, len).unwrap(), len);
        assert!(len < raw.len() as u64 / 2, "{len} bytes for {}", raw.len());
        let mut reader = BlockedSegmentReader::new(f, len).unwrap();
        let record = reader.next_record().unwrap().unwrap();
        assert_eq!(record.as_slice(), &raw[..]);
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn a_torn_or_garbled_last_record_is_not_part_of_the_prefix() {
        let (file, len) = segment_of(&[b"first message bytes", b"second message bytes"]);
        let whole = len;
        let mut f = file.reopen().unwrap();
        // Cut anywhere inside the second record: the prefix is the first.
        let first_end = {
            let mut g = file.reopen().unwrap();
            let mut head = [0u8; RECORD_HEADER];
            g.seek(SeekFrom::Start(8)).unwrap();
            g.read_exact(&mut head).unwrap();
            8 + (RECORD_HEADER + RecordHeader::parse(&head).stored_len) as u64
        };
        for cut in [first_end + 1, first_end + RECORD_HEADER as u64, whole - 1] {
            assert_eq!(
                complete_prefix_len(&mut f, cut).unwrap(),
                first_end,
                "cut at {cut}"
            );
        }
        assert_eq!(complete_prefix_len(&mut f, 5).unwrap(), 0);
        assert_eq!(complete_prefix_len(&mut f, 8).unwrap(), 8);
        // The last record's bytes garbled (its length whole): not counted.
        let mut w = file.reopen().unwrap();
        w.seek(SeekFrom::Start(whole - 2)).unwrap();
        w.write_all(&[0, 0]).unwrap();
        assert_eq!(complete_prefix_len(&mut f, whole).unwrap(), first_end);
    }

    #[test]
    fn a_garbled_record_is_an_error_not_data() {
        let (file, len) = segment_of(&[b"some ipc bytes, some ipc bytes, some ipc bytes"]);
        let mut w = file.reopen().unwrap();
        w.seek(SeekFrom::Start(len - 3)).unwrap();
        w.write_all(b"xyz").unwrap();
        let mut reader = BlockedSegmentReader::new(file.reopen().unwrap(), len).unwrap();
        let err = reader.next_record().unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn a_plain_ipc_stream_is_refused() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 8, 0, 0, 0])
            .unwrap();
        let err = BlockedSegmentReader::new(file.reopen().unwrap(), 8)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a segment in lz4 blocks"), "{err}");
    }
}
