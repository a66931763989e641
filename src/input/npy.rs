//! Reading and writing NumPy `.npy` headers, without loading array data.
//!
//! TESSERA tiles are plain `.npy` files (format versions 1.0-3.0). The parser is strict about
//! what the pipeline needs (dtype, C order, shape) and never panics on malformed input.

use std::io::{Read, Write};

/// The element types the pipeline reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// `|i1` (or `<i1`).
    Int8,
    /// `<f4`.
    Float32,
    /// `|u1`.
    Uint8,
}

impl NpyDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyDtype::Int8 | NpyDtype::Uint8 => 1,
            NpyDtype::Float32 => 4,
        }
    }

    fn descr(self) -> &'static str {
        match self {
            NpyDtype::Int8 => "|i1",
            NpyDtype::Float32 => "<f4",
            NpyDtype::Uint8 => "|u1",
        }
    }
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: NpyDtype,
    /// Array shape (C order).
    pub shape: Vec<usize>,
    /// Byte offset of the data in the file.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for an array with no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of data bytes the header announces.
    pub fn data_bytes(&self) -> usize {
        self.len() * self.dtype.size()
    }
}

/// Why a header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("not a .npy file (bad magic)")]
    BadMagic,
    #[error("unsupported .npy format version {0}.{1}")]
    BadVersion(u8, u8),
    #[error("file ends inside the header")]
    Truncated,
    #[error("malformed header: {0}")]
    Malformed(String),
    #[error("unsupported dtype `{0}` (expected int8, uint8 or little-endian float32)")]
    UnsupportedDtype(String),
    #[error("Fortran-ordered arrays are not supported")]
    FortranOrder,
    #[error("file holds {actual} data bytes, header announces {expected}")]
    WrongDataSize { expected: u64, actual: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Parse a header from the first bytes of a file (`bytes` may hold more than the header).
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, NpyError> {
    if bytes.len() < 10 {
        return Err(if bytes.len() >= 6 && &bytes[..6] != MAGIC {
            NpyError::BadMagic
        } else {
            NpyError::Truncated
        });
    }
    if &bytes[..6] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(NpyError::Truncated);
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        _ => return Err(NpyError::BadVersion(major, minor)),
    };
    let end = start.checked_add(len).ok_or(NpyError::Truncated)?;
    if bytes.len() < end {
        return Err(NpyError::Truncated);
    }
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| NpyError::Malformed("header is not UTF-8".into()))?;
    let dict = parse_dict(text)?;
    let descr = dict
        .descr
        .ok_or_else(|| NpyError::Malformed("no 'descr' key".into()))?;
    let dtype = match descr.as_str() {
        "|i1" | "<i1" | "i1" => NpyDtype::Int8,
        "|u1" | "<u1" | "u1" => NpyDtype::Uint8,
        "<f4" => NpyDtype::Float32,
        other => return Err(NpyError::UnsupportedDtype(other.to_string())),
    };
    match dict.fortran_order {
        Some(false) => {}
        Some(true) => return Err(NpyError::FortranOrder),
        None => return Err(NpyError::Malformed("no 'fortran_order' key".into())),
    }
    let shape = dict
        .shape
        .ok_or_else(|| NpyError::Malformed("no 'shape' key".into()))?;
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.size()))
        .ok_or_else(|| NpyError::Malformed("shape overflows".into()))?;
    Ok(NpyHeader {
        dtype,
        shape,
        data_offset: end,
    })
}

#[derive(Default)]
struct HeaderDict {
    descr: Option<String>,
    fortran_order: Option<bool>,
    shape: Option<Vec<usize>>,
}

/// Parse the Python dict literal of a header: `{'descr': '|i1', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_dict(text: &str) -> Result<HeaderDict, NpyError> {
    let malformed = |m: &str| NpyError::Malformed(format!("{m} in `{}`", text.trim_end()));
    let body = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.trim_end().strip_suffix('}'))
        .ok_or_else(|| malformed("not a dict"))?;
    let mut dict = HeaderDict::default();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let (key, after) = take_quoted(rest).ok_or_else(|| malformed("expected a quoted key"))?;
        let after = after
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| malformed("expected ':'"))?
            .trim_start();
        let after = match key {
            "descr" => {
                let (v, a) = take_quoted(after).ok_or_else(|| malformed("descr not a string"))?;
                dict.descr = Some(v.to_string());
                a
            }
            "fortran_order" => {
                if let Some(a) = after.strip_prefix("False") {
                    dict.fortran_order = Some(false);
                    a
                } else if let Some(a) = after.strip_prefix("True") {
                    dict.fortran_order = Some(true);
                    a
                } else {
                    return Err(malformed("fortran_order not a bool"));
                }
            }
            "shape" => {
                let inner = after
                    .strip_prefix('(')
                    .ok_or_else(|| malformed("shape not a tuple"))?;
                let close = inner
                    .find(')')
                    .ok_or_else(|| malformed("shape not closed"))?;
                let mut shape = Vec::new();
                for part in inner[..close].split(',') {
                    let p = part.trim();
                    if p.is_empty() {
                        continue;
                    }
                    let p = p.strip_suffix('L').unwrap_or(p);
                    shape.push(p.parse::<usize>().map_err(|_| malformed("bad dimension"))?);
                }
                dict.shape = Some(shape);
                &inner[close + 1..]
            }
            _ => return Err(malformed("unknown key")),
        };
        let after = after.trim_start();
        rest = match after.strip_prefix(',') {
            Some(a) => a.trim_start(),
            None if after.is_empty() => after,
            None => return Err(malformed("expected ','")),
        };
    }
    Ok(dict)
}

