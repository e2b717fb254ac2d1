//! `pipeline.ingest._scan`: the hot loop of normalizing, over files and over Kafka fetches.
//!
//! Splits a block of whole log lines (or takes a fetch's messages, one line each), keeps the
//! lines some dialect could care about (one of the markers, or too long: those become dead
//! letters), and splits the syslog header (RFC 3164 or RFC 3339) of the plain ASCII ones.
//! `ReferenceScanner` in pipeline/ingest/scan.py defines the behaviour, and
//! tests/unit/ingest/test_scan.py holds the two equal on arbitrary input; anything unusual
//! (not ASCII, no header, JSON) is returned without a header so that Python's general path
//! decides, exactly as it does line by line.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

/// ASCII characters Python's `str.isspace()` (and so `str.strip()` and the regex `\s`) counts
/// as whitespace.
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f | b' ')
}

fn strip(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// What pipeline/ingest/syslog.py's RFC 3164 pattern captures: stamp, host, program, pid, message.
struct Header<'a> {
    stamp: &'a [u8],
    host: &'a [u8],
    prog: &'a [u8],
    pid: Option<u64>,
    msg: &'a [u8],
}

/// A cursor over a stripped ASCII line; each step mirrors one element of the patterns
/// `(<PRI>(1 )?)? stamp(.d+)? host prog([pid])?: msg` with an RFC 3164 stamp
/// `Mmm {1,2}D{1,2} HH:MM:SS`, and `(<PRI>(1 )?)? stamp host prog([pid])?: msg` with an RFC
/// 3339 stamp `YYYY-MM-DDTHH:MM:SS(.d+)?(Z|[+-]HH:?MM)?`. Where a regex could backtrack, no
/// shorter choice can ever succeed (the next element needs a character the longer choice
/// consumed), so taking the longest is exact.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn byte(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.i += 1)
    }

    fn digit(&mut self) -> Option<()> {
        self.peek()?.is_ascii_digit().then(|| self.i += 1)
    }

    fn digits(&mut self, n: usize) -> Option<()> {
        (0..n).try_for_each(|_| self.digit())
    }

    /// The longest run (at least one) of bytes accepted by `ok`.
    fn run(&mut self, ok: impl Fn(u8) -> bool) -> Option<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(&ok) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    fn since(&self, start: usize) -> &'a [u8] {
        &self.s[start..self.i]
    }

    /// `<\d{1,3}>(1 )?`, or nothing (the cursor stays) when that is not there.
    fn pri(&mut self) {
        let start = self.i;
        let ok = (|| {
            self.byte(b'<')?;
            if self.run(|b| b.is_ascii_digit())?.len() > 3 {
                return None;
            }
            self.byte(b'>')?;
            if self.s[self.i..].starts_with(b"1 ") {
                self.i += 2;
            }
            Some(())
        })();
        if ok.is_none() {
            self.i = start;
        }
    }

    /// `HH:MM:SS`
    fn clock(&mut self) -> Option<()> {
        self.digits(2)?;
        self.byte(b':')?;
        self.digits(2)?;
        self.byte(b':')?;
        self.digits(2)
    }

    /// `(.d+)?`
    fn fraction(&mut self) -> Option<()> {
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.run(|b| b.is_ascii_digit())?;
        }
        Some(())
    }

    /// The RFC 3164 stamp (without its fraction, as the pattern's group), then its fraction.
    fn rfc3164(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        let month = self.s.get(start..start + 3)?;
        if !(month[0].is_ascii_uppercase()
            && month[1].is_ascii_lowercase()
            && month[2].is_ascii_lowercase())
        {
            return None;
        }
        self.i += 3;
        self.byte(b' ')?;
        let _ = self.byte(b' ');
        self.digit()?;
        let _ = self.digit();
        self.byte(b' ')?;
        self.clock()?;
        let stamp = self.since(start);
        self.fraction()?;
        Some(stamp)
    }

    /// The RFC 3339 stamp, fraction and offset included.
    fn rfc3339(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        self.digits(4)?;
        self.byte(b'-')?;
        self.digits(2)?;
        self.byte(b'-')?;
        self.digits(2)?;
        self.byte(b'T')?;
        self.clock()?;
        self.fraction()?;
        match self.peek() {
            Some(b'Z') => self.i += 1,
            Some(b'+' | b'-') => {
                self.i += 1;
                self.digits(2)?;
                let _ = self.byte(b':');
                self.digits(2)?;
            }
            _ => {}
        }
        Some(self.since(start))
    }
}

/// `host prog([pid])?: msg` after the stamp and its space.
fn tagged<'a>(mut c: Cursor<'a>, stamp: &'a [u8]) -> Option<Header<'a>> {
    c.byte(b' ')?;
    let host = c.run(|b| !is_space(b))?;
    c.byte(b' ')?;
    let prog = c.run(|b| !is_space(b) && b != b'[' && b != b':')?;
    let pid = if c.peek() == Some(b'[') {
        c.i += 1;
        let digits = c.run(|b| b.is_ascii_digit())?;
        c.byte(b']')?;
        if digits.len() > 10 {
            return None; // as the pattern's \d{1,10}
        }
        Some(
            digits
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
        )
    } else {
        None
    };
    c.byte(b':')?;
    c.byte(b' ')?;
    Some(Header {
        stamp,
        host,
        prog,
        pid,
        msg: &c.s[c.i..],
    })
}

