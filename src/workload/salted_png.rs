//! Many distinct PNGs for the price of one: a base image is compressed once, and each variant
//! only writes its own last few pixels. Pure logic.
//!
//! A PNG's image data is one zlib stream, which may be split over several IDAT chunks. The
//! base compresses every raw byte but the last [`SALT_BYTES`] (pixels of the bottom row) and
//! ends with a sync flush, so that its deflate data ends on a byte boundary with no final
//! block. A variant appends, in a second IDAT chunk, those last (filtered) bytes with its salt
//! written over them as a final *stored* deflate block, and the zlib trailer: the Adler-32 of all the
//! raw data, continued from the base's. A variant costs a few dozen bytes of work, and differs
//! from every other variant in decoded pixels (servers hash the pixels they decode, so a salt
//! in metadata would not make an image new to their caches).

use flate2::{Compress, Compression, FlushCompress, Status};

/// Raw bytes at the end of the image that a variant writes: its salt (the bottom-right pixels,
/// at most five of them).
pub const SALT_BYTES: usize = 16;

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
/// PNG row filters: each byte minus the one 3 bytes (a pixel) left, or the one above.
const FILTER_SUB: u8 = 1;
const FILTER_UP: u8 = 2;

/// A compressed RGB image but its last few raw bytes.
pub struct SaltedPng {
    /// Signature, IHDR, and the first IDAT chunk (zlib header and the sync-flushed deflate data
    /// of every raw byte but the tail).
    head: Vec<u8>,
    /// Adler-32 of the raw bytes the head holds.
    head_adler: u32,
    /// The image's last raw bytes, as the base has them (a variant writes its salt over them).
    tail: Vec<u8>,
}

impl SaltedPng {
    /// A base image of `width` × `height` RGB pixels, `rgb(x, y)` each.
    pub fn new(width: u32, height: u32, rgb: impl Fn(u32, u32) -> [u8; 3]) -> Result<Self, String> {
        if width == 0 || height == 0 {
            return Err("an image must be at least 1 × 1".into());
        }
        // Each row is its filter type and its filtered bytes: Up (zeros) for a row equal to the
        // one above, else Sub (zeros within a run of one colour). Unfiltered, a tiled image
        // compresses ten times worse, and every image sent copies its base's bytes.
        let row_len = 1 + 3 * width as usize;
        let mut raw = Vec::with_capacity(row_len * height as usize);
        let (mut above, mut row) = (Vec::new(), Vec::with_capacity(row_len - 1));
        for y in 0..height {
            row.clear();
            for x in 0..width {
                row.extend_from_slice(&rgb(x, y));
            }
            if row == above {
                raw.push(FILTER_UP);
                raw.resize(raw.len() + row.len(), 0);
            } else {
                raw.push(FILTER_SUB);
                raw.extend((0..row.len()).map(|i| {
                    row[i].wrapping_sub(row.get(i.wrapping_sub(3)).copied().unwrap_or(0))
                }));
            }
            std::mem::swap(&mut above, &mut row);
        }
        let tail_len = SALT_BYTES.min(row_len - 1);
        let (body, tail) = raw.split_at(raw.len() - tail_len);
        let mut idat = vec![0x78, 0x01]; // zlib header: deflate, 32 KiB window, no dictionary
        deflate_sync(body, &mut idat)?;
        let mut head = SIGNATURE.to_vec();
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        // 8 bits per sample, RGB, deflate, adaptive filtering, no interlace.
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut head, b"IHDR", &ihdr);
        chunk(&mut head, b"IDAT", &idat);
        let mut adler = adler2::Adler32::new();
        adler.write_slice(body);
        Ok(SaltedPng {
            head,
            head_adler: adler.checksum(),
            tail: tail.to_vec(),
        })
    }

    /// The base image with `salt` written over its last raw bytes (as many of them as the
    /// image has, at most [`SALT_BYTES`]): variants with distinct salts differ in pixels (a
    /// row's filter maps its raw bytes to its pixels one to one, given the rows above).
    pub fn variant(&self, salt: &[u8; SALT_BYTES]) -> Vec<u8> {
        let mut tail = self.tail.clone();
        let n = tail.len();
        tail.copy_from_slice(&salt[..n]);
        let len = n as u16; // at most SALT_BYTES
                            // A final stored block (BFINAL 1, BTYPE 00, then byte-aligned LEN and NLEN), the raw
                            // tail, and the zlib trailer (Adler-32 of all the raw data, big-endian).
        let mut idat = Vec::with_capacity(5 + n + 4);
        idat.push(0x01);
        idat.extend_from_slice(&len.to_le_bytes());
        idat.extend_from_slice(&(!len).to_le_bytes());
        idat.extend_from_slice(&tail);
        let mut adler = adler2::Adler32::from_checksum(self.head_adler);
        adler.write_slice(&tail);
        idat.extend_from_slice(&adler.checksum().to_be_bytes());
        let mut png = Vec::with_capacity(self.head.len() + idat.len() + 24);
        png.extend_from_slice(&self.head);
        chunk(&mut png, b"IDAT", &idat);
        chunk(&mut png, b"IEND", &[]);
        png
    }
}

