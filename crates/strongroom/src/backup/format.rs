//! The backup container: a plaintext header (magic and the backup's random id), then the payload
//! in sealed chunks (`BackupKey`, AES-256-GCM): `u32` length ‖ `u8` last-flag ‖ sealed bytes.
//! The payload is a sequence of named sections (`u16` name length ‖ name ‖ `u64` length ‖ bytes)
//! ended by an empty name.

use std::io::{self, Read, Write};

use strongroom_crypto::{BACKUP_TAG_LEN, BackupKey};
use zeroize::{Zeroize, Zeroizing};

pub const MAGIC: &[u8] = b"strongroom-backup-v1\n";
const CHUNK: usize = 1 << 20;
const MAX_SECTIONS: usize = 64;

/// `MAGIC ‖ id`: authenticated with every chunk.
pub fn header(id: &[u8; 32]) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(id);
    h
}

fn bad(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads the header; returns the backup id.
pub fn read_header(input: &mut impl Read) -> io::Result<[u8; 32]> {
    let mut magic = vec![0u8; MAGIC.len()];
    input.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(bad("not a strongroom backup (bad magic)"));
    }
    let mut id = [0u8; 32];
    input.read_exact(&mut id)?;
    Ok(id)
}

pub struct ChunkWriter<W: Write> {
    out: W,
    key: BackupKey,
    header: Vec<u8>,
    index: u64,
    /// Plaintext of the chunk being filled: wiped as it is sealed.
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> ChunkWriter<W> {
    pub fn new(mut out: W, key: BackupKey, id: &[u8; 32]) -> io::Result<Self> {
        let header = header(id);
        out.write_all(&header)?;
        Ok(Self {
            out,
            key,
            header,
            index: 0,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK)),
        })
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let sealed = self
            .key
            .seal_chunk(&self.header, self.index, last, &self.buf)
            .map_err(|_| io::Error::other("sealing a backup chunk"))?;
        let len = u32::try_from(sealed.len()).map_err(|_| bad("chunk too large"))?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&[u8::from(last)])?;
        self.out.write_all(&sealed)?;
        self.buf.zeroize();
        self.index += 1;
        Ok(())
    }

    pub fn section(&mut self, name: &str, len: u64, body: &mut impl Read) -> io::Result<()> {
        let name_len = u16::try_from(name.len()).map_err(|_| bad("section name too long"))?;
        self.write_all(&name_len.to_be_bytes())?;
        self.write_all(name.as_bytes())?;
        self.write_all(&len.to_be_bytes())?;
        let copied = io::copy(&mut body.take(len), self)?;
        if copied != len {
            return Err(bad("a section changed size while being written"));
        }
        Ok(())
    }

    /// Ends the section list, seals the last chunk, and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_all(&0u16.to_be_bytes())?;
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ChunkWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.seal(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct ChunkReader<R: Read> {
    input: R,
    key: BackupKey,
    header: Vec<u8>,
    index: u64,
    /// Plaintext of the chunk being read: wiped when replaced or dropped.
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(input: R, key: BackupKey, id: &[u8; 32]) -> Self {
        Self {
            input,
            key,
            header: header(id),
            index: 0,
            buf: Zeroizing::new(Vec::new()),
            pos: 0,
            done: false,
        }
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut head = [0u8; 5];
        self.input
            .read_exact(&mut head)
            .map_err(|_| bad("backup truncated: its last chunk is missing"))?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let last = match head[4] {
            0 => false,
            1 => true,
            _ => return Err(bad("backup corrupt: bad chunk flag")),
        };
        if !(BACKUP_TAG_LEN..=CHUNK + BACKUP_TAG_LEN).contains(&len) {
            return Err(bad("backup corrupt: bad chunk length"));
        }
        let mut sealed = vec![0u8; len];
        self.input
            .read_exact(&mut sealed)
            .map_err(|_| bad("backup truncated inside a chunk"))?;
        self.buf = self
            .key
            .open_chunk(&self.header, self.index, last, &sealed)
            .map_err(|_| {
                bad("backup does not authenticate (tampered, truncated, or another root key)")
            })?;
        self.pos = 0;
        self.index += 1;
        if last {
            self.done = true;
            let mut extra = [0u8; 1];
            if self.input.read(&mut extra)? != 0 {
                return Err(bad("backup corrupt: data after the last chunk"));
            }
        }
        Ok(())
    }

    /// Reads every section, handing each to `sink(name, len, body)`, which must consume
    /// exactly `len` bytes of `body`.
    pub fn sections(
        mut self,
        mut sink: impl FnMut(&str, u64, &mut dyn Read) -> io::Result<()>,
    ) -> io::Result<()> {
        for _ in 0..MAX_SECTIONS {
            let mut len2 = [0u8; 2];
            self.read_exact(&mut len2)?;
            let name_len = usize::from(u16::from_be_bytes(len2));
            if name_len == 0 {
                let mut rest = [0u8; 1];
                if self.read(&mut rest)? != 0 {
                    return Err(bad("backup corrupt: data after the section list"));
                }
                return Ok(());
            }
            let mut name = vec![0u8; name_len];
            self.read_exact(&mut name)?;
            let name = String::from_utf8(name).map_err(|_| bad("backup corrupt: section name"))?;
            let mut len8 = [0u8; 8];
            self.read_exact(&mut len8)?;
            let len = u64::from_be_bytes(len8);
            let mut body = (&mut self).take(len);
            sink(&name, len, &mut body)?;
            if body.limit() != 0 {
                return Err(bad("a section was not read to its end"));
            }
        }
        Err(bad("backup corrupt: too many sections"))
    }
}

impl<R: Read> Read for ChunkReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use strongroom_crypto::RootKey;

    fn key() -> BackupKey {
        BackupKey::derive(&RootKey::from_bytes(&[7; 32]).unwrap(), &[1; 32]).unwrap()
    }

    fn sample() -> Vec<u8> {
        let mut w = ChunkWriter::new(Vec::new(), key(), &[1; 32]).unwrap();
        let big = vec![42u8; CHUNK * 2 + 10];
        w.section("a", 3, &mut &b"abc"[..]).unwrap();
        w.section("big", big.len() as u64, &mut big.as_slice())
            .unwrap();
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut input = bytes;
        let id = read_header(&mut input)?;
        let mut out = Vec::new();
        ChunkReader::new(input, key(), &id).sections(|name, _, body| {
            let mut v = Vec::new();
            body.read_to_end(&mut v)?;
            out.push((name.to_owned(), v));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn round_trip_and_tamper_detection() {
        let bytes = sample();
        let got = read_all(&bytes).unwrap();
        assert_eq!(got[0], ("a".to_owned(), b"abc".to_vec()));
        assert_eq!(got[1].1.len(), CHUNK * 2 + 10);
        // A flipped bit anywhere, a cut at any chunk boundary, or a dropped chunk fails.
        for pos in [MAGIC.len() + 3, bytes.len() / 2, bytes.len() - 1] {
            let mut t = bytes.clone();
            t[pos] ^= 1;
            assert!(read_all(&t).is_err(), "flip at {pos}");
        }
        let first_chunk = header(&[1; 32]).len() + 5 + CHUNK + BACKUP_TAG_LEN;
        assert!(read_all(&bytes[..first_chunk]).is_err());
        let mut dropped = bytes[..header(&[1; 32]).len()].to_vec();
        dropped.extend_from_slice(&bytes[first_chunk..]);
        assert!(read_all(&dropped).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_all(&longer).is_err());
    }
}
