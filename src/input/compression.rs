//! Compressed inputs, told by their magic bytes (never by the file's name: logrotate's
//! `compresscmd` may be any of them, and a rotated file keeps whatever suffix it was given):
//! gzip (`1f 8b`), bzip2 (`BZh1`..`BZh9`), xz (`fd 37 7a 58 5a 00`) and zstd (`28 b5 2f fd`).
//! Concatenated streams (`cat a.gz b.gz`, pbzip2, `xz -T0`, zstd's multiple frames) are read
//! to their end.
//!
//! The decoders: flate2 for gzip; `bzip2` (maintained by the Trifecta Tech Foundation, on the
//! Rust port of libbzip2 by default: no C to build); `liblzma` (the maintained fork of `xz2`,
//! which saw no release since 2022; it binds xz-utils' liblzma); `zstd` (the reference
//! library's bindings, used by cargo itself).

use std::io::{BufReader, Read};

/// How an input is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// Bytes needed to tell every codec apart.
pub const MAGIC_LEN: usize = 6;

impl Codec {
    /// The codec whose magic bytes `head` starts with.
    pub fn sniff(head: &[u8]) -> Option<Codec> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Codec::Gzip)
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Some(Codec::Bzip2)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Codec::Xz)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Codec::Zstd)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Xz => "xz",
            Codec::Zstd => "zstd",
        }
    }

    /// A reader of the decompressed text of `compressed`.
    pub fn decoder(self, compressed: Box<dyn Read>) -> std::io::Result<Box<dyn Read>> {
        Ok(match self {
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(compressed)),
            Codec::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(compressed)),
            Codec::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(compressed)),
            Codec::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(BufReader::new(
                compressed,
            ))?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(Codec::sniff(&[0x1f, 0x8b, 8, 0]), Some(Codec::Gzip));
        assert_eq!(Codec::sniff(b"BZh91AY&SY"), Some(Codec::Bzip2));
        assert_eq!(Codec::sniff(b"BZhx"), None);
        assert_eq!(
            Codec::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4]),
            Some(Codec::Xz)
        );
        assert_eq!(
            Codec::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0x24]),
            Some(Codec::Zstd)
        );
        assert_eq!(Codec::sniff(b"2026-11-26 22:38:11 UTC"), None);
        assert_eq!(Codec::sniff(b""), None);
    }
}
