//! The dependency rules ARCHITECTURE.md states, checked on the source: the engine never
//! imports the app or the viewer, the app never reaches into training or libtorch, and the
//! run directory's file names are spelled only in `store::layout`.

mod common;

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file under `src/` (relative path with `/`), without its unit-test module.
fn production_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let code = common::production_code(&f, &text).to_string();
            let rel = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, code)
        })
        .collect()
}

/// Lines of `code` (1-based numbers) that mention one of `words` outside comments.
fn mentions(code: &str, words: &[&str]) -> Vec<(usize, String)> {
    code.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter(|(_, l)| {
            words.iter().any(|w| {
                l.match_indices(w).any(|(i, _)| {
                    let before = l[..i].chars().next_back();
                    let after = l[i + w.len()..].chars().next();
                    let ident =
                        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !ident(before) && !ident(after)
                })
            })
        })
        .map(|(n, l)| (n + 1, l.trim().to_string()))
        .collect()
}

fn check(rule: &str, files: impl Iterator<Item = (String, String)>, words: &[&str]) {
    let mut found = Vec::new();
    for (file, code) in files {
        for (line, text) in mentions(&code, words) {
            found.push(format!("src/{file}:{line}: {text}"));
        }
    }
    assert!(found.is_empty(), "{rule}:\n{}", found.join("\n"));
}

fn front_end(file: &str) -> bool {
    file.starts_with("gui/") || file.starts_with("render/") || file.starts_with("cli")
}

#[test]
fn the_engine_never_imports_the_app_the_viewer_or_a_gui_crate() {
    check(
        "engine modules must not depend on the GUI or the viewer",
        production_sources()
            .into_iter()
            .filter(|(f, _)| !front_end(f) && f != "main.rs" && f != "lib.rs"),
        &[
            "crate::gui",
            "crate::render",
            "crate::cli",
            "egui",
            "eframe",
            "wgpu",
        ],
    );
}

#[test]
fn the_viewer_engine_never_imports_the_app() {
    check(
        "render must not depend on gui or cli",
        production_sources()
            .into_iter()
            .filter(|(f, _)| f.starts_with("render/")),
        &["crate::gui", "crate::cli"],
    );
}

#[test]
fn the_app_never_reaches_into_training_or_libtorch() {
    check(
        "gui goes through ops, store and device, not train or tch",
        production_sources()
            .into_iter()
            .filter(|(f, _)| f.starts_with("gui/")),
        &["crate::train", "tch", "crate::cli"],
    );
}

#[test]
fn run_directory_file_names_are_spelled_only_in_the_store() {
    let literals = [
        "join(\"checkpoints",
        "\"checkpoints/",
        ".safetensors\"",
        "\"validation.zarr",
        "\"snapshot.zarr",
        "\"targets.zarr",
        "\"train.lock",
        "\"train.log",
        "\"train.status.json",
        "\"cluster.json",
        "\"run.json",
        "\"stats/",
    ];
    let mut found = Vec::new();
    for (file, code) in production_sources() {
        if file.starts_with("store/") {
            continue;
        }
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if literals.iter().any(|l| line.contains(l)) {
                found.push(format!("src/{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "run-directory paths belong to store::layout::RunDir:\n{}",
        found.join("\n")
    );
}

#[test]
fn array_storage_modules_depend_one_way() {
    // write → zarr → shard → data: the storage readers never reach back up.
    for (file, words) in [
        (
            "array/data.rs",
            &["super::shard", "super::zarr", "super::write", "super::n5"][..],
        ),
        (
            "array/shard.rs",
            &["super::zarr", "super::write", "super::n5"][..],
        ),
        (
            "array/zarr.rs",
            &["super::write", "crate::array::write"][..],
        ),
    ] {
        check(
            &format!("{file} must not import the layers above it"),
            production_sources().into_iter().filter(|(f, _)| f == file),
            words,
        );
    }
}

#[test]
fn the_command_line_leaves_using_a_run_to_ops() {
    check(
        "cli files for using runs only parse, call ops and print",
        production_sources().into_iter().filter(|(f, _)| {
            [
                "cli/predict.rs",
                "cli/demo.rs",
                "cli/render.rs",
                "cli/data.rs",
                "cli/train.rs",
                "cli/config.rs",
            ]
            .contains(&f.as_str())
        }),
        &[
            "crate::train",
            "crate::task",
            "RunDir",
            "tch",
            "crate::store::scores",
            "crate::datasplit::generate",
            "crate::store::config_files",
        ],
    );
}