/// As pipeline/ingest/syslog.py's `split_header`: RFC 3339 first for a line starting with a
/// digit or `<`, then RFC 3164.
fn header(s: &[u8]) -> Option<Header<'_>> {
    let first = *s.first()?;
    if first.is_ascii_digit() || first == b'<' {
        let mut c = Cursor { s, i: 0 };
        c.pri();
        if let Some(stamp) = c.rfc3339() {
            if let Some(found) = tagged(c, stamp) {
                return Some(found);
            }
        }
    }
    let mut c = Cursor { s, i: 0 };
    c.pri();
    let stamp = c.rfc3164()?;
    tagged(c, stamp)
}

fn text(b: &[u8]) -> &str {
    // Only ever called on ASCII slices.
    std::str::from_utf8(b).unwrap_or_default()
}

/// One Python string per distinct value within a block: stamps, hosts and program names
/// repeat line after line, and equal objects that are also identical compare fastest.
struct Strings<'a, 'py> {
    py: Python<'py>,
    seen: HashMap<&'a [u8], Bound<'py, PyString>>,
}

impl<'a, 'py> Strings<'a, 'py> {
    fn get(&mut self, b: &'a [u8]) -> Bound<'py, PyString> {
        let py = self.py;
        self.seen
            .entry(b)
            .or_insert_with(|| PyString::new(py, text(b)))
            .clone()
    }
}

/// Finds the relevant lines of blocks of log text.
#[pyclass(frozen, module = "pipeline.ingest._scan")]
struct Scanner {
    markers: AhoCorasick,
    max_line_bytes: usize,
}

#[pymethods]
impl Scanner {
    #[new]
    fn new(markers: Vec<String>, max_line_bytes: usize) -> PyResult<Self> {
        if !markers.iter().all(|m| m.is_ascii()) {
            // Searching bytes equals searching the decoded text only for ASCII markers.
            return Err(PyValueError::new_err("markers must be ASCII"));
        }
        let markers =
            AhoCorasick::new(&markers).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Scanner {
            markers,
            max_line_bytes,
        })
    }

    /// `block` (whole lines) → (number of lines, [(offset, line, header or None)]) for the
    /// lines that contain a marker or are longer than `max_line_bytes`; a line is without
    /// its `\n` and trailing `\r`s.
    fn scan<'py>(&self, py: Python<'py>, block: &[u8]) -> PyResult<(usize, Bound<'py, PyList>)> {
        let found = PyList::empty(py);
        let mut strings = Strings {
            py,
            seen: HashMap::new(),
        };
        let mut lines = 0;
        let mut start = 0;
        while start < block.len() {
            let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i);
            let mut line = &block[start..end];
            while let [rest @ .., b'\r'] = line {
                line = rest;
            }
            lines += 1;
            let too_long = line.len() > self.max_line_bytes;
            if too_long || self.markers.is_match(line) {
                let parsed = if !too_long && line.is_ascii() {
                    header(strip(line))
                } else {
                    None
                };
                let fields = parsed.map(|h| {
                    let pid = h.pid;
                    let msg = text(h.msg);
                    (
                        strings.get(h.stamp),
                        strings.get(h.host),
                        strings.get(h.prog),
                        pid,
                        msg,
                    )
                });
                found.append((start, PyBytes::new(py, line), fields))?;
            }
            start = end + 1;
        }
        Ok((lines, found))
    }

    /// Kafka messages, each one line as it arrived (`None`, a tombstone, as empty) →
    /// (a mask with 1 for each message no dialect could care about, [(index, header or
    /// None)] for the others). Nothing is split or stripped off the raw message here: the
    /// header is that of the message stripped, as the line-by-line path reads it.
    fn scan_messages<'py>(
        &self,
        py: Python<'py>,
        messages: &Bound<'py, PyList>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyList>)> {
        let items: Vec<Bound<'py, PyAny>> = messages.iter().collect();
        let mut views: Vec<&[u8]> = Vec::with_capacity(items.len());
        for item in &items {
            views.push(if item.is_none() {
                b""
            } else {
                item.cast::<PyBytes>()?.as_bytes()
            });
        }
        let found = PyList::empty(py);
        let mut skipped = vec![1u8; views.len()];
        let mut strings = Strings {
            py,
            seen: HashMap::new(),
        };
        for (index, &message) in views.iter().enumerate() {
            let too_long = message.len() > self.max_line_bytes;
            if !too_long && !self.markers.is_match(message) {
                continue;
            }
            skipped[index] = 0;
            let parsed = if !too_long && message.is_ascii() {
                header(strip(message))
            } else {
                None
            };
            let fields = parsed.map(|h| {
                (
                    strings.get(h.stamp),
                    strings.get(h.host),
                    strings.get(h.prog),
                    h.pid,
                    text(h.msg),
                )
            });
            found.append((index, fields))?;
        }
        Ok((PyBytes::new(py, &skipped), found))
    }
}

#[pymodule]
fn _scan(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scanner>()
}
