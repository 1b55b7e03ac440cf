//! Text formatting that has to match Go's: duration strings (osapi-api's
//! `go_duration`, rounded here as upstream's renderer does), `%q` quoting,
//! `%-*s` padding by rune count, and upstream's `formatValue` for verbose
//! result data.

use std::fmt::Write as _;

use serde_json::Value;

pub(crate) use osapi_api::format::go_duration;

/// Go's `%q` of a string (`strconv.Quote`): double-quoted, with `\"`, `\\`,
/// `\a`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v`, `\xNN` for other ASCII
/// controls, `\uNNNN` / `\UNNNNNNNN` for other non-printable characters;
/// printable non-ASCII characters are kept as they are.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` without Unicode tables:
/// the ASCII space is printable; control characters, other spaces and
/// separators, common format characters, private-use characters and
/// noncharacters are not. (Unassigned code points, which Go escapes, are
/// kept.)
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_char = matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    );
    let private_use = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF);
    let noncharacter = matches!(u, 0xFDD0..=0xFDEF) || u & 0xFFFE == 0xFFFE;
    !(format_char || private_use || noncharacter)
}

/// Appends `s` left-aligned in `width` characters, like Go's `%-*s`:
/// pads with spaces by Unicode scalar count (not bytes, not display
/// width); longer text is not truncated.
pub fn push_padded(out: &mut String, s: &str, width: usize) {
    out.push_str(s);
    push_spaces(out, width.saturating_sub(s.chars().count()));
}

/// Appends `n` spaces.
pub fn push_spaces(out: &mut String, mut n: usize) {
    const SPACES: &str = "                                                                ";
    while n > 0 {
        let k = n.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// Upstream's `formatValue` for one verbose data value:
///
/// * string → trimmed of surrounding whitespace;
/// * number → integer text when it is whole (`42`), else two decimals
///   (`3.14`);
/// * bool → `true` / `false`;
/// * array → `[<n> items]`;
/// * object → space-joined `k=v` pairs with keys sorted; a string value is
///   written as is, any other value as compact JSON (keys sorted);
/// * null → empty (so the entry is omitted, like empty strings).
pub fn format_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 {
                    // Whole and within i64: the cast is exact.
                    (f as i64).to_string()
                } else {
                    format!("{f:.2}")
                }
            }
        }
        Value::String(s) => s.trim().to_string(),
        Value::Array(a) => format!("[{} items]", a.len()),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = String::new();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push('=');
                match &m[k] {
                    Value::String(s) => out.push_str(s),
                    other => compact_json(&mut out, other),
                }
            }
            out
        }
    }
}

/// Appends `v` as compact JSON with object keys sorted (independent of
/// whether `serde_json` preserves insertion order).
fn compact_json(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(k.clone()));
                out.push(':');
                compact_json(out, &m[k]);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                compact_json(out, item);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

