//! Image inputs, made ready before the run: image files named by a dataset (relative to the
//! dataset file), data URIs a dataset holds, and seeded synthetic images (`--image-options`).
//! Each is encoded once into its `data:` URI here; requests only copy it.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::config::image_options::ImageOptions;
use crate::request::openai::{ImageInput, Message};

/// Side of a synthetic image's tiles of one colour: random per image, yet a few kilobytes as
/// PNG, so that a thousand distinct images stay small in memory (servers count image tokens
/// from the size alone).
const TILE_PX: u32 = 16;

/// A `data:` URI of `bytes` of type `mime`.
fn data_uri(mime: &str, bytes: &[u8]) -> ImageInput {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    ImageInput {
        data_uri: format!("data:{mime};base64,{b64}").into(),
        bytes: bytes.len() as u64,
    }
}

/// A PNG of `width` × `height` tiles of colours drawn from `seed`.
pub fn synthetic_png(width: u32, height: u32, seed: u64) -> Result<Vec<u8>, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let tiles_x = width.div_ceil(TILE_PX) as usize;
    let tiles_y = height.div_ceil(TILE_PX) as usize;
    let colours: Vec<[u8; 3]> = (0..tiles_x * tiles_y).map(|_| rng.random()).collect();
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height as usize {
        let row = &colours[(y / TILE_PX as usize) * tiles_x..][..tiles_x];
        for x in 0..width as usize {
            pixels.extend_from_slice(&row[x / TILE_PX as usize]);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| format!("encoding a synthetic image: {e}"))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| format!("encoding a synthetic image: {e}"))?;
    writer
        .finish()
        .map_err(|e| format!("encoding a synthetic image: {e}"))?;
    Ok(out)
}

/// `requests` × `options.count` synthetic images, seeded by `rng` (drawn in order, encoded in
/// parallel), grouped per request.
pub fn synthetic(
    options: ImageOptions,
    requests: usize,
    rng: &mut StdRng,
) -> Result<Vec<Vec<ImageInput>>, String> {
    let seeds: Vec<u64> = (0..requests * options.count as usize)
        .map(|_| rng.random())
        .collect();
    let images = seeds
        .par_iter()
        .map(|&seed| {
            synthetic_png(options.width, options.height, seed)
                .map(|png| data_uri("image/png", &png))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(images
        .chunks(options.count as usize)
        .map(<[ImageInput]>::to_vec)
        .collect())
}

/// A dataset's image: a `data:` URI as it is, or a file path relative to the dataset's folder.
pub fn from_dataset(item: &str, dataset_dir: &Path) -> Result<ImageInput, String> {
    if let Some(rest) = item.strip_prefix("data:") {
        let (meta, payload) = rest.split_once(";base64,").ok_or_else(|| {
            "an image data URI must be base64 (data:<type>;base64,...)".to_string()
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload.trim_ascii())
            .map_err(|e| format!("an image data URI of type '{meta}' is not valid base64: {e}"))?;
        return Ok(ImageInput {
            data_uri: item.into(),
            bytes: bytes.len() as u64,
        });
    }
    let path = dataset_dir.join(item);
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("image '{}' could not be read: {e}", path.display()))?;
    Ok(data_uri(mime_of(&path)?, &bytes))
}

fn mime_of(path: &Path) -> Result<&'static str, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        _ => {
            return Err(format!(
                "image '{}': unknown type (expected .png, .jpg, .jpeg, .webp or .gif)",
                path.display()
            ))
        }
    })
}

/// Adds `images` to the last user message of `messages` (the turn they go with).
pub fn attach(messages: &mut [Message], images: Vec<ImageInput>) {
    if images.is_empty() {
        return;
    }
    let Some(m) = messages.iter_mut().rev().find(|m| m.role == "user") else {
        return;
    };
    let mut extras = m.extras.as_deref().cloned().unwrap_or_default();
    extras.images.extend(images);
    m.extras = Some(Arc::new(extras));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_images_are_seeded_pngs_of_their_size() {
        let png = synthetic_png(100, 30, 7).unwrap();
        assert_eq!(sim::png_size(&png), Some((100, 30)));
        assert_eq!(
            png,
            synthetic_png(100, 30, 7).unwrap(),
            "same seed, same image"
        );
        assert_ne!(png, synthetic_png(100, 30, 8).unwrap());
        let options = ImageOptions {
            width: 64,
            height: 64,
            count: 2,
        };
        let a = synthetic(options, 3, &mut StdRng::seed_from_u64(1)).unwrap();
        let b = synthetic(options, 3, &mut StdRng::seed_from_u64(1)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|per| per.len() == 2));
        assert!(a[0][0].data_uri.starts_with("data:image/png;base64,"));
        assert_ne!(a[0][0], a[0][1]);
    }

    #[test]
    fn dataset_images_are_files_beside_it_or_data_uris() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), synthetic_png(8, 8, 1).unwrap()).unwrap();
        let image = from_dataset("a.png", dir.path()).unwrap();
        assert!(image.data_uri.starts_with("data:image/png;base64,"));
        let again = from_dataset(&image.data_uri, Path::new("/nowhere")).unwrap();
        assert_eq!(again, image);
        let missing = from_dataset("b.png", dir.path()).unwrap_err();
        assert!(
            missing.contains("b.png") && missing.contains("could not be read"),
            "{missing}"
        );
        std::fs::write(dir.path().join("c.bmp"), b"x").unwrap();
        assert!(from_dataset("c.bmp", dir.path())
            .unwrap_err()
            .contains("unknown type"));
        assert!(from_dataset("data:image/png;base64,!!", dir.path()).is_err());
    }

    #[test]
    fn images_go_with_the_last_user_turn() {
        let msg = |role: &str| Message {
            role: role.into(),
            content: "x".into(),
            extras: None,
        };
        let mut messages = vec![msg("system"), msg("user")];
        let image = data_uri("image/png", b"abc");
        attach(&mut messages, vec![image.clone()]);
        assert!(messages[0].extras.is_none());
        assert_eq!(messages[1].extras.as_ref().unwrap().images, vec![image]);
    }
}
