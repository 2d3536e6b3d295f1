//! Reading chunks of durable records from the segment files (blocking; the
//! source runs these on the blocking pool).
//!
//! Only bytes below a segment's durable length are read. Damaged bytes met on
//! the way (which recovery did not see: they appeared while running) are
//! copied to the dead-letter area, reported and skipped like at recovery; a
//! chunk never spans them, so every event keeps its position.

use super::error::JournalError;
use super::scan::{NextRecord, Payload, SegmentReader, seek_position};
use super::segment::segment_path;
use super::shared::Shared;
use crate::sources::ChunkFormat;

/// Where the next record is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    /// Start position of the segment.
    pub segment: u64,
    /// File offset in the segment.
    pub offset: u64,
    /// Logical position.
    pub position: u64,
}

/// Records read for one chunk.
#[derive(Debug)]
pub(super) struct ChunkRead {
    pub first_position: u64,
    pub end_position: u64,
    pub format: ChunkFormat,
    pub ingest_ts_ms: i64,
    pub lines: usize,
    /// The bytes of the records (their id keys left out).
    pub bytes: Vec<u8>,
    /// The id key of the chunk's record: a keyed record is a chunk alone.
    pub key: Option<String>,
}

/// The cursor at the first record at or after `position`.
pub(super) fn locate(shared: &Shared, position: u64) -> Result<Cursor, JournalError> {
    let segment = {
        let segments = shared.segments();
        segments
            .range(..=position)
            .next_back()
            .or_else(|| segments.first_key_value())
            .map(|(&start, _)| start)
            .ok_or_else(|| JournalError::Corrupt("the journal has no segment".into()))?
    };
    let extent = shared.extent(segment);
    let path = segment_path(&shared.dir, segment);
    let (reader, crossed) = seek_position(&path, segment, position, extent.map(|e| e.len))
        .map_err(|e| JournalError::io("read", &path, e))?;
    for range in &crossed {
        let resume = range
            .next_position
            .or_else(|| extent.map(|e| e.resume_at_end()));
        shared.damage_found(segment, &path, range, resume)?;
    }
    let mut cursor = Cursor {
        segment,
        offset: reader.offset(),
        position: reader.position(),
    };
    if crossed.last().is_some_and(|r| r.next_position.is_none())
        && let Some(resume) = extent.map(|e| e.resume_at_end())
    {
        cursor.position = cursor.position.max(resume);
    }
    Ok(cursor)
}

