//! Raster primitives on an [`RgbImage`]: rectangles (opaque and
//! translucent), thick and dashed lines, and point markers.
//!
//! Coordinates are signed pixels so that shapes may extend past the image;
//! whatever falls outside is clipped, never a panic.

use image::{Rgb, RgbImage};

/// Sets one pixel if it lies inside the image.
pub fn put(img: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && x < i64::from(img.width()) && y < i64::from(img.height()) {
        img.put_pixel(x as u32, y as u32, color);
    }
}

/// `alpha · color + (1 − alpha) · under`, per channel, rounded.
pub fn mix(under: Rgb<u8>, color: Rgb<u8>, alpha: f64) -> Rgb<u8> {
    let alpha = alpha.clamp(0.0, 1.0);
    let channel =
        |u: u8, c: u8| (alpha * f64::from(c) + (1.0 - alpha) * f64::from(u)).round() as u8;
    Rgb([
        channel(under[0], color[0]),
        channel(under[1], color[1]),
        channel(under[2], color[2]),
    ])
}

/// Blends `color` over one pixel with opacity `alpha`, if it is inside.
pub fn blend(img: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>, alpha: f64) {
    if x >= 0 && y >= 0 && x < i64::from(img.width()) && y < i64::from(img.height()) {
        let under = *img.get_pixel(x as u32, y as u32);
        img.put_pixel(x as u32, y as u32, mix(under, color, alpha));
    }
}

/// Clips the half-open box `[x0, x1) × [y0, y1)` to the image.
fn clip(img: &RgbImage, x0: i64, y0: i64, x1: i64, y1: i64) -> (u32, u32, u32, u32) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let cx0 = x0.clamp(0, w) as u32;
    let cx1 = x1.clamp(0, w) as u32;
    let cy0 = y0.clamp(0, h) as u32;
    let cy1 = y1.clamp(0, h) as u32;
    (cx0, cy0, cx1, cy1)
}

/// Fills the half-open box `[x0, x1) × [y0, y1)` with `color`.
pub fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb<u8>) {
    let (x0, y0, x1, y1) = clip(img, x0, y0, x1, y1);
    for y in y0..y1 {
        for x in x0..x1 {
            img.put_pixel(x, y, color);
        }
    }
}

/// Blends `color` with opacity `alpha` over the half-open box
/// `[x0, x1) × [y0, y1)`.
pub fn blend_rect(
    img: &mut RgbImage,
    x0: i64,
    y0: i64,
    x1: i64,
    y1: i64,
    color: Rgb<u8>,
    alpha: f64,
) {
    let (x0, y0, x1, y1) = clip(img, x0, y0, x1, y1);
    for y in y0..y1 {
        for x in x0..x1 {
            let under = *img.get_pixel(x, y);
            img.put_pixel(x, y, mix(under, color, alpha));
        }
    }
}

/// Draws the 1-pixel outline of the half-open box `[x0, x1) × [y0, y1)`.
pub fn stroke_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb<u8>) {
    fill_rect(img, x0, y0, x1, y0 + 1, color);
    fill_rect(img, x0, y1 - 1, x1, y1, color);
    fill_rect(img, x0, y0, x0 + 1, y1, color);
    fill_rect(img, x1 - 1, y0, x1, y1, color);
}

/// Stamps a `thickness × thickness` square centred on `(x, y)`.
fn stamp(img: &mut RgbImage, x: i64, y: i64, thickness: u32, color: Rgb<u8>) {
    let t = i64::from(thickness.max(1));
    let lo = (t - 1) / 2;
    fill_rect(img, x - lo, y - lo, x - lo + t, y - lo + t, color);
}

/// Visits the pixels of the Bresenham line from `(x0, y0)` to `(x1, y1)`,
/// both included, with their index along the line.
fn bresenham(x0: i64, y0: i64, x1: i64, y1: i64, mut visit: impl FnMut(usize, i64, i64)) {
    let dx = (x1 - x0).abs();
    let dy = -(y1 - y0).abs();
    let sx = if x0 < x1 { 1 } else { -1 };
    let sy = if y0 < y1 { 1 } else { -1 };
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    let mut step = 0;
    loop {
        visit(step, x, y);
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
        step += 1;
    }
}

/// Draws a line from `(x0, y0)` to `(x1, y1)` (both included) with the given
/// thickness in pixels.
pub fn draw_line(
    img: &mut RgbImage,
    (x0, y0): (i64, i64),
    (x1, y1): (i64, i64),
    thickness: u32,
    color: Rgb<u8>,
) {
    bresenham(x0, y0, x1, y1, |_, x, y| stamp(img, x, y, thickness, color));
}

/// Draws a dashed line: `dash` pixels on, `gap` pixels off, along the
/// Bresenham path.
pub fn draw_dashed_line(
    img: &mut RgbImage,
    (x0, y0): (i64, i64),
    (x1, y1): (i64, i64),
    thickness: u32,
    (dash, gap): (usize, usize),
    color: Rgb<u8>,
) {
    let period = (dash + gap).max(1);
    bresenham(x0, y0, x1, y1, |i, x, y| {
        if i % period < dash {
            stamp(img, x, y, thickness, color);
        }
    });
}

/// Shape of a point marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled disc.
    Circle,
    /// Filled axis-aligned square.
    Square,
    /// Filled diamond (square rotated 45°).
    Diamond,
    /// Filled upward triangle.
    Triangle,
}

impl Marker {
    /// The marker used for the `i`-th series: circle, square, diamond,
    /// triangle, repeating.
    pub fn for_series(i: usize) -> Self {
        [Self::Circle, Self::Square, Self::Diamond, Self::Triangle][i % 4]
    }
}

/// Draws a filled marker of half-size `radius` centred on `(x, y)`; the
/// centre pixel is always covered.
pub fn draw_marker(
    img: &mut RgbImage,
    x: i64,
    y: i64,
    radius: u32,
    marker: Marker,
    color: Rgb<u8>,
) {
    let r = i64::from(radius);
    for dy in -r..=r {
        for dx in -r..=r {
            let inside = match marker {
                Marker::Circle => dx * dx + dy * dy <= r * r + r,
                Marker::Square => dx.abs() * 5 <= r * 4 && dy.abs() * 5 <= r * 4,
                Marker::Diamond => dx.abs() + dy.abs() <= r,
                // Apex at (0, -r), base along dy = r · 3/4.
                Marker::Triangle => {
                    let base = r * 3 / 4;
                    dy <= base && 2 * dx.abs() <= dy + r
                }
            };
            if inside {
                put(img, x + dx, y + dy, color);
            }
        }
    }
}
