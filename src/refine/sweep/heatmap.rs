//! `sweep.png`: the sweep as a heatmap — one panel per background threshold, rows `t1`, columns
//! `t2`, each cell coloured by its mIoU and labelled with it (percent), the best cell outlined,
//! axis labels and a title. Drawn with a built-in 5×7 pixel font (no font files), at least 400 px
//! wide.

use super::SweepResult;
use crate::Result;

/// Pixel scale of the 5×7 font.
const SCALE: usize = 2;
const GLYPH_W: usize = 5 * SCALE;
const GLYPH_H: usize = 7 * SCALE;
const ADVANCE: usize = GLYPH_W + SCALE;
const CELL_H: usize = 34;
const MARGIN: usize = 16;
const MIN_WIDTH: usize = 400;

/// A drawn heatmap: the PNG and where each cell is in it (for a page to map clicks to cells).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Heatmap {
    #[serde(skip)]
    pub png: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub cells: Vec<CellBox>,
}

/// One cell's settings and its rectangle in the PNG (pixels).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CellBox {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bg: Option<f64>,
    pub t1: f64,
    pub t2: f64,
    pub miou: Option<f64>,
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

/// The heatmap of `result` as an RGB PNG.
pub fn heatmap_png(result: &SweepResult) -> Result<Vec<u8>> {
    Ok(heatmap(result)?.png)
}

/// The heatmap of `result`: the PNG and its cells' rectangles.
pub fn heatmap(result: &SweepResult) -> Result<Heatmap> {
    let planes = result.miou.planes();
    let (n1, n2) = (result.t1.len(), result.t2.len());
    let labels1: Vec<String> = result.t1.iter().map(|v| tick(*v)).collect();
    let labels2: Vec<String> = result.t2.iter().map(|v| tick(*v)).collect();
    let left = MARGIN
        + text_width("T1")
        + ADVANCE
        + labels1.iter().map(|s| text_width(s)).max().unwrap_or(0)
        + 8;
    let widest = labels2.iter().map(|s| text_width(s)).max().unwrap_or(0);
    let cell_w = (widest + 10)
        .max(text_width("100.0") + 12)
        .max(MIN_WIDTH.saturating_sub(left + MARGIN) / n2.max(1));
    let panel_h = GLYPH_H + 10 + GLYPH_H + 8 + n1 * CELL_H;
    let title_h = MARGIN + 2 * (GLYPH_H + 6);
    let best = result.best.as_ref();
    let title = format!(
        "SEPL {} SWEEP: MIOU % OVER {} IMAGES",
        result.preset, result.images
    );
    let best_text = match best {
        Some(b) => format!(
            "BEST{} T1 {} T2 {}: {:.2}",
            b.bg.map(|v| format!(" BG {}", tick(v))).unwrap_or_default(),
            tick(b.t1),
            tick(b.t2),
            100.0 * b.miou
        ),
        None => "NO CELL SCORED".to_string(),
    };
    let width = (left + n2 * cell_w + MARGIN)
        .max(MIN_WIDTH)
        .max(2 * MARGIN + text_width(&title).max(text_width(&best_text)));
    let height = title_h + planes.len() * (panel_h + MARGIN) + MARGIN;
    let mut canvas = Canvas::new(width, height);
    canvas.text(MARGIN, MARGIN, &title, [0, 0, 0]);
    canvas.text(MARGIN, MARGIN + GLYPH_H + 6, &best_text, [0, 0, 0]);

    let (lo, hi) = range(&planes);
    let mut cells = Vec::new();
    let mut y0 = title_h;
    for (b, plane) in planes.iter().enumerate() {
        let head = match &result.bg {
            Some(bg) => format!("BG {}    T2 →", tick(bg[b])),
            None => "T2 →".to_string(),
        };
        canvas.text(left, y0, &head, [40, 40, 40]);
        let ticks_y = y0 + GLYPH_H + 10;
        for (j, l) in labels2.iter().enumerate() {
            let x = left + j * cell_w + (cell_w - text_width(l)) / 2;
            canvas.text(x, ticks_y, l, [40, 40, 40]);
        }
        let grid_y = ticks_y + GLYPH_H + 8;
        canvas.text(
            MARGIN,
            grid_y + (n1 * CELL_H) / 2 - GLYPH_H / 2,
            "T1",
            [40, 40, 40],
        );
        for (i, l) in labels1.iter().enumerate() {
            let x = left - 8 - text_width(l);
            canvas.text(
                x,
                grid_y + i * CELL_H + (CELL_H - GLYPH_H) / 2,
                l,
                [40, 40, 40],
            );
        }
        for (i, row) in plane.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let (x, y) = (left + j * cell_w, grid_y + i * CELL_H);
                let colour = match v {
                    Some(v) => viridis(if hi > lo { (v - lo) / (hi - lo) } else { 1.0 }),
                    None => [200, 200, 200],
                };
                canvas.fill(x, y, cell_w, CELL_H, colour);
                cells.push(CellBox {
                    bg: result.bg.as_ref().map(|bg| bg[b]),
                    t1: result.t1[i],
                    t2: result.t2[j],
                    miou: *v,
                    x,
                    y,
                    w: cell_w,
                    h: CELL_H,
                });
                canvas.outline(x, y, cell_w, CELL_H, 1, [255, 255, 255]);
                let text = v
                    .map(|v| format!("{:.1}", 100.0 * v))
                    .unwrap_or_else(|| "-".into());
                let ink = if luminance(colour) > 140.0 {
                    [0, 0, 0]
                } else {
                    [255, 255, 255]
                };
                let tx = x + (cell_w.saturating_sub(text_width(&text))) / 2;
                canvas.text(tx, y + (CELL_H - GLYPH_H) / 2, &text, ink);
                let is_best = best.is_some_and(|bst| {
                    bst.t1 == result.t1[i]
                        && bst.t2 == result.t2[j]
                        && bst.bg == result.bg.as_ref().map(|bg| bg[b])
                });
                if is_best {
                    canvas.outline(x, y, cell_w, CELL_H, 3, [220, 0, 0]);
                }
            }
        }
        y0 += panel_h + MARGIN;
    }
    Ok(Heatmap {
        png: canvas.png()?,
        width,
        height,
        cells,
    })
}

