//! Colour handling for the terminal renderer: when to colour
//! ([`ColorChoice`], [`color_enabled`]) and how each styled fragment is
//! written (the SGR parameters upstream's lipgloss styles produce on an
//! ANSI terminal).
//!
//! Every styled fragment is written as `ESC[<params>m<text>ESC[0m`: each
//! fragment is reset on its own, and padding or indentation added around it
//! stays outside the escape codes. A multi-line fragment has every line
//! styled separately. With colour off, no escape code is ever written.

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// Colour when writing to a terminal, honouring `NO_COLOR` and
    /// `CLICOLOR_FORCE` (see [`color_enabled`]).
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The colour decision alone, with the environment passed in so that it can
/// be tested without touching the process environment.
///
/// `Always` and `Never` are unconditional. `Auto` colours when `is_tty` is
/// true and `NO_COLOR` is unset or empty, or when `CLICOLOR_FORCE` is set to
/// anything but `""` or `"0"` (forcing colour even when not on a terminal or
/// when `NO_COLOR` is set).
pub fn color_enabled(
    choice: ColorChoice,
    is_tty: bool,
    no_color: Option<&str>,
    clicolor_force: Option<&str>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let forced = clicolor_force.is_some_and(|v| !v.is_empty() && v != "0");
            let no_color = no_color.is_some_and(|v| !v.is_empty());
            forced || (is_tty && !no_color)
        }
    }
}

/// The renderer's styles (named after upstream's lipgloss styles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Bold: the `Complete:` line.
    Header,
    /// Bold magenta: plan header and parallel plan steps.
    Magenta,
    /// Bold faint magenta: sequential plan steps.
    MagentaFaint,
    /// Cyan: host names, parallel level end.
    Cyan,
    /// Bold cyan: parallel level start.
    CyanBold,
    /// Green: success tags, host `ok`.
    Green,
    /// Bold green: `changed=true`, host ` changed`.
    GreenBold,
    /// Bold red: failures and errors.
    Red,
    /// Yellow: `[retry]`, skipped hosts.
    Yellow,
    /// Faint yellow: `[skip]`.
    YellowFaint,
    /// Faint: details, durations, verbose data, sequential level end.
    Dim,
    /// Bold faint: sequential level start.
    DimBold,
}

impl Style {
    /// The SGR parameters of the style.
    pub(crate) fn sgr(self) -> &'static str {
        match self {
            Style::Header => "1",
            Style::Magenta => "1;35",
            Style::MagentaFaint => "1;2;35",
            Style::Cyan => "36",
            Style::CyanBold => "1;36",
            Style::Green => "32",
            Style::GreenBold => "1;32",
            Style::Red => "1;31",
            Style::Yellow => "33",
            Style::YellowFaint => "2;33",
            Style::Dim => "2",
            Style::DimBold => "1;2",
        }
    }
}

/// Writes styled fragments into a `String`, with or without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Painter {
    color: bool,
}

impl Painter {
    /// A painter that colours when `color` is true.
    pub(crate) fn new(color: bool) -> Painter {
        Painter { color }
    }

    /// Appends `text` (one line) in `style`. Empty text writes nothing.
    pub(crate) fn paint(self, out: &mut String, style: Style, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.color {
            out.push_str("\x1b[");
            out.push_str(style.sgr());
            out.push('m');
            out.push_str(text);
            out.push_str("\x1b[0m");
        } else {
            out.push_str(text);
        }
    }

    /// Appends what `write` appends, in `style` (nothing styled when it
    /// appends nothing): [`Painter::paint`] without building the text
    /// first.
    pub(crate) fn paint_with(
        self,
        out: &mut String,
        style: Style,
        write: impl FnOnce(&mut String),
    ) {
        if !self.color {
            write(out);
            return;
        }
        let start = out.len();
        out.push_str("\x1b[");
        out.push_str(style.sgr());
        out.push('m');
        let text_start = out.len();
        write(out);
        if out.len() == text_start {
            out.truncate(start);
        } else {
            out.push_str("\x1b[0m");
        }
    }

