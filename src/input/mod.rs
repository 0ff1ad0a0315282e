//! Opening inputs: a path or `-` (stdin), plain or compressed with gzip, bzip2, xz or zstd
//! (told by magic bytes, not by name), refused with one clear sentence when it is missing,
//! unreadable, a directory or binary.

mod compression;
mod lines;
mod plan;

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;

use indicatif::ProgressBar;

pub use compression::Codec;
pub use lines::{Line, LineCounts, MAX_LINE, for_each_line};
pub use plan::{Plan, Planned, plan};

/// Why an input cannot be read. Each message names the input and the next step.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}: no such file; check the path (rotated logs may be named .1 or .gz)")]
    NotFound(String),
    #[error("{0}: is a directory; give the log files in it, e.g. {0}/error.log*")]
    IsDirectory(String),
    #[error(
        "{0}: permission denied; run as a user that can read it (root, or a member of the log's group, e.g. adm)"
    )]
    PermissionDenied(String),
    #[error(
        "{path}: looks like binary data, not a text log ({why}); give the log itself (plain, or compressed with gzip, bzip2, xz or zstd)"
    )]
    Binary { path: String, why: String },
    #[error(
        "{path}: corrupt or truncated gzip data after {lines} lines ({cause}); check it with `gzip -t`, or give the decompressed part"
    )]
    CorruptGzip {
        path: String,
        lines: u64,
        /// Not a `source`: the message already says it, and a source would print it twice.
        cause: io::Error,
    },
    #[error(
        "{path}: corrupt or truncated {codec} data after {lines} lines ({cause}); check it with `{codec} -t`, or give the decompressed part"
    )]
    CorruptCompressed {
        path: String,
        codec: &'static str,
        lines: u64,
        /// Not a `source`: the message already says it, and a source would print it twice.
        cause: io::Error,
    },
    #[error("{path}: read error after {lines} lines: {cause}")]
    Read {
        path: String,
        lines: u64,
        /// Not a `source`: the message already says it, and a source would print it twice.
        cause: io::Error,
    },
}

/// An opened input, positioned at its first byte of text.
pub struct Input {
    /// As given: a path, or `-` for stdin.
    pub path: String,
    pub compressed: bool,
    /// The compression, when `compressed`.
    pub codec: Option<Codec>,
    /// Lines end in a lone CR (read as if they ended in LF).
    pub cr_only: bool,
    /// The first bytes of text (up to 8 KiB), also still to be read by `for_each_line`.
    head: Vec<u8>,
    reader: Box<dyn Read>,
}

const SNIFF_LEN: usize = 8 << 10;

/// Opens `path` (`-` is stdin), transparently decompressing gzip, bzip2, xz and zstd. Compressed
/// bytes read are reported to `progress` when given.
pub fn open(path: &str, progress: Option<ProgressBar>) -> Result<Input, InputError> {
    let raw: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin())
    } else {
        let p = Path::new(path);
        if p.is_dir() {
            return Err(InputError::IsDirectory(path.to_string()));
        }
        let file = File::open(p).map_err(|e| open_error(path, e))?;
        Box::new(file)
    };
    let raw: Box<dyn Read> = match progress {
        Some(bar) => Box::new(bar.wrap_read(raw)),
        None => raw,
    };
    let (head, raw) = peek(raw, compression::MAGIC_LEN).map_err(|e| read_error(path, 0, e))?;
    let codec = Codec::sniff(&head);
    let compressed = codec.is_some();
    let raw: Box<dyn Read> = Box::new(Cursor::new(head).chain(raw));
    let text: Box<dyn Read> = match codec {
        Some(c) => c.decoder(raw).map_err(|e| corrupt(path, Some(c), 0, e))?,
        None => raw,
    };
    let (head, text) = peek(text, SNIFF_LEN).map_err(|e| corrupt(path, codec, 0, e))?;
    if let Some(why) = binary_reason(&head) {
        return Err(InputError::Binary {
            path: path.to_string(),
            why,
        });
    }
    // Classic Mac line endings: a log whose first 8 KiB hold CRs and no LF is split at CRs.
    let cr_only = memchr::memchr(b'\n', &head).is_none() && memchr::memchr(b'\r', &head).is_some();
    let mut head = head;
    let reader: Box<dyn Read> = if cr_only {
        crs_to_newlines(&mut head);
        Box::new(CrLines(Cursor::new(head.clone()).chain(text)))
    } else {
        Box::new(Cursor::new(head.clone()).chain(text))
    };
    Ok(Input {
        path: path.to_string(),
        compressed,
        codec,
        cr_only,
        head,
        reader,
    })
}

