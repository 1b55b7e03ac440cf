//! Differential test: a corpus of templates rendered by this crate and by
//! `gtmpl`, an independent Rust port of Go's `text/template`, over the same
//! data. Where both are meant to follow Go, their outputs must be equal.
//! Where `gtmpl` is known to depart from Go, the case says why and checks
//! our output against what Go prints (Go itself is not installed here).
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

fn data() -> Value {
    json!({
        "Hostname": "web-01",
        "Vars": {"port": 8080, "env": "prod", "debug": false, "ratio": 0.25, "empty": ""},
        "Facts": {
            "interfaces": ["eth0", "eth1"],
            "labels": {"role": "web", "tier": "front"},
            "cpus": 4,
        },
        "Servers": [
            {"name": "a", "port": 80},
            {"name": "b", "port": 443},
        ],
        "Nothing": null,
    })
}

/// serde_json → gtmpl's value (objects as Go maps, like ours).
fn to_gtmpl(v: &Value) -> gtmpl_value::Value {
    match v {
        Value::Null => gtmpl_value::Value::Nil,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.into(),
            (None, Some(u), _) => u.into(),
            (_, _, Some(f)) => f.into(),
            _ => gtmpl_value::Value::Nil,
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => gtmpl_value::Value::Array(items.iter().map(to_gtmpl).collect()),
        Value::Object(map) => gtmpl_value::Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), to_gtmpl(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// `gtmpl`'s output, or `None` if it fails or does not finish in time (it
/// can loop on some malformed input).
fn gtmpl_render(source: &str, data: &Value) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    let (source, data) = (source.to_string(), to_gtmpl(data));
    std::thread::spawn(move || {
        let mut t = gtmpl::Template::default();
        let out = t
            .parse(&source)
            .ok()
            .and_then(|()| t.render(&gtmpl::Context::from(data)).ok());
        let _ = tx.send(out);
    });
    rx.recv_timeout(Duration::from_secs(5)).ok().flatten()
}

/// Templates on which both implementations follow Go.
const AGREED: &[&str] = &[
    "plain text, no actions",
    "{{.Hostname}}",
    "{{.Vars.missing}}",
    "host={{.Hostname}} port={{.Vars.port}} env={{.Vars.env}}",
    "{{/* a comment */}}after",
    "a {{- .Hostname -}} b",
    "a  {{- .Hostname}}  b",
    "{{if .Vars.debug}}debug{{else}}quiet{{end}}",
    "{{if .Vars.empty}}set{{else if .Vars.env}}env:{{.Vars.env}}{{end}}",
    "{{if not .Vars.debug}}off{{end}}",
    "{{if and .Vars.env .Hostname}}both{{end}}",
    "{{if or .Vars.debug .Vars.env}}either{{end}}",
    "{{range .Facts.interfaces}}[{{.}}]{{end}}",
    "{{range $i, $n := .Facts.interfaces}}{{$i}}={{$n}};{{end}}",
    "{{range .Servers}}{{.name}}:{{.port}} {{end}}",
    "{{with .Facts.labels}}{{.role}}/{{.tier}}{{end}}",
    "{{with .Vars.empty}}x{{else}}empty{{end}}",
    "{{$h := .Hostname}}{{$h}}-{{$h}}",
    "{{len .Facts.interfaces}} {{len .Hostname}}",
    "{{index .Facts.interfaces 1}}",
    "{{index .Facts.labels \"role\"}}",
    "{{printf \"%s:%d\" .Hostname .Vars.port}}",
    "{{print \"a\" \"b\"}} {{print 1 2}}",
    "{{println \"x\"}}",
    "{{eq .Vars.env \"prod\"}} {{ne .Vars.env \"prod\"}}",
    "{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 3 2}}",
    "{{eq .Vars.port 8080}}",
    "{{define \"t\"}}[{{.}}]{{end}}{{template \"t\" .Hostname}}",
    "{{range .Servers}}{{if eq .name \"b\"}}{{.port}}{{end}}{{end}}",
];

#[test]
fn both_implementations_agree_on_the_corpus() {
    let data = data();
    let mut compared = 0;
    let mut disagreements = Vec::new();
    for &source in AGREED {
        let ours =
            osapi_gotemplate::render(source, &data).unwrap_or_else(|e| panic!("{source:?}: {e}"));
        match gtmpl_render(source, &data) {
            Some(theirs) => {
                compared += 1;
                if ours != theirs {
                    disagreements.push(format!("{source:?}: ours {ours:?}, gtmpl {theirs:?}"));
                }
            }
            None => disagreements.push(format!("{source:?}: gtmpl failed (ours {ours:?})")),
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} differ:\n{}",
        disagreements.len(),
        AGREED.len(),
        disagreements.join("\n")
    );
    assert_eq!(compared, AGREED.len());
}

/// Where `gtmpl` departs from Go: our output is Go's (as Go's documentation
/// and `fmt` specify it); `gtmpl`'s differs or fails.
#[test]
fn where_gtmpl_departs_from_go_we_follow_go() {
    let data = data();
    let cases: &[(&str, &str, &str)] = &[
        // Ranging over a missing (nil) value is no error: the else branch runs.
        (
            "{{range .Vars.missing}}x{{else}}none{{end}}",
            "none",
            "range over nil",
        ),
        // fmt: width pads on the left unless `-`; `0` pads with zeros; %q quotes.
        (
            "{{printf \"%5s|%-5s|\" \"ab\" \"cd\"}}",
            "   ab|cd   |",
            "width",
        ),
        (
            "{{printf \"%03d %x %X %o\" 7 255 255 8}}",
            "007 ff FF 10",
            "zero padding",
        ),
        ("{{.Hostname | printf \"%q\"}}", "\"web-01\"", "%q"),
        // html/urlquery/js escape as Go's HTMLEscapeString, QueryEscape and
        // JSEscapeString do.
        (
            "{{html \"<a href='x'>\"}}",
            "&lt;a href=&#39;x&#39;&gt;",
            "html",
        ),
        ("{{urlquery \"a b&c\"}}", "a+b%26c", "urlquery"),
        ("{{js \"it's\"}}", "it\\'s", "js"),
        // Go formats maps sorted by key with %v.
        (
            "{{.Facts.labels}}",
            "map[role:web tier:front]",
            "map printing",
        ),
        // `else with` chains (Go 1.23).
        (
            "{{with .Vars.empty}}a{{else with .Vars.env}}{{.}}{{end}}",
            "prod",
            "else with",
        ),
    ];
    for (source, go, what) in cases {
        let ours = osapi_gotemplate::render(source, &data).unwrap();
        assert_eq!(&ours, go, "{what}: {source}");
        let theirs = gtmpl_render(source, &data);
        assert_ne!(
            theirs.as_deref(),
            Some(*go),
            "{what}: gtmpl now matches Go; move {source:?} to the agreed corpus"
        );
    }
}
