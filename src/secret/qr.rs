//! How a new secret is shown to a person: the QR code of its otpauth URI
//! drawn with text (the tool's `--qr utf8` and `--qr ansi`, and the module's
//! enrollment at login, which draws the same UTF-8 half blocks), and the
//! secret in groups of four for typing by hand. Strings in, strings out.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use qrcode::{Color, QrCode};
use zeroize::Zeroizing;

pub use qrcode::types::QrError;

/// Light modules around the code. The standard asks for four; the terminal
/// around it is dark, so the light border drawn here is what scanners need.
pub const QUIET_ZONE: usize = 4;

/// The QR modules with the quiet zone: `true` is dark.
pub struct Matrix {
    size: usize,
    dark: Vec<bool>,
}

impl Matrix {
    pub fn new(text: &str) -> Result<Matrix, QrError> {
        let code = QrCode::new(text.as_bytes())?;
        let width = code.width();
        let colors = code.to_colors();
        let size = width + 2 * QUIET_ZONE;
        let mut dark = vec![false; size * size];
        for y in 0..width {
            for x in 0..width {
                dark[(y + QUIET_ZONE) * size + x + QUIET_ZONE] =
                    colors[y * width + x] == Color::Dark;
            }
        }
        Ok(Matrix { size, dark })
    }

    /// Modules on a side, the quiet zone included.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Module (x, y); rows past the bottom (the odd half row) are light.
    fn is_dark(&self, x: usize, y: usize) -> bool {
        y < self.size && self.dark[y * self.size + x]
    }

    /// Two module rows per text row; the light modules are drawn, the dark
    /// ones left to the terminal's (dark) background.
    pub fn utf8(&self) -> String {
        let mut out = String::new();
        for y in (0..self.size).step_by(2) {
            for x in 0..self.size {
                let top = !self.is_dark(x, y);
                let bottom = !self.is_dark(x, y + 1) && y + 1 < self.size;
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
        }
        out
    }

    /// Every cell an upper half block with explicit colours: foreground the
    /// top module, background the bottom one (black or bright white).
    pub fn ansi(&self) -> String {
        let mut out = String::new();
        for y in (0..self.size).step_by(2) {
            let mut last = None;
            for x in 0..self.size {
                // The odd half row below the code takes the quiet zone's colour.
                let cell = (
                    self.is_dark(x, y),
                    y + 1 < self.size && self.is_dark(x, y + 1),
                );
                if last != Some(cell) {
                    let fg = if cell.0 { 30 } else { 97 };
                    let bg = if cell.1 { 40 } else { 107 };
                    let _ = write!(out, "\x1b[{fg};{bg}m");
                    last = Some(cell);
                }
                out.push('▀');
            }
            out.push_str("\x1b[0m\n");
        }
        out
    }
}

/// A base32 secret in groups of four, for typing by hand.
pub fn grouped(secret: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(secret.len() * 5 / 4));
    for (i, c) in secret.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_groups_of_four() {
        assert_eq!(grouped("ABCDEFGHIJ").as_str(), "ABCD EFGH IJ");
        assert_eq!(grouped("ABCD").as_str(), "ABCD");
    }

    #[test]
    fn utf8_rendering_has_the_quiet_zone_and_half_rows() {
        let m = Matrix::new("otpauth://totp/h:a?secret=JBSWY3DPEHPK3PXP&issuer=h").unwrap();
        let text = m.utf8();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), m.size.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == m.size));
        // The top quiet zone is light: full blocks.
        assert!(lines[0].chars().all(|c| c == '█'));
        // A finder pattern's dark top edge starts right after the border.
        assert_eq!(lines[2].chars().nth(QUIET_ZONE), Some(' '));
    }

    #[test]
    fn ansi_rendering_sets_colours_and_resets() {
        let text = Matrix::new("x").unwrap().ansi();
        assert!(text.starts_with("\x1b[97;107m▀"));
        assert!(text.lines().all(|l| l.ends_with("\x1b[0m")));
    }
}
