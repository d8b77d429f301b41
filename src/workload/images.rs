//! Image inputs, made ready before the run: image files named by a dataset (relative to the
//! dataset file), data URIs a dataset holds, and seeded synthetic images (`--image-options`).
//! Each is encoded once into its `data:` URI here; requests only copy it.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::progress;
use super::salted_png::{SaltedPng, SALT_BYTES};
use crate::config::image_options::ImageOptions;
use crate::request::openai::{ImageInput, Message};

/// Side of a synthetic image's tiles of one colour: random per base image, yet a few kilobytes
/// as PNG, so that a thousand images stay small in memory (servers count image tokens from the
/// size alone).
const TILE_PX: u32 = 16;

/// A `data:` URI of `bytes` of type `mime`.
fn data_uri(mime: &str, bytes: &[u8]) -> ImageInput {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    ImageInput {
        data_uri: format!("data:{mime};base64,{b64}").into(),
        bytes: bytes.len() as u64,
    }
}

/// Base images a run's synthetic images are variants of (fewer when fewer images are sent):
/// encoded once each, in parallel; every image sent is one of them with its own salt.
pub const BASES: usize = 16;

/// The tile colours of a base image, drawn from `seed`.
fn tiles(width: u32, height: u32, seed: u64) -> Result<SaltedPng, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let tiles_x = width.div_ceil(TILE_PX) as usize;
    let tiles_y = height.div_ceil(TILE_PX) as usize;
    let colours: Vec<[u8; 3]> = (0..tiles_x * tiles_y).map(|_| rng.random()).collect();
    SaltedPng::new(width, height, |x, y| {
        colours[(y / TILE_PX) as usize * tiles_x + (x / TILE_PX) as usize]
    })
}

/// A PNG of `width` × `height` tiles of colours drawn from `seed`.
pub fn synthetic_png(width: u32, height: u32, seed: u64) -> Result<Vec<u8>, String> {
    Ok(tiles(width, height, seed)?.variant(&[0; SALT_BYTES]))
}

/// `requests` × `options.count` synthetic images, grouped per request: variants of up to
/// [`BASES`] base images seeded by `rng`, image k salted with k and `run_salt` in its last
/// pixels, so that every image of the run is distinct in pixels (and, with a fresh
/// `run_salt`, from every earlier run's), for a few microseconds each.
pub fn synthetic(
    options: ImageOptions,
    requests: usize,
    rng: &mut StdRng,
    run_salt: u64,
) -> Result<Vec<Vec<ImageInput>>, String> {
    let total = requests * options.count as usize;
    let seeds: Vec<u64> = (0..total.min(BASES)).map(|_| rng.random()).collect();
    let bar = progress::bar(seeds.len(), "images", "base images");
    let bases = seeds
        .par_iter()
        .map(|&seed| {
            let base = tiles(options.width, options.height, seed);
            bar.inc(1);
            base
        })
        .collect::<Result<Vec<_>, _>>()?;
    bar.finish_and_clear();
    let images: Vec<ImageInput> = (0..total)
        .into_par_iter()
        .map(|k| {
            let mut salt = [0; SALT_BYTES];
            salt[..8].copy_from_slice(&(k as u64).to_le_bytes());
            salt[8..].copy_from_slice(&run_salt.to_le_bytes());
            data_uri("image/png", &bases[k % bases.len()].variant(&salt))
        })
        .collect();
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
        let a = synthetic(options, 3, &mut StdRng::seed_from_u64(1), 0).unwrap();
        let b = synthetic(options, 3, &mut StdRng::seed_from_u64(1), 0).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|per| per.len() == 2));
        assert!(a[0][0].data_uri.starts_with("data:image/png;base64,"));
        assert_ne!(a[0][0], a[0][1]);
    }

    /// Every image of a run is new to a server that hashes decoded pixels, yet only a few base
    /// images are ever compressed (before: one full PNG encoding per image, 44.6 s for 4,000
    /// 1024 × 1024 ones).
    #[test]
    fn synthetic_images_are_few_bases_salted_apart() {
        use crate::workload::salted_png::tests::decode;
        let options = ImageOptions {
            width: 40,
            height: 30,
            count: 3,
        };
        let images = synthetic(options, 20, &mut StdRng::seed_from_u64(2), 0).unwrap();
        let pngs: Vec<Vec<u8>> = images
            .iter()
            .flatten()
            .map(|i| {
                let b64 = i.data_uri.strip_prefix("data:image/png;base64,").unwrap();
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap()
            })
            .collect();
        assert_eq!(pngs.len(), 60);
        let pixels: std::collections::HashSet<Vec<u8>> = pngs.iter().map(|p| decode(p).2).collect();
        assert_eq!(pixels.len(), 60, "every image distinct in pixels");
        // A variant is its base's bytes up to its own last IDAT chunk (5 + 16 + 4 bytes of
        // data), then that chunk and IEND.
        let heads: std::collections::HashSet<&[u8]> =
            pngs.iter().map(|p| &p[..p.len() - 12 - 37]).collect();
        assert_eq!(heads.len(), BASES, "compressed once per base");
        // Another run's salt: every image new again.
        let other = synthetic(options, 20, &mut StdRng::seed_from_u64(2), 9).unwrap();
        for (a, b) in images.iter().flatten().zip(other.iter().flatten()) {
            assert_ne!(a, b);
        }
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
