//! The drawing backend of the plots: plotters' [`BitMapBackend`] with its
//! text drawn by `ab_glyph` directly.
//!
//! plotters 0.3.7 with its `ab_glyph` feature places each glyph at the pen
//! position without the glyph's left side bearing, and puts the baseline at
//! half the font size below the anchor, so words come out unevenly spaced
//! ("calib ration") and raised by a quarter of a line. [`Canvas`] forwards
//! every other call to the bitmap backend and sets text the usual way: pen
//! advances with kerning, each glyph at its own bounds, the box from ascent
//! to descent anchored as plotters asks, then rotated as it asks.

use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters::prelude::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use super::chart::FONT;

/// The bundled font, parsed once.
fn font() -> Option<&'static FontRef<'static>> {
    static PARSED: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    PARSED
        .get_or_init(|| FontRef::try_from_slice(FONT).ok())
        .as_ref()
}

#[derive(Debug, thiserror::Error)]
#[error("the bundled font fonts/DejaVuSans.ttf could not be parsed")]
struct BadFont;

/// The glyphs of `text` at `size` pixels, positioned with their baseline at
/// the font's ascent (so the box starts at y = 0), and the box's size.
fn layout(text: &str, size: f64) -> Option<(Vec<ab_glyph::Glyph>, (f32, f32))> {
    let scaled = font()?.as_scaled(PxScale::from(size as f32));
    let mut x = 0.0f32;
    let mut previous = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = previous {
            x += scaled.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(scaled.scale(), point(x, scaled.ascent())));
        x += scaled.h_advance(id);
        previous = Some(id);
    }
    Some((glyphs, (x, scaled.ascent() - scaled.descent())))
}

/// plotters' bitmap backend with correctly set text (see the module docs).
/// Paths, circles and polygons come from the trait's default methods, which
/// the bitmap backend does not override either.
pub(super) struct Canvas<'a>(pub BitMapBackend<'a>);

impl DrawingBackend for Canvas<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        (iw, ih): (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, (iw, ih), src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let (_, (w, h)) =
            layout(text, style.size()).ok_or(DrawingErrorKind::FontError(Box::new(BadFont)))?;
        Ok((w.ceil() as u32, h.ceil() as u32))
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let (glyphs, (w, h)) =
            layout(text, style.size()).ok_or(DrawingErrorKind::FontError(Box::new(BadFont)))?;
        let font = font().ok_or(DrawingErrorKind::FontError(Box::new(BadFont)))?;
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -w / 2.0,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -h / 2.0,
            VPos::Bottom => -h,
        };
        let transform = style.transform();
        let (width, height) = self.get_size();
        let mut result = Ok(());
        for glyph in glyphs {
            let Some(outline) = font.outline_glyph(glyph) else {
                continue; // a space
            };
            let bounds = outline.px_bounds();
            let (x0, y0) = (
                (bounds.min.x + dx).round() as i32,
                (bounds.min.y + dy).round() as i32,
            );
            outline.draw(|gx, gy, coverage| {
                let (x, y) = transform.transform(x0 + gx as i32, y0 + gy as i32);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if result.is_ok() && x >= 0 && y >= 0 && (x as u32) < width && (y as u32) < height {
                    let ink = BackendColor {
                        alpha: color.alpha * f64::from(coverage.min(1.0)),
                        rgb: color.rgb,
                    };
                    result = self.0.draw_pixel((x, y), ink);
                }
            });
        }
        result
    }
}