/// A threshold as a short tick label (`0.5`, `0.85`).
fn tick(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_string()
}

fn range(planes: &[&Vec<Vec<Option<f64>>>]) -> (f64, f64) {
    let values = planes.iter().flat_map(|p| p.iter().flatten().flatten());
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    })
}

fn text_width(s: &str) -> usize {
    s.chars().count() * ADVANCE
}

fn luminance(c: [u8; 3]) -> f64 {
    0.299 * c[0] as f64 + 0.587 * c[1] as f64 + 0.114 * c[2] as f64
}

/// A viridis-like ramp: dark blue (0) → teal → yellow (1).
fn viridis(t: f64) -> [u8; 3] {
    const STOPS: [[f64; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let mix = |k: usize| (STOPS[i][k] + f * (STOPS[i + 1][k] - STOPS[i][k])).round() as u8;
    [mix(0), mix(1), mix(2)]
}

struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            rgb: vec![255; width * height * 3],
        }
    }

    fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = 3 * (y * self.width + x);
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, c: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.put(xx, yy, c);
            }
        }
    }

    fn outline(&mut self, x: usize, y: usize, w: usize, h: usize, t: usize, c: [u8; 3]) {
        self.fill(x, y, w, t, c);
        self.fill(x, y + h - t, w, t, c);
        self.fill(x, y, t, h, c);
        self.fill(x + w - t, y, t, h, c);
    }

    /// Text in the 5×7 font (lower case drawn as upper case), top-left at (x, y).
    fn text(&mut self, x: usize, y: usize, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let rows = glyph(ch.to_ascii_uppercase());
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (px, py) = (x + k * ADVANCE + col * SCALE, y + r * SCALE);
                        self.fill(px, py, SCALE, SCALE, c);
                    }
                }
            }
        }
    }

    fn png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc
                .write_header()
                .map_err(|e| crate::Error::input("sweep.png", format!("PNG encoding: {e}")))?;
            w.write_image_data(&self.rgb)
                .map_err(|e| crate::Error::input("sweep.png", format!("PNG encoding: {e}")))?;
        }
        Ok(out)
    }
}

/// The 5×7 glyph of `c`: 7 rows, the 5 low bits of each (MSB left). Unknown characters draw
/// as a box.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '→' => [0x00, 0x04, 0x02, 0x1F, 0x02, 0x04, 0x00],
        ' ' => [0; 7],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refine::sweep::{Best, Miou};

    #[test]
    fn draws_a_wide_enough_png_with_every_cell() {
        let r = SweepResult {
            preset: "official-imp2".into(),
            images: 3,
            bg: None,
            t1: vec![0.3, 0.5],
            t2: vec![0.7, 0.85, 0.95],
            miou: Miou::Plane(vec![
                vec![Some(0.6), Some(0.62), None],
                vec![Some(0.5), Some(0.7), Some(0.55)],
            ]),
            best: Some(Best {
                bg: None,
                t1: 0.5,
                t2: 0.85,
                miou: 0.7,
            }),
        };
        let png = heatmap_png(&r).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert!(img.width() >= 400, "{}", img.width());
        // The best cell's red outline is drawn.
        assert!(img.pixels().any(|p| p.0 == [220, 0, 0]));
        assert_eq!(tick(0.85), "0.85");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(1.0), "1");
    }
}