/// Appends a PNG chunk: length, type, data, CRC-32 of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Deflates `input` (raw deflate, no header) onto `out`, ending with a sync flush: the data
/// ends on a byte boundary, and more blocks may follow.
fn deflate_sync(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    // The default level: as small as the png crate's images (26.6 KB for 1024 × 1024 tiles,
    // against 42.5 KB at the fastest), each image sent being a copy, for 10 ms a base.
    let mut z = Compress::new(Compression::default(), false);
    out.reserve(input.len() / 8 + 64);
    loop {
        let consumed = z.total_in() as usize;
        let status = z
            .compress_vec(&input[consumed..], out, FlushCompress::Sync)
            .map_err(|e| format!("compressing a synthetic image: {e}"))?;
        // Done when all input is in and the flush left room to spare (nothing more pending).
        if z.total_in() as usize == input.len() && out.len() < out.capacity() {
            return Ok(());
        }
        if status == Status::BufError || out.len() == out.capacity() {
            out.reserve(out.capacity().max(4096));
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The decoded RGB pixels of a PNG.
    pub fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .expect("a valid PNG header");
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).expect("valid image data");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        pixels.truncate(info.buffer_size());
        (info.width, info.height, pixels)
    }

    fn salt(n: u8) -> [u8; SALT_BYTES] {
        let mut s = [0; SALT_BYTES];
        s[0] = n;
        s
    }

    fn pattern(x: u32, y: u32) -> [u8; 3] {
        [(x / 4) as u8, (y / 4) as u8, ((x + y) % 7) as u8]
    }

    #[test]
    fn variants_decode_to_the_base_but_their_salted_pixels() {
        let (w, h) = (37, 21);
        let base = SaltedPng::new(w, h, pattern).unwrap();
        let a = base.variant(&salt(1));
        let b = base.variant(&salt(2));
        assert_eq!(sim::png_size(&a), Some((w, h)));
        let (dw, dh, pa) = decode(&a);
        let (_, _, pb) = decode(&b);
        assert_eq!((dw, dh), (w, h));
        let want: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| pattern(x, y)))
            .collect();
        let cut = want.len() - SALT_BYTES;
        assert_eq!(pa[..cut], want[..cut], "every pixel but the salted ones");
        assert_ne!(pa, pb, "variants differ in decoded pixels");
        assert_eq!(pa[..cut], pb[..cut]);
        // The salts differ in their first byte, and so does the first salted pixel.
        assert_ne!(pa[cut], pb[cut]);
        assert_eq!(
            a,
            base.variant(&salt(1)),
            "a variant is a function of its salt"
        );
    }

    /// A row narrower than the salt holds what fits; one pixel high, the head holds no pixel.
    #[test]
    fn tiny_and_one_row_images_decode() {
        for (w, h) in [(1, 1), (2, 3), (5, 1), (6, 1), (300, 1)] {
            let base = SaltedPng::new(w, h, pattern).unwrap();
            let (a, b) = (base.variant(&salt(7)), base.variant(&salt(8)));
            let ((dw, dh, pa), (_, _, pb)) = (decode(&a), decode(&b));
            assert_eq!((dw, dh), (w, h));
            assert_eq!(pa.len(), (3 * w * h) as usize);
            assert_ne!(pa, pb, "{w} × {h}");
        }
        assert!(SaltedPng::new(0, 4, pattern).is_err());
    }

    /// Large enough that the deflate output outgrows its first buffer.
    #[test]
    fn noisy_images_decode() {
        let base = SaltedPng::new(300, 200, |x, y| {
            let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).to_le_bytes();
            [v[0], v[1], v[2]]
        })
        .unwrap();
        let (w, h, _) = decode(&base.variant(&salt(3)));
        assert_eq!((w, h), (300, 200));
    }
}