/// Reads from `cursor` the records below `end` that form one chunk: adjacent
/// line records up to `max_bytes` (at least one record), or one CloudWatch
/// payload; with `exact`, every record below `end` up to damaged bytes. A
/// record with an id key is always a chunk alone (its events take their ids
/// from the key, not from their positions).
/// Moves to the next segment at the end of one, and past damaged bytes.
/// Returns the chunk (none when nothing is below `end`) and the cursor after
/// it.
pub(super) fn read_chunk(
    shared: &Shared,
    mut cursor: Cursor,
    end: u64,
    max_bytes: u64,
    exact: bool,
) -> Result<(Option<ChunkRead>, Cursor), JournalError> {
    let mut relocated = false;
    loop {
        if cursor.position >= end {
            return Ok((None, cursor));
        }
        let path = segment_path(&shared.dir, cursor.segment);
        let io = |e| JournalError::io("read", &path, e);
        let extent = shared.extent(cursor.segment);
        let opened = match extent {
            Some(extent) => {
                SegmentReader::open(&path, cursor.offset, cursor.position, Some(extent.len))
            }
            None => Err(std::io::ErrorKind::NotFound.into()),
        };
        let (mut reader, extent) = match (opened, extent) {
            (Ok(reader), Some(extent)) => (reader, extent),
            // The checkpoint passed the segment the cursor was at the end of,
            // and deleted it: the position is in a later segment.
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound && !relocated => {
                relocated = true;
                cursor = locate(shared, cursor.position)?;
                continue;
            }
            (Err(e), _) => return Err(io(e)),
            (Ok(_), None) => unreachable!("a reader is opened only with an extent"),
        };
        let mut chunk: Option<ChunkRead> = None;
        let mut resume_at_end = None;
        let mut stopped_at = None;
        while reader.position() < end {
            if let Some(c) = &chunk
                && let Some(header) = reader.peek_header().map_err(io)?
            {
                let fits = c.key.is_none()
                    && header.key_len == 0
                    && (exact
                        || (c.format == ChunkFormat::Lines
                            && header.format == ChunkFormat::Lines
                            && c.bytes.len() as u64 + u64::from(header.len) <= max_bytes));
                if !fits {
                    break;
                }
            }
            match reader.next(Payload::Load).map_err(io)? {
                NextRecord::Record(header, payload) => {
                    let (key, payload) = header.split_key(&payload);
                    let c = chunk.get_or_insert_with(|| ChunkRead {
                        first_position: header.position,
                        end_position: header.position,
                        format: header.format,
                        ingest_ts_ms: header.ingest_ts_ms,
                        lines: 0,
                        bytes: Vec::with_capacity(
                            if exact {
                                (end - header.position) as usize
                            } else {
                                max_bytes.min(end - header.position) as usize
                            }
                            .max(payload.len()),
                        ),
                        key: key.map(|k| String::from_utf8_lossy(k).into_owned()),
                    });
                    c.end_position = header.end();
                    c.lines += header.lines as usize;
                    c.bytes.extend_from_slice(payload);
                    if c.key.is_some()
                        || (header.format == ChunkFormat::CloudWatchPayload && !exact)
                    {
                        break;
                    }
                }
                NextRecord::End => break,
                NextRecord::Damaged(range) => {
                    // A chunk's events take their positions from its first
                    // byte: it never spans a gap. Send what was read; the
                    // next read starts at the damage.
                    if chunk.is_some() {
                        stopped_at = Some((range.offset, range.position));
                        break;
                    }
                    let resume = range.next_position.or(Some(extent.resume_at_end()));
                    shared.damage_found(cursor.segment, &path, &range, resume)?;
                    if range.next_position.is_none() {
                        resume_at_end = resume;
                    }
                }
            }
        }
        let (offset, position) = stopped_at.unwrap_or((reader.offset(), reader.position()));
        let mut after = Cursor {
            segment: cursor.segment,
            offset,
            position,
        };
        if let Some(resume) = resume_at_end {
            after.position = after.position.max(resume);
        }
        if chunk.is_some() || after.offset < reader.len() {
            // A chunk, or damaged bytes skipped up to a record at or past
            // `end`.
            return Ok((chunk, after));
        }
        // Nothing readable here: the segment ended; go on with the next one.
        match extent.next_start {
            Some(next) => {
                cursor = Cursor {
                    segment: next,
                    offset: 0,
                    position: after.position.max(next),
                };
            }
            // Damaged bytes were skipped: progress.
            None if after.position > cursor.position => return Ok((None, after)),
            None => {
                return Err(JournalError::Corrupt(format!(
                    "{} at position {}: durable records missing",
                    path.display(),
                    after.position
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::journal::{Journal, JournalConfig, JournalRecord};

    fn lines(text: &str) -> JournalRecord {
        JournalRecord::lines(text.as_bytes().to_vec(), 1)
    }

    async fn journal(dir: &std::path::Path, chunk_kib: u64, segment_mib: u64) -> Journal {
        let cfg = JournalConfig {
            dir: Some(dir.to_path_buf()),
            chunk_kib,
            segment_mib,
            ..JournalConfig::default()
        };
        Journal::open(&cfg, dir).unwrap()
    }

    /// Every chunk from `from` to `end`, as (first, end, bytes).
    fn read_all(shared: &Shared, from: u64, end: u64, max: u64) -> Vec<(u64, u64, Vec<u8>)> {
        let mut cursor = locate(shared, from).unwrap();
        let mut chunks = Vec::new();
        loop {
            let (chunk, next) = read_chunk(shared, cursor, end, max, false).unwrap();
            let Some(c) = chunk else { break };
            assert_eq!(next.position, c.end_position);
            chunks.push((c.first_position, c.end_position, c.bytes));
            cursor = next;
        }
        chunks
    }

    #[tokio::test]
    async fn chunks_respect_the_size_the_format_and_the_durable_end() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path(), 1, 64).await;
        let w = j.writer();
        let cw = JournalRecord::cloudwatch(&b"H4sI"[..], 1);
        w.append(vec![lines("aaa\n"), lines("bbb\n"), cw, lines("ccc\n")])
            .await
            .unwrap();
        let shared = &j.shared;
        // A limit of 6 bytes keeps the first two lines apart.
        assert_eq!(
            read_all(shared, 0, 16, 6),
            vec![
                (0, 4, b"aaa\n".to_vec()),
                (4, 8, b"bbb\n".to_vec()),
                (8, 12, b"H4sI".to_vec()),
                (12, 16, b"ccc\n".to_vec()),
            ]
        );
        assert_eq!(
            read_all(shared, 0, 16, 1024)[0],
            (0, 8, b"aaa\nbbb\n".to_vec())
        );
        // Nothing at or past the durable end is read.
        assert_eq!(
            read_all(shared, 0, 4, 1024),
            vec![(0, 4, b"aaa\n".to_vec())]
        );
        // Starting in the middle, and an exact re-read of a range.
        assert_eq!(
            read_all(shared, 12, 16, 1024),
            vec![(12, 16, b"ccc\n".to_vec())]
        );
        let at = locate(shared, 4).unwrap();
        let (exact, _) = read_chunk(shared, at, 16, 1, true).unwrap();
        let exact = exact.unwrap();
        assert_eq!((exact.first_position, exact.end_position), (4, 16));
        assert_eq!(exact.format, ChunkFormat::Lines);
        assert_eq!(exact.lines, 3);
    }

    #[tokio::test]
    async fn a_keyed_record_is_a_chunk_alone_without_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path(), 1024, 64).await;
        let keyed = lines("bbb\n").with_key(Some("k".into()));
        j.writer()
            .append(vec![lines("aaa\n"), keyed, lines("ccc\n")])
            .await
            .unwrap();
        let shared = &j.shared;
        // The key's byte counts in the positions, not in the chunk.
        assert_eq!(
            read_all(shared, 0, 13, 1024),
            vec![
                (0, 4, b"aaa\n".to_vec()),
                (4, 9, b"bbb\n".to_vec()),
                (9, 13, b"ccc\n".to_vec()),
            ]
        );
        let at = locate(shared, 4).unwrap();
        let (chunk, _) = read_chunk(shared, at, 13, 1024, false).unwrap();
        assert_eq!(chunk.unwrap().key.as_deref(), Some("k"));
        // An exact re-read stops at a keyed record too.
        let at = locate(shared, 0).unwrap();
        let (chunk, next) = read_chunk(shared, at, 13, 1, true).unwrap();
        let chunk = chunk.unwrap();
        assert_eq!((chunk.end_position, chunk.key), (4, None));
        let (chunk, _) = read_chunk(shared, next, 13, 1, true).unwrap();
        assert_eq!(chunk.unwrap().end_position, 9);
    }

    #[tokio::test]
    async fn reading_crosses_segments_and_survives_a_deleted_one() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path(), 1024, 1).await;
        let w = j.writer();
        let big = |c: u8| JournalRecord::lines(vec![c; 1024 * 1024], 1);
        let first = w.append(vec![big(b'a')]).await.unwrap();
        let second = w.append(vec![big(b'b')]).await.unwrap();
        assert_eq!(j.stats().segments, 2);
        let shared = &j.shared;
        // The cursor sits at the end of the first segment...
        let cursor = Cursor {
            segment: 0,
            offset: std::fs::metadata(segment_path(dir.path(), 0))
                .unwrap()
                .len(),
            position: first.end_position,
        };
        // ...which the checkpoint then passes and deletes.
        let commit = shared.tracker().track(0, first.end_position);
        commit.deliver();
        j.checkpoint_now().await.unwrap();
        assert!(!segment_path(dir.path(), 0).exists());
        let (chunk, next) =
            read_chunk(shared, cursor, second.end_position, 2 << 20, false).unwrap();
        let chunk = chunk.unwrap();
        assert_eq!(chunk.first_position, first.end_position);
        assert_eq!(chunk.bytes.len(), 1024 * 1024 + 1);
        assert_eq!(next.segment, first.end_position);
    }
}
