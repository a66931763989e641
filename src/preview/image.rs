//! The RGBA image every picture is, and its PNG file.

use std::path::Path;

use super::PreviewError;

/// An RGBA image, row-major, north first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// RGBA bytes, row-major, north first.
    pub rgba: Vec<u8>,
}

impl Image {
    /// An image of one colour.
    pub fn filled(width: usize, height: usize, rgba: [u8; 4]) -> Image {
        Image {
            width,
            height,
            rgba: rgba.repeat(width * height),
        }
    }

    /// Each pixel as a `k` x `k` square (nearest, no smoothing).
    pub fn scaled(&self, k: usize) -> Image {
        let width = self.width * k;
        let mut rgba = Vec::with_capacity(self.rgba.len() * k * k);
        let mut wide = Vec::with_capacity(width * 4);
        for row in self.rgba.chunks(self.width * 4) {
            wide.clear();
            for pixel in row.chunks(4) {
                for _ in 0..k {
                    wide.extend_from_slice(pixel);
                }
            }
            for _ in 0..k {
                rgba.extend_from_slice(&wide);
            }
        }
        Image {
            width,
            height: self.height * k,
            rgba,
        }
    }

    /// Copy `other` in with its top-left corner at row `top`, column 0.
    pub fn paste(&mut self, other: &Image, top: usize) {
        let width = other.width.min(self.width) * 4;
        for (r, row) in other.rgba.chunks(other.width * 4).enumerate() {
            let start = (top + r) * self.width * 4;
            if top + r >= self.height {
                break;
            }
            self.rgba[start..start + width].copy_from_slice(&row[..width]);
        }
    }

    /// Write as PNG.
    pub fn write_png(&self, path: &Path) -> Result<(), PreviewError> {
        let file = std::fs::File::create(path).map_err(|source| PreviewError::Write {
            path: path.into(),
            source,
        })?;
        self.encode_png(std::io::BufWriter::new(file), path)
    }

    /// The PNG's bytes, for a store rather than a file; `name` is for messages.
    pub fn png_bytes(&self, name: &str) -> Result<Vec<u8>, PreviewError> {
        let mut bytes = Vec::new();
        self.encode_png(&mut bytes, Path::new(name))?;
        Ok(bytes)
    }

    fn encode_png<W: std::io::Write>(&self, out: W, path: &Path) -> Result<(), PreviewError> {
        let encode = |source| PreviewError::Encode {
            path: path.into(),
            source,
        };
        let mut encoder = png::Encoder::new(out, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(&self.rgba).map_err(encode)?;
        writer.finish().map_err(encode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_pastes() {
        let mut small = Image::filled(2, 1, [1, 2, 3, 4]);
        small.rgba[4..8].copy_from_slice(&[9, 9, 9, 9]);
        let big = small.scaled(2);
        assert_eq!((big.width, big.height), (4, 2));
        assert_eq!(
            &big.rgba[..16],
            &[1, 2, 3, 4, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9]
        );
        assert_eq!(&big.rgba[16..], &big.rgba[..16]);
        let mut canvas = Image::filled(4, 3, [0; 4]);
        canvas.paste(&big, 1);
        assert_eq!(&canvas.rgba[16..], &big.rgba[..]);
        assert!(canvas.rgba[..16].iter().all(|&b| b == 0));
    }
}
