//! `--image-options width=W,height=H,count=N`: synthetic images sent with every request (seeded
//! by `--seed`, encoded once before the run).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Largest side accepted: a bigger image would take gigabytes to hold for every request.
pub const MAX_SIDE: u32 = 8192;
/// Most images per request.
pub const MAX_COUNT: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ImageOptions {
    pub width: u32,
    pub height: u32,
    /// Images per request.
    pub count: u32,
}

impl FromStr for ImageOptions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (mut width, mut height, mut count) = (None, None, 1);
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("'{pair}' is not key=value"))?;
            let n: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("{key}: '{value}' is not a whole number"))?;
            match key.trim() {
                "width" => width = Some(n),
                "height" => height = Some(n),
                "count" => count = n,
                other => {
                    return Err(format!(
                        "unknown key '{other}' (expected width, height, count)"
                    ))
                }
            }
        }
        let (Some(width), Some(height)) = (width, height) else {
            return Err("width and height are required, e.g. width=512,height=512".into());
        };
        if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
            return Err(format!("width and height must be within 1..={MAX_SIDE}"));
        }
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(format!("count must be within 1..={MAX_COUNT}"));
        }
        Ok(ImageOptions {
            width,
            height,
            count,
        })
    }
}

impl fmt::Display for ImageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "width={},height={},count={}",
            self.width, self.height, self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let o: ImageOptions = "width=640, height=480,count=2".parse().unwrap();
        assert_eq!((o.width, o.height, o.count), (640, 480, 2));
        assert_eq!(o.to_string(), "width=640,height=480,count=2");
        let one: ImageOptions = "height=28,width=28".parse().unwrap();
        assert_eq!(one.count, 1);
        for (bad, needle) in [
            ("width=10", "required"),
            ("width=0,height=5", "within"),
            ("width=10,height=10,count=0", "count"),
            ("width=x,height=1", "whole number"),
            ("size=1", "unknown key"),
            ("width", "key=value"),
        ] {
            let err = bad.parse::<ImageOptions>().unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