/// The verbose data lines of a result: `(key, formatted value)` pairs with
/// keys sorted, `changed` and `duration_ms` left out, and entries whose
/// formatted value is empty omitted. Non-object data (other than null)
/// yields a single `data` entry.
pub fn data_entries(data: &Value) -> Vec<(String, String)> {
    match data {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m
                .keys()
                .filter(|k| k.as_str() != "changed" && k.as_str() != "duration_ms")
                .collect();
            keys.sort();
            keys.into_iter()
                .filter_map(|k| {
                    let v = format_value(&m[k]);
                    (!v.is_empty()).then(|| (k.clone(), v))
                })
                .collect()
        }
        other => {
            let v = format_value(other);
            if v.is_empty() {
                Vec::new()
            } else {
                vec![("data".to_string(), v)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    /// Rounds to the nearest millisecond, halves away from zero (Go's
    /// `Duration.Round(time.Millisecond)`), to check durations as upstream's
    /// renderer shows them.
    fn round_to_millis(d: Duration) -> Duration {
        let nanos = d.as_nanos();
        let ms = nanos / 1_000_000 + u128::from(nanos % 1_000_000 >= 500_000);
        let ms = u64::try_from(ms).unwrap_or(u64::MAX);
        Duration::from_millis(ms)
    }

    #[test]
    fn duration_table() {
        let ns = Duration::from_nanos;
        let ms = Duration::from_millis;
        let rounded = [
            (ns(942_191_541), "942ms"),
            (ns(1_035_578_833), "1.036s"),
            (ms(230), "230ms"),
            (ms(12), "12ms"),
            (ns(0), "0s"),
            (ns(499_999), "0s"),
            (ns(500_000), "1ms"),
            (ns(1_499_999), "1ms"),
            (ns(1_500_000), "2ms"),
            (ms(1000), "1s"),
            (ms(62_500), "1m2.5s"),
            (ms(7_200_000), "2h0m0s"),
            (ms(3_723_004), "1h2m3.004s"),
            (ms(60_000), "1m0s"),
        ];
        for (d, want) in rounded {
            assert_eq!(go_duration(round_to_millis(d)), want, "{d:?}");
        }
    }

    #[test]
    fn duration_unrounded() {
        let ns = Duration::from_nanos;
        let table = [
            (ns(507_812_345), "507.812345ms"),
            (ns(1_500), "1.5µs"),
            (ns(999), "999ns"),
            (ns(1), "1ns"),
            (ns(1_000), "1µs"),
            (ns(1_230_000), "1.23ms"),
            (ns(1_000_000_001), "1.000000001s"),
            (ns(90 * 60 * 1_000_000_000), "1h30m0s"),
        ];
        for (d, want) in table {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn quote_table() {
        let table = [
            ("", r#""""#),
            ("no dependencies changed", r#""no dependencies changed""#),
            (
                r#"when-fact: step "list-agents" not found"#,
                r#""when-fact: step \"list-agents\" not found""#,
            ),
            ("a\\b", r#""a\\b""#),
            ("l1\nl2\tx\r", r#""l1\nl2\tx\r""#),
            ("\u{7}\u{8}\u{c}\u{b}", r#""\a\b\f\v""#),
            ("\u{1b}[0m\u{0}\u{7f}", r#""\x1b[0m\x00\x7f""#),
            ("héllo wörld ✓ 日本", "\"héllo wörld ✓ 日本\""),
            (
                "nb\u{a0}sp \u{200b} \u{85}",
                r#""nb\u00a0sp \u200b \u0085""#,
            ),
            ("\u{feff}\u{e000}", r#""\ufeff\ue000""#),
            ("\u{f0000}", r#""\U000f0000""#),
            ("😀", "\"😀\""),
        ];
        for (input, want) in table {
            assert_eq!(go_quote(input), want, "{input:?}");
        }
    }

    #[test]
    fn pad_by_runes() {
        let padded = |s: &str, width: usize| {
            let mut out = String::from(">");
            push_padded(&mut out, s, width);
            out
        };
        assert_eq!(padded("abc", 5), ">abc  ");
        assert_eq!(padded("déjà", 6), ">déjà  ");
        // Four runes in five bytes: padded by runes, not bytes.
        assert_eq!(padded("déjà", 5), ">déjà ");
        assert_eq!(padded("toolong", 3), ">toolong");
        assert_eq!(padded("", 2), ">  ");
    }

    #[test]
    fn spaces_past_one_chunk() {
        for n in [0, 1, 63, 64, 65, 200] {
            let mut out = String::new();
            push_spaces(&mut out, n);
            assert_eq!(out, " ".repeat(n));
        }
    }

    #[test]
    fn format_value_table() {
        let table = [
            (json!("  hello world \n"), "hello world"),
            (json!(""), ""),
            (json!("   "), ""),
            (json!(42.0), "42"),
            (json!(42), "42"),
            (json!(-7), "-7"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(1.23456), "1.23"),
            (json!(0.125), "0.12"),
            (json!(2.5e20), "250000000000000000000.00"),
            (json!(-0.0), "0"),
            (json!(true), "true"),
            (json!(false), "false"),
            (json!(["a", "b", "c"]), "[3 items]"),
            (json!([]), "[0 items]"),
            (json!({"env": "prod"}), "env=prod"),
            (
                json!({"zone": "a", "env": "prod", "n": 3, "ok": true, "x": null}),
                "env=prod n=3 ok=true x=null zone=a",
            ),
            (
                json!({"nested": {"b": 1, "a": [1, "x"]}, "list": [1, 2]}),
                r#"list=[1,2] nested={"a":[1,"x"],"b":1}"#,
            ),
            (json!({}), ""),
            (json!(null), ""),
        ];
        for (v, want) in table {
            assert_eq!(format_value(&v), want, "{v}");
        }
    }

    #[test]
    fn data_entries_sorted_filtered() {
        let data = json!({
            "stdout": "out\n",
            "stderr": "err",
            "exit_code": 0,
            "changed": true,
            "duration_ms": 42,
            "empty": "",
            "none": null,
            "items": [1, 2, 3],
            "labels": {"env": "prod"},
        });
        let got = data_entries(&data);
        let want = [
            ("exit_code", "0"),
            ("items", "[3 items]"),
            ("labels", "env=prod"),
            ("stderr", "err"),
            ("stdout", "out"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        assert!(data_entries(&json!(null)).is_empty());
        assert_eq!(
            data_entries(&json!("text")),
            vec![("data".to_string(), "text".to_string())]
        );
    }
}
