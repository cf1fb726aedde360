//! 8- and 16-bit PNG and TIFF images as one slice of values: gray samples as they are stored
//! (windowed like any gray image), RGB kept as colour; alpha is dropped. Float TIFFs are
//! refused: their range has no agreed display.

use super::{check_size, Display, Frames};
use crate::{Error, Result};
use image::DynamicImage;

/// Read a PNG or TIFF held in memory.
pub(super) fn read(bytes: &[u8], name: &str) -> Result<Frames> {
    let bad = |e: image::ImageError| {
        Error::input(
            name,
            format!("cannot decode the image ({e}); expected a PNG or TIFF"),
        )
    };
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(e.into()))
    };
    let (width, height) = reader()?.into_dimensions().map_err(bad)?;
    let (width, height) = (width as usize, height as usize);
    check_size(width, height, 3, 1, name)?;
    let gray = Display::Gray {
        monochrome1: false,
        file_window: None,
    };
    let (channels, values, display): (usize, Vec<f32>, Display) = match reader()?
        .decode()
        .map_err(bad)?
    {
        DynamicImage::ImageLuma8(img) => (1, img.iter().map(|&v| f32::from(v)).collect(), gray),
        DynamicImage::ImageLuma16(img) => (1, img.iter().map(|&v| f32::from(v)).collect(), gray),
        DynamicImage::ImageLumaA8(img) => {
            (1, img.pixels().map(|p| f32::from(p.0[0])).collect(), gray)
        }
        DynamicImage::ImageLumaA16(img) => {
            (1, img.pixels().map(|p| f32::from(p.0[0])).collect(), gray)
        }
        DynamicImage::ImageRgb8(img) => (
            3,
            img.iter().map(|&v| f32::from(v)).collect(),
            Display::Rgb { max: 255.0 },
        ),
        DynamicImage::ImageRgba8(img) => (
            3,
            img.pixels()
                .flat_map(|p| [p.0[0], p.0[1], p.0[2]].map(f32::from))
                .collect(),
            Display::Rgb { max: 255.0 },
        ),
        DynamicImage::ImageRgb16(img) => (
            3,
            img.iter().map(|&v| f32::from(v)).collect(),
            Display::Rgb { max: 65535.0 },
        ),
        DynamicImage::ImageRgba16(img) => (
            3,
            img.pixels()
                .flat_map(|p| [p.0[0], p.0[1], p.0[2]].map(f32::from))
                .collect(),
            Display::Rgb { max: 65535.0 },
        ),
        _ => {
            return Err(Error::input(
                name,
                "floating-point images are not supported; expected 8- or 16-bit samples",
            ))
        }
    };
    Ok(Frames {
        width,
        height,
        channels,
        frames: vec![values],
        display,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_gray_keeps_its_values() {
        let img = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 1, vec![1000u16, 60000])
            .unwrap();
        let mut png = Vec::new();
        DynamicImage::ImageLuma16(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let frames = read(&png, "x.png").unwrap();
        assert_eq!(frames.frames, [vec![1000.0, 60000.0]]);
        assert_eq!(frames.channels, 1);
    }
}
