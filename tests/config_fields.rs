//! Every field of every config type is read by the engine (outside `src/config/`), or is
//! marked as having no effect (and then is read nowhere, and validation warns when it is
//! set), or belongs to a type Segno refuses to compute with. A field that is parsed and
//! then ignored fails this test.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The engine's sources outside `src/config/`, without comments and `#[cfg(test)]` items.
fn engine_sources() -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .filter(|p| !p.starts_with(src.join("config")))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = common::production_code(&p, &text);
            let code: String = code
                .lines()
                .map(|l| match l.find("//") {
                    Some(i) => &l[..i],
                    None => l,
                })
                .collect::<Vec<_>>()
                .join("\n");
            (p, code)
        })
        .collect()
}

/// Whether `code` reads `.field` (a field access, not a method call or an assignment).
fn reads(code: &str, field: &str) -> bool {
    let pattern = format!(".{field}");
    let mut from = 0;
    while let Some(i) = code[from..].find(&pattern) {
        let at = from + i;
        let after = &code[at + pattern.len()..];
        let boundary = !after
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let rest = after.trim_start();
        let call = rest.starts_with('(');
        let assignment = rest.starts_with('=') && !rest.starts_with("==");
        if boundary && !call && !assignment {
            return true;
        }
        from = at + pattern.len();
    }
    false
}

#[test]
fn every_config_field_is_read_or_marked_as_having_no_effect() {
    let sources = engine_sources();
    let mut unread = Vec::new();
    let mut marked_but_read = Vec::new();
    let mut fields = 0;
    for group in segno::config::catalogue() {
        for t in group.types {
            if let Some(why) = t.refused {
                assert!(!why.trim().is_empty(), "{}: empty refusal", t.tag);
                continue;
            }
            // Files that use this type (by its name or its family variant).
            let files: Vec<&String> = sources
                .values()
                .filter(|code| {
                    code.contains(t.rust_name)
                        || (!t.variant.is_empty() && code.contains(t.variant))
                })
                .collect();
            for f in t.fields {
                fields += 1;
                // A family's `name` is read through its `name()` accessor.
                if f.name == "name" && !t.variant.is_empty() {
                    continue;
                }
                let read = files.iter().any(|code| reads(code, f.name));
                match (f.no_effect, read) {
                    (None, false) => unread.push(format!("{}.{}", t.tag, f.key)),
                    (Some(_), true) => marked_but_read.push(format!("{}.{}", t.tag, f.key)),
                    _ => {}
                }
            }
        }
    }
    assert!(fields > 150, "only {fields} fields walked");
    assert!(
        unread.is_empty(),
        "fields parsed but read nowhere outside src/config (implement them, refuse them, or mark them no_effect): {unread:?}"
    );
    assert!(
        marked_but_read.is_empty(),
        "fields marked no_effect that the engine reads: {marked_but_read:?}"
    );
}

#[test]
fn the_field_scan_sees_reads_and_not_calls_or_assignments() {
    assert!(reads(
        "let m = trainer.min_masked.unwrap_or(0.0);",
        "min_masked"
    ));
    assert!(!reads("self.min_masked_value", "min_masked"));
    assert!(!reads("x.mode()", "mode"));
    assert!(!reads("x.mode = 3;", "mode"));
    assert!(reads("if x.mode == 3 {}", "mode"));
}