/// Split a leading `'...'` or `"..."` string off `s`.
fn take_quoted(s: &str) -> Option<(&str, &str)> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &s[1..];
    let end = body.find(q)?;
    Some((&body[..end], &body[end + 1..]))
}

/// Read just the header of a `.npy` file and check that the file size matches it.
pub fn read_header(path: &std::path::Path) -> Result<NpyHeader, NpyError> {
    read_header_from(&mut std::fs::File::open(path)?)
}

/// [`read_header`] on an open file, which is left positioned somewhere in the header.
fn read_header_from(file: &mut std::fs::File) -> Result<NpyHeader, NpyError> {
    use std::io::Seek;
    let size = file.metadata()?.len();
    let mut buf = vec![0u8; 4096.min(size as usize)];
    file.read_exact(&mut buf)?;
    let mut header = parse_header(&buf);
    if let Err(NpyError::Truncated) = header {
        // A header longer than 4 KiB: read the length it announces.
        if buf.len() >= 12 && buf[6] >= 2 {
            let want = 12 + u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as u64;
            if want <= size && want <= 1 << 20 {
                let mut all = vec![0u8; want as usize];
                file.seek(std::io::SeekFrom::Start(0))?;
                file.read_exact(&mut all)?;
                header = parse_header(&all);
            }
        }
    }
    let header = header?;
    let actual = size - header.data_offset as u64;
    if actual != header.data_bytes() as u64 {
        return Err(NpyError::WrongDataSize {
            expected: header.data_bytes() as u64,
            actual,
        });
    }
    Ok(header)
}

/// Encode a version 1.0 header for a C-ordered array (padded to 64 bytes as NumPy does).
pub fn encode_header(dtype: NpyDtype, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape_text
    );
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Write a whole `.npy` file: header then raw little-endian data bytes.
pub fn write_npy(
    path: &std::path::Path,
    dtype: NpyDtype,
    shape: &[usize],
    data: &[u8],
) -> std::io::Result<()> {
    assert_eq!(shape.iter().product::<usize>() * dtype.size(), data.len());
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(&encode_header(dtype, shape))?;
    file.write_all(data)?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Read a whole `.npy` file, returning the header and the data bytes.
pub fn read_npy(path: &std::path::Path) -> Result<(NpyHeader, Vec<u8>), NpyError> {
    let mut data = Vec::new();
    let header = read_npy_into(path, &mut data)?;
    Ok((header, data))
}

/// Read an npy file's header, and its data into `data` (cleared first). Reusing one buffer
/// for many files of the same size saves a fresh allocation, and its page faults, per file.
pub fn read_npy_into(path: &std::path::Path, data: &mut Vec<u8>) -> Result<NpyHeader, NpyError> {
    use std::io::Seek;
    let mut file = std::fs::File::open(path)?;
    let header = read_header_from(&mut file)?;
    file.seek(std::io::SeekFrom::Start(header.data_offset as u64))?;
    let expected = header.data_bytes();
    data.clear();
    data.reserve_exact(expected);
    // One byte more than expected, so that a file that grew since the header was read is caught.
    file.take(expected as u64 + 1).read_to_end(data)?;
    if data.len() != expected {
        return Err(NpyError::WrongDataSize {
            expected: expected as u64,
            actual: data.len() as u64,
        });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse() {
        for shape in [vec![1119, 211, 128], vec![7], vec![3, 4]] {
            let h = encode_header(NpyDtype::Int8, &shape);
            assert_eq!(h.len() % 64, 0);
            let p = parse_header(&h).unwrap();
            assert_eq!(p.shape, shape);
            assert_eq!(p.dtype, NpyDtype::Int8);
            assert_eq!(p.data_offset, h.len());
        }
    }

    #[test]
    fn parses_numpy_written_headers() {
        let text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1119, 211), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(text.len() as u16).to_le_bytes());
        bytes.extend_from_slice(text);
        let h = parse_header(&bytes).unwrap();
        assert_eq!(h.dtype, NpyDtype::Float32);
        assert_eq!(h.shape, vec![1119, 211]);
    }

    #[test]
    fn rejects_bad_headers_without_panicking() {
        let cases: Vec<&[u8]> = vec![
            b"",
            b"\x93NUMP",
            b"PK\x03\x04xxxxxxxxxxxxx",
            b"\x93NUMPY\x09\x00\x10\x00{}",
            b"\x93NUMPY\x01\x00\xff\x00{'descr'",
            b"\x93NUMPY\x01\x00\x0a\x00{'descr': ",
        ];
        for c in cases {
            assert!(parse_header(c).is_err());
        }
        let dict = |d: &str| {
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend_from_slice(&(d.len() as u16).to_le_bytes());
            b.extend_from_slice(d.as_bytes());
            parse_header(&b)
        };
        assert!(matches!(
            dict("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"),
            Err(NpyError::UnsupportedDtype(_))
        ));
        assert!(matches!(
            dict("{'descr': '|i1', 'fortran_order': True, 'shape': (2,), }"),
            Err(NpyError::FortranOrder)
        ));
        assert!(dict("{'descr': '|i1', 'fortran_order': False, 'shape': (-2,), }").is_err());
        assert!(
            dict("{'descr': '|i1', 'fortran_order': False, 'shape': (99999999999, 99999999999, 9999999999), }")
                .is_err()
        );
    }
}
