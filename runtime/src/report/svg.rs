//! Writing markup by hand, safely: every piece of text goes through [`esc`], and numbers are
//! written with a fixed precision so that a page of 1,000 nodes stays small.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with the five characters that could end an attribute or open a tag replaced.
pub fn esc(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A coordinate with one decimal, without a trailing `.0`.
pub fn num(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 { format!("{}", rounded as i64) } else { format!("{rounded:.1}") }
}

/// A score as the page prints it.
pub fn score(value: Option<f64>) -> String {
    value.map_or("–".to_owned(), |v| format!("{v:.5}"))
}

/// A status label reduced to what a CSS class may hold.
pub fn class_name(status: &str) -> String {
    status.chars().filter(|c| c.is_ascii_lowercase() || *c == '-').take(24).collect()
}

/// The colour of a score on a perceptually even ramp (viridis' stops), `t` in [0, 1].
pub fn ramp(t: f64) -> String {
    const STOPS: [(f64, f64, f64); 5] =
        [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let at = t * (STOPS.len() - 1) as f64;
    let i = (at.floor() as usize).min(STOPS.len() - 2);
    let f = at - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    format!("#{:02x}{:02x}{:02x}", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A text label at (x, y).
pub fn text(out: &mut String, x: f64, y: f64, class: &str, label: &str) {
    let _ = write!(out, r#"<text x="{}" y="{}" class="{class}">{}</text>"#, num(x), num(y), esc(label));
}

/// A straight line.
pub fn line(out: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), class: &str) {
    let _ =
        write!(out, r#"<line x1="{}" y1="{}" x2="{}" y2="{}" class="{class}"/>"#, num(x1), num(y1), num(x2), num(y2));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(class_name("evaluated\" onclick=\"x"), "evaluatedonclickx");
    }

    #[test]
    fn the_ramp_runs_from_purple_to_yellow() {
        assert_eq!(ramp(0.0), "#440154");
        assert_eq!(ramp(1.0), "#fde725");
        assert_eq!(ramp(f64::NAN), "#440154");
    }
}
