//! Image inputs: an `image_url` content part's data URI is decoded and its PNG header read for
//! the image's size, which gives its tokens (and so its share of the prefill).

use base64::Engine as _;

use crate::openai::ApiError;

/// Pixels per side of one image token: Qwen2-VL's 14-pixel patches merged 2×2, so an image
/// costs `ceil(w/28) · ceil(h/28)` tokens, as vLLM counts them for that family.
pub const PATCH_PX: u32 = 28;

/// What the server read from one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    /// Bytes of the decoded image file (not of its base64 text).
    pub bytes: u64,
    pub tokens: u64,
}

/// Image tokens of a `width` × `height` image.
pub fn image_tokens(width: u32, height: u32) -> u64 {
    u64::from(width.div_ceil(PATCH_PX)) * u64::from(height.div_ceil(PATCH_PX))
}

fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("image_url: {message}"))
}

/// Reads a `data:image/png;base64,...` URI; anything else is a 400 saying what is wrong.
pub fn inspect(url: &str) -> Result<ImageInfo, ApiError> {
    let rest = url.strip_prefix("data:").ok_or_else(|| {
        bad("only data URIs (data:image/png;base64,...) are accepted by the simulated server")
    })?;
    let (meta, payload) = rest
        .split_once(',')
        .ok_or_else(|| bad("malformed data URI: no ',' before the data"))?;
    let mime = meta
        .strip_suffix(";base64")
        .ok_or_else(|| bad("malformed data URI: the data must be base64 (';base64,')"))?;
    if mime != "image/png" {
        return Err(bad(format!(
            "unsupported image type '{mime}': the simulated server reads PNG images"
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim_ascii())
        .map_err(|e| bad(format!("malformed data URI: invalid base64: {e}")))?;
    let (width, height) =
        png_size(&bytes).ok_or_else(|| bad("not a PNG image (no PNG signature and IHDR)"))?;
    Ok(ImageInfo {
        width,
        height,
        bytes: bytes.len() as u64,
        tokens: image_tokens(width, height),
    })
}

/// Width and height from the IHDR chunk, which must come first after the signature.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    if bytes.len() < 24 || bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (width, height) = (be(16), be(20));
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG's first 24 bytes: signature, IHDR length and type, width, height.
    fn png_head(width: u32, height: u32) -> Vec<u8> {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    fn uri(bytes: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        format!("data:image/png;base64,{b64}")
    }

    #[test]
    fn reads_size_and_counts_patches() {
        let info = inspect(&uri(&png_head(640, 480))).unwrap();
        assert_eq!((info.width, info.height, info.bytes), (640, 480, 33));
        // ceil(640/28) = 23, ceil(480/28) = 18.
        assert_eq!(info.tokens, 23 * 18);
        assert_eq!(image_tokens(28, 28), 1);
        assert_eq!(image_tokens(29, 1), 2);
    }

    #[test]
    fn malformed_uris_say_what_is_wrong() {
        let cases = [
            ("https://example.com/a.png", "only data URIs"),
            ("data:image/png;base64", "no ','"),
            ("data:image/png,abc", "must be base64"),
            (
                "data:image/jpeg;base64,AAAA",
                "unsupported image type 'image/jpeg'",
            ),
            ("data:image/png;base64,!!!", "invalid base64"),
            ("data:image/png;base64,AAAA", "not a PNG image"),
        ];
        for (url, want) in cases {
            let err = inspect(url).unwrap_err();
            assert_eq!(err.status, 400, "{url}");
            assert!(err.message.contains(want), "{url}: {}", err.message);
        }
        assert!(inspect(&uri(&png_head(0, 5))).is_err());
    }
}
