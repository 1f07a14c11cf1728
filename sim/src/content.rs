//! Message content from a seed: the driver sends `content(seed, len)` and
//! the checker recomputes it to verify what a recipient downloads, so no
//! payload is ever kept in memory for checking.
//!
//! Invariant: the bytes depend only on `(seed, len)` (splitmix64 stream),
//! and chunk `i` of a message is the slice `[i*chunk .. (i+1)*chunk)` of
//! the whole content.

use bytes::Bytes;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` bytes of content for `seed`, starting at `offset`.
pub fn content(seed: u64, offset: u64, len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len);
    let mut word = offset / 8;
    let mut state = seed ^ word.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let mut skip = (offset % 8) as usize;
    while out.len() < len {
        let v = splitmix(&mut state).to_le_bytes();
        let take = (len - out.len()).min(8 - skip);
        out.extend_from_slice(&v[skip..skip + take]);
        skip = 0;
        word += 1;
        state = seed ^ word.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    }
    Bytes::from(out)
}

/// The bytes of chunk `index` (0-based) of a `total`-byte message split
/// into chunks of `chunk` bytes.
pub fn chunk(seed: u64, total: u64, chunk: u64, index: u32) -> Bytes {
    let start = u64::from(index).saturating_mul(chunk).min(total);
    let end = start.saturating_add(chunk).min(total);
    content(seed, start, (end - start) as usize)
}

/// How a message of `total` bytes in `chunks` chunks is split: the chunk
/// size (the last chunk may be shorter).
pub fn chunk_size(total: u64, chunks: u32) -> u64 {
    let chunks = u64::from(chunks.max(1));
    total.div_ceil(chunks).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenate_to_the_whole() {
        let whole = content(7, 0, 1000);
        let size = chunk_size(1000, 3);
        let mut joined = Vec::new();
        for i in 0..3 {
            joined.extend_from_slice(&chunk(7, 1000, size, i));
        }
        assert_eq!(joined, whole.to_vec());
        assert_eq!(content(7, 13, 20), whole.slice(13..33));
        assert_ne!(content(8, 0, 100), whole.slice(0..100));
        assert!(content(1, 0, 0).is_empty());
    }
}
