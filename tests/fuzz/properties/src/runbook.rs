//! `backout-runbook`: the runbook parser, `${…}` templates and the lockfile.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use backout_runbook::diagnostic::{Location, SourceFile};
use backout_runbook::lockfile::Lockfile;
use backout_runbook::runbook::{self, Parsed};
use backout_runbook::template::{Segment, Template};

/// `runbook::parse` never panics; its error always has a location inside
/// the text; a parsed runbook's spans all lie inside the text, on character
/// boundaries; every string that `resolve` reads as a template (`with`
/// values, directory grants) parses without panicking.
pub fn runbook(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match runbook::parse(SourceFile::new("fuzz.toml", text.as_ref())) {
        Err(diagnostic) => {
            let location = diagnostic.location.as_ref().unwrap_or_else(|| panic!("no location for `{diagnostic}`"));
            assert_inside(&text, location);
        }
        Ok(parsed) => {
            for span in spans(&parsed) {
                assert!(
                    span.start <= span.end
                        && span.end <= text.len()
                        && text.is_char_boundary(span.start)
                        && text.is_char_boundary(span.end),
                    "span {span:?} is not inside the {} bytes of text",
                    text.len()
                );
                assert_inside(&text, &parsed.locate(&span));
            }
            for step in &parsed.runbook.steps {
                if let Some(with) = &step.with {
                    with.get_ref().values().for_each(parse_templates);
                }
                for dir in step.grants.iter().flat_map(|g| &g.get_ref().dirs) {
                    let _ = Template::parse(dir.get_ref().host.get_ref());
                }
            }
        }
    }
}

/// A location names a line of the text and a column within it (or just
/// after its last character).
fn assert_inside(text: &str, location: &Location) {
    let line = (location.line >= 1).then(|| text.split('\n').nth(location.line - 1)).flatten();
    let line = line.unwrap_or_else(|| panic!("{location}: no such line in the text"));
    assert!(
        location.column >= 1 && location.column <= line.chars().count() + 1,
        "{location}: no such column in line `{line}`"
    );
}

/// Every span a parsed runbook keeps.
fn spans(parsed: &Parsed) -> Vec<Range<usize>> {
    let book = &parsed.runbook;
    let mut spans = vec![book.version.span(), book.name.span()];
    spans.extend(book.vars.values().map(|v| v.span()));
    spans.extend(book.on_failure.iter().map(|v| v.span()));
    for step in &book.steps {
        spans.extend([step.id.span(), step.uses.span()]);
        for value in [&step.sha256, &step.timeout, &step.memory, &step.max_received, &step.on_failure] {
            spans.extend(value.iter().map(|v| v.span()));
        }
        spans.extend(step.with.iter().map(|v| v.span()));
        spans.extend(step.critical.iter().chain(&step.always).map(|v| v.span()));
        if let Some(retries) = &step.retries {
            let r = retries.get_ref();
            spans.extend([retries.span(), r.attempts.span()]);
            spans.extend(r.interval.iter().map(|v| v.span()));
            spans.extend(r.backoff.iter().map(|v| v.span()));
        }
        if let Some(grants) = &step.grants {
            let g = grants.get_ref();
            spans.push(grants.span());
            spans.extend(g.env.iter().chain(&g.net).map(|v| v.span()));
            for dir in &g.dirs {
                let d = dir.get_ref();
                spans.extend([dir.span(), d.host.span(), d.guest.span()]);
                spans.extend(d.mode.iter().map(|v| v.span()));
            }
        }
    }
    spans
}

fn parse_templates(value: &toml::Value) {
    match value {
        toml::Value::String(s) => {
            let _ = Template::parse(s);
        }
        toml::Value::Array(items) => items.iter().for_each(parse_templates),
        toml::Value::Table(table) => table.values().for_each(parse_templates),
        _ => {}
    }
}

/// `Template::parse` never panics. Text without `{` holds no reference:
/// it parses, and renders as written with `$$` as `$` (so text without `$`
/// renders as itself). Any parsed template, written back with its literal
/// `$` escaped, parses to the same segments.
pub fn template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = Template::parse(&text);
    if !text.contains('{') {
        let template = parsed.as_ref().unwrap_or_else(|e| panic!("text without `{{` refused: {e}"));
        assert_eq!(template.references().count(), 0, "references in text without `{{`");
        let rendered = template.render(&BTreeMap::new(), &BTreeMap::new()).expect("literal text renders");
        assert_eq!(rendered, unescape_dollars(&text));
    }
    if let Ok(template) = parsed {
        let written: String = template
            .0
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => text.replace('$', "$$"),
                Segment::Var { raw, .. }
                | Segment::StepOutput { raw, .. }
                | Segment::Run { raw, .. }
                | Segment::Plugin { raw, .. } => raw.clone(),
            })
            .collect();
        assert_eq!(Template::parse(&written).as_ref(), Ok(&template), "written back as `{written}`");
    }
}

/// `$$` as `$`, left to right; a lone `$` stays.
fn unescape_dollars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && chars.peek() == Some(&'$') {
            chars.next();
        }
    }
    out
}

/// `Lockfile::parse` never panics; a parsed lock renders as `backout lock`
/// writes it, and that text parses to the same lock and renders the same.
pub fn lockfile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("fuzz.toml.lock");
    let Ok(lock) = Lockfile::parse(&text, path) else { return };
    let written = lock.render(path).unwrap_or_else(|e| panic!("a parsed lock does not render: {e}"));
    let again = Lockfile::parse(&written, path).unwrap_or_else(|e| panic!("`{written}` does not parse: {e}"));
    assert_eq!(again, lock, "written as `{written}`");
    assert_eq!(again.render(path).unwrap(), written);
}