    /// Appends possibly multi-line `text` in `style`: each line is styled on
    /// its own and every line after the first starts on a new line indented
    /// by `indent` spaces (empty lines get no indentation). `\r\n` counts as
    /// a line break; a trailing line break is dropped. No final newline is
    /// written.
    pub(crate) fn paint_block(self, out: &mut String, style: Style, text: &str, indent: usize) {
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                out.push('\n');
                if !line.is_empty() {
                    super::format::push_spaces(out, indent);
                }
            }
            self.paint(out, style, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_and_never_ignore_everything_else() {
        for tty in [false, true] {
            for nc in [None, Some(""), Some("1")] {
                for cf in [None, Some(""), Some("0"), Some("1")] {
                    assert!(color_enabled(ColorChoice::Always, tty, nc, cf));
                    assert!(!color_enabled(ColorChoice::Never, tty, nc, cf));
                }
            }
        }
    }

    #[test]
    fn auto_table() {
        // (is_tty, NO_COLOR, CLICOLOR_FORCE, expected)
        let table: &[(bool, Option<&str>, Option<&str>, bool)] = &[
            (true, None, None, true),
            (false, None, None, false),
            (true, Some(""), None, true),
            (true, Some("1"), None, false),
            (false, Some("1"), None, false),
            (false, None, Some("1"), true),
            (false, None, Some("yes"), true),
            (false, None, Some("0"), false),
            (false, None, Some(""), false),
            (true, None, Some("0"), true),
            (true, Some("1"), Some("0"), false),
            (true, Some("1"), Some("1"), true),
            (false, Some("1"), Some("1"), true),
            (false, Some(""), Some("0"), false),
            (true, Some(""), Some("1"), true),
        ];
        for &(tty, nc, cf, want) in table {
            assert_eq!(
                color_enabled(ColorChoice::Auto, tty, nc, cf),
                want,
                "tty={tty} NO_COLOR={nc:?} CLICOLOR_FORCE={cf:?}"
            );
        }
    }

    #[test]
    fn sgr_params() {
        let table = [
            (Style::Header, "1"),
            (Style::Magenta, "1;35"),
            (Style::MagentaFaint, "1;2;35"),
            (Style::Cyan, "36"),
            (Style::CyanBold, "1;36"),
            (Style::Green, "32"),
            (Style::GreenBold, "1;32"),
            (Style::Red, "1;31"),
            (Style::Yellow, "33"),
            (Style::YellowFaint, "2;33"),
            (Style::Dim, "2"),
            (Style::DimBold, "1;2"),
        ];
        for (style, sgr) in table {
            assert_eq!(style.sgr(), sgr, "{style:?}");
        }
    }

    #[test]
    fn paint_with_and_without_colour() {
        let mut s = String::new();
        Painter::new(true).paint(&mut s, Style::Red, "boom");
        assert_eq!(s, "\x1b[1;31mboom\x1b[0m");
        let mut s = String::new();
        Painter::new(false).paint(&mut s, Style::Red, "boom");
        assert_eq!(s, "boom");
        let mut s = String::new();
        Painter::new(true).paint(&mut s, Style::Red, "");
        assert_eq!(s, "");
    }

    #[test]
    fn paint_with_styles_what_is_written_as_paint_does() {
        for color in [true, false] {
            for text in ["boom", ""] {
                let (mut by_text, mut written) = (String::from(">"), String::from(">"));
                Painter::new(color).paint(&mut by_text, Style::Red, text);
                Painter::new(color).paint_with(&mut written, Style::Red, |o| o.push_str(text));
                assert_eq!(written, by_text, "color {color}, {text:?}");
            }
        }
    }

    #[test]
    fn paint_block_styles_each_line_and_indents_continuations() {
        let mut s = String::new();
        Painter::new(true).paint_block(&mut s, Style::Dim, "a\r\nb\n\nc\n", 3);
        assert_eq!(
            s,
            "\x1b[2ma\x1b[0m\n   \x1b[2mb\x1b[0m\n\n   \x1b[2mc\x1b[0m"
        );
        let mut s = String::new();
        Painter::new(false).paint_block(&mut s, Style::Dim, "a\nb", 2);
        assert_eq!(s, "a\n  b");
    }
}
