//! Reading message bytes back by location, concurrently with writing.
//!
//! Reads are positional (`pread`) on segment files opened once and cached,
//! so any task can read without going through the writer. A chunk comes
//! back as one `Bytes` that is then handed out without further copies.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use spine_core::message::ChunkLoc;
use spine_core::wal::segment::segment_name;

use super::sink::MemoryLog;

/// Reads chunk bytes from the log.
#[derive(Debug, Clone)]
pub enum PayloadReader {
    /// From segment files in a data directory.
    Files {
        /// The data directory.
        dir: PathBuf,
        /// Open segment files by first sequence number.
        open: Arc<DashMap<u64, Arc<File>>>,
    },
    /// From the memory log.
    Memory(Arc<MemoryLog>),
}

impl PayloadReader {
    /// A reader over a data directory.
    pub fn files(dir: PathBuf) -> PayloadReader {
        PayloadReader::Files {
            dir,
            open: Arc::new(DashMap::new()),
        }
    }

    /// Reads one chunk. Large reads run on the blocking pool.
    pub async fn read(&self, loc: ChunkLoc) -> std::io::Result<Bytes> {
        match self {
            PayloadReader::Memory(mem) => mem
                .read(loc.offset)
                .or_else(|| (loc.len == 0).then(Bytes::new))
                .ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "chunk not in memory log")
                }),
            PayloadReader::Files { dir, open } => {
                if loc.len == 0 {
                    return Ok(Bytes::new());
                }
                let file = match open.get(&loc.segment) {
                    Some(f) => Arc::clone(&f),
                    None => {
                        let f = Arc::new(File::open(dir.join(segment_name(loc.segment)))?);
                        open.insert(loc.segment, Arc::clone(&f));
                        f
                    }
                };
                let read = move || -> std::io::Result<Bytes> {
                    let mut buf = BytesMut::zeroed(loc.len as usize);
                    file.read_exact_at(&mut buf, loc.offset)?;
                    Ok(buf.freeze())
                };
                if loc.len <= 256 * 1024 {
                    read()
                } else {
                    tokio::task::spawn_blocking(read)
                        .await
                        .map_err(std::io::Error::other)?
                }
            }
        }
    }

    /// Drops cached handles of segments that were removed.
    pub fn forget_segment(&self, segment: u64) {
        if let PayloadReader::Files { open, .. } = self {
            open.remove(&segment);
        }
    }
}
