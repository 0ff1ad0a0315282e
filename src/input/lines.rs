//! Streaming line splitter with a fixed memory ceiling. Lines are handed out as byte slices of
//! one reusable buffer; a line longer than [`MAX_LINE`] is not buffered but measured and handed
//! out as `overlong` so the caller can count it as skipped.

use std::io::{self, Read};

use memchr::memchr;

/// The longest line kept in full. Longer ones are skipped (and counted), never buffered.
pub const MAX_LINE: usize = 1 << 20;
const READ_CHUNK: usize = 256 << 10;

/// One line, without its `\n` (and without a `\r` before it).
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// 1-based.
    pub number: u64,
    /// The line; for an overlong line, empty.
    pub bytes: &'a [u8],
    /// Set when the line was longer than [`MAX_LINE`]: its full length in bytes.
    pub overlong: Option<u64>,
}

/// Totals of one pass over a stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineCounts {
    pub lines: u64,
    pub bytes: u64,
}

/// Calls `each` for every line of `reader`, in order. A last line without a newline is still
/// a line. Read errors end the pass and are returned with how far it got.
pub fn for_each_line<R: Read>(
    mut reader: R,
    mut each: impl FnMut(Line<'_>),
) -> Result<LineCounts, (io::Error, LineCounts)> {
    let mut buf = vec![0u8; MAX_LINE + READ_CHUNK];
    let mut counts = LineCounts::default();
    let (mut start, mut end, mut searched) = (0usize, 0usize, 0usize);
    // Some(length so far) while skipping the rest of an overlong line.
    let mut discarding: Option<u64> = None;

    loop {
        while let Some(i) = memchr(b'\n', &buf[searched..end]) {
            let newline = searched + i;
            counts.lines += 1;
            match discarding.take() {
                Some(len) => each(Line {
                    number: counts.lines,
                    bytes: &[],
                    overlong: Some(len + (newline - start) as u64),
                }),
                None => {
                    let mut line = &buf[start..newline];
                    if let [rest @ .., b'\r'] = line {
                        line = rest;
                    }
                    if line.len() > MAX_LINE {
                        each(Line {
                            number: counts.lines,
                            bytes: &[],
                            overlong: Some(line.len() as u64),
                        });
                    } else {
                        each(Line {
                            number: counts.lines,
                            bytes: line,
                            overlong: None,
                        });
                    }
                }
            }
            start = newline + 1;
            searched = start;
        }
        searched = end;
        let pending = end - start;
        if let Some(len) = discarding.as_mut() {
            *len += pending as u64;
            (start, end, searched) = (0, 0, 0);
        } else if pending > MAX_LINE {
            discarding = Some(pending as u64);
            (start, end, searched) = (0, 0, 0);
        } else if start > 0 {
            buf.copy_within(start..end, 0);
            (end, searched, start) = (pending, pending, 0);
        }

        let n = loop {
            match reader.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err((e, counts)),
            }
        };
        if n == 0 {
            if discarding.is_some() || end > start {
                counts.lines += 1;
                let overlong = discarding.map(|len| len + (end - start) as u64);
                each(Line {
                    number: counts.lines,
                    bytes: if overlong.is_some() {
                        &[]
                    } else {
                        &buf[start..end]
                    },
                    overlong,
                });
            }
            return Ok(counts);
        }
        counts.bytes += n as u64;
        end += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &[u8]) -> Vec<(u64, Vec<u8>, Option<u64>)> {
        let mut out = Vec::new();
        for_each_line(data, |l| out.push((l.number, l.bytes.to_vec(), l.overlong))).unwrap();
        out
    }

    #[test]
    fn splits_lines_and_keeps_truncated_last_line() {
        let got = collect(b"a\r\nbb\n\nccc");
        let texts: Vec<_> = got.iter().map(|(_, b, _)| b.as_slice()).collect();
        assert_eq!(texts, vec![&b"a"[..], b"bb", b"", b"ccc"]);
        assert_eq!(got[3].0, 4);
    }

    #[test]
    fn overlong_line_is_measured_not_buffered() {
        let mut data = b"first\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE * 3 + 7));
        data.extend(b"\nlast\n");
        let got = collect(&data);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].2, Some((MAX_LINE * 3 + 7) as u64));
        assert_eq!(got[2].1, b"last");
        assert_eq!(got[2].0, 3);
    }

    #[test]
    fn overlong_last_line_without_newline() {
        let data = vec![b'y'; MAX_LINE + 10];
        let got = collect(&data);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2, Some((MAX_LINE + 10) as u64));
    }

    #[test]
    fn line_of_exactly_max_is_kept() {
        let mut data = vec![b'z'; MAX_LINE];
        data.push(b'\n');
        let got = collect(&data);
        assert_eq!(got[0].2, None);
        assert_eq!(got[0].1.len(), MAX_LINE);
    }
}