/// Reads a CR-terminated text as LF-terminated lines.
struct CrLines<R>(R);

impl<R: Read> Read for CrLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        crs_to_newlines(&mut buf[..n]);
        Ok(n)
    }
}

fn crs_to_newlines(bytes: &mut [u8]) {
    for b in bytes.iter_mut().filter(|b| **b == b'\r') {
        *b = b'\n';
    }
}

impl Input {
    /// The first bytes of text (up to 8 KiB), e.g. to tell a format or the first timestamp.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// A hash of the whole text, to tell two inputs with the same content; reads it to the end.
    pub fn content_hash(self) -> Result<u64, InputError> {
        use std::hash::Hasher;
        let mut hasher = std::hash::DefaultHasher::new();
        let Input {
            path, mut reader, ..
        } = self;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(hasher.finish()),
                Ok(n) => hasher.write(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(&path, 0, e)),
            }
        }
    }

    /// Streams every line to `each`; see [`for_each_line`].
    pub fn for_each_line(self, each: impl FnMut(Line<'_>)) -> Result<LineCounts, InputError> {
        let Input {
            path,
            codec,
            reader,
            ..
        } = self;
        for_each_line(reader, each).map_err(|(e, counts)| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                read_error(&path, counts.lines, e)
            } else {
                corrupt(&path, codec, counts.lines, e)
            }
        })
    }
}

/// A read error of a compressed input is the data's fault: say which check finds it.
fn corrupt(path: &str, codec: Option<Codec>, lines: u64, cause: io::Error) -> InputError {
    match codec {
        None => read_error(path, lines, cause),
        Some(Codec::Gzip) => InputError::CorruptGzip {
            path: path.to_string(),
            lines,
            cause,
        },
        Some(c) => InputError::CorruptCompressed {
            path: path.to_string(),
            codec: c.name(),
            lines,
            cause,
        },
    }
}

fn open_error(path: &str, e: io::Error) -> InputError {
    match e.kind() {
        io::ErrorKind::NotFound => InputError::NotFound(path.to_string()),
        io::ErrorKind::PermissionDenied => InputError::PermissionDenied(path.to_string()),
        io::ErrorKind::IsADirectory => InputError::IsDirectory(path.to_string()),
        _ => read_error(path, 0, e),
    }
}

fn read_error(path: &str, lines: u64, e: io::Error) -> InputError {
    if e.kind() == io::ErrorKind::IsADirectory {
        return InputError::IsDirectory(path.to_string());
    }
    InputError::Read {
        path: path.to_string(),
        lines,
        cause: e,
    }
}

/// Reads up to `want` bytes without losing them: returns them and a reader that yields the rest.
fn peek(mut reader: Box<dyn Read>, want: usize) -> io::Result<(Vec<u8>, Box<dyn Read>)> {
    let mut head = Vec::with_capacity(want);
    (&mut reader).take(want as u64).read_to_end(&mut head)?;
    Ok((head, reader))
}

/// A text log has no NUL bytes and few control characters; this looks at the first 8 KiB.
fn binary_reason(head: &[u8]) -> Option<String> {
    if let Some(at) = memchr::memchr(0, head) {
        return Some(format!("NUL byte at offset {at}"));
    }
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x1b | 0x0c))
        .count();
    if head.len() >= 64 && control * 10 > head.len() {
        return Some(format!(
            "{control} control bytes in the first {} bytes",
            head.len()
        ));
    }
    None
}

/// Decodes a line as UTF-8, replacing invalid sequences; says whether it had to.
pub fn decode(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (std::borrow::Cow::Borrowed(s), false),
        Err(_) => (String::from_utf8_lossy(bytes), true),
    }
}
