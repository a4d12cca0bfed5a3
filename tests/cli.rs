//! The `segno config` commands: output, round trips through a project, and exit codes.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

/// `segno config …`, run from `cwd` (so a missing `--project` would use it).
fn segno(cwd: &Path) -> Command {
    let mut cmd = Command::cargo_bin("segno").unwrap();
    cmd.current_dir(cwd).arg("config");
    cmd
}

fn examples() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/assets/examples/configs")
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_lists_the_commands() {
    let out = Command::cargo_bin("segno")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("config"), "{text}");
    assert!(text.contains("info"), "{text}");
}

#[test]
fn import_list_show_export_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_str().unwrap();

    let report: Value = serde_json::from_str(&stdout_of(segno(dir.path()).args([
        "import",
        examples(),
        "--project",
        p,
        "--json",
    ])))
    .unwrap();
    let report = report.as_array().unwrap();
    assert_eq!(report.len(), 8);
    assert!(
        report
            .iter()
            .all(|r| r["ok"] == true && r["outcome"] == "stored"),
        "{report:?}"
    );

    // Importing again changes nothing.
    let again = stdout_of(segno(dir.path()).args(["import", examples(), "--project", p]));
    assert_eq!(
        again.matches("already stored (identical)").count(),
        8,
        "{again}"
    );
    assert!(again.ends_with("8 ok, 0 with errors\n"), "{again}");

    let listing: Value = serde_json::from_str(&stdout_of(segno(dir.path()).args([
        "list",
        "--project",
        p,
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        listing["runs"],
        serde_json::json!(["example_run_bench_132_f1"])
    );
    assert_eq!(
        listing["architectures"],
        serde_json::json!(["example_unet_bench_132", "example_unet_spec_132"])
    );
    assert_eq!(listing["arrays"].as_array().unwrap().len(), 2);

    let shown = stdout_of(segno(dir.path()).args([
        "show",
        "tasks",
        "example_distance_task",
        "--project",
        p,
    ]));
    assert!(
        shown.starts_with("__type__: DistanceTaskConfig\n"),
        "{shown}"
    );
    assert!(shown.contains("scale_factor: 160.0\n"), "{shown}");

    // Export, then import the export into a second project: identical configs.
    // Exported under the config's own name, as a project stores it.
    let out = dir.path().join("example_run_bench_132_f1.yaml");
    stdout_of(segno(dir.path()).args([
        "export",
        "runs",
        "example_run_bench_132_f1",
        "-o",
        out.to_str().unwrap(),
        "--project",
        p,
    ]));
    let stored = std::fs::read_to_string(
        dir.path()
            .join("configs/runs/example_run_bench_132_f1.yaml"),
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), stored);
    let second = tempfile::tempdir().unwrap();
    let imported = stdout_of(segno(second.path()).args([
        "import",
        out.to_str().unwrap(),
        "--project",
        second.path().to_str().unwrap(),
    ]));
    assert!(
        imported.contains("(run \"example_run_bench_132_f1\"): stored"),
        "{imported}"
    );
    assert_eq!(
        std::fs::read_to_string(
            second
                .path()
                .join("configs/runs/example_run_bench_132_f1.yaml")
        )
        .unwrap(),
        stored
    );

    // Exporting over an existing file needs --force.
    let status = segno(dir.path())
        .args([
            "export",
            "runs",
            "example_run_bench_132_f1",
            "-o",
            out.to_str().unwrap(),
            "--project",
            p,
        ])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(4));

    // Validating the stored project finds nothing wrong.
    let valid = stdout_of(segno(dir.path()).args(["validate", "--project", p]));
    assert!(valid.ends_with("8 ok, 0 with errors\n"), "{valid}");
}

#[test]
fn exit_codes_tell_failures_apart() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_str().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "__type__: DistanceTaskConfig\nname: d\nchannels: [mito]\nclip_distance: -4\ntol_distance: 40\ncolour: red\n",
    )
    .unwrap();

    // Invalid file: 1, with the file and both fields named.
    let out = segno(dir.path())
        .args(["validate", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("bad.yaml"), "{text}");
    assert!(
        text.contains("colour: unknown key `colour` for DistanceTaskConfig"),
        "{text}"
    );

    let fixed = dir.path().join("fixed.yaml");
    std::fs::write(
        &fixed,
        "__type__: DistanceTaskConfig\nname: d\nchannels: [mito]\nclip_distance: -4\ntol_distance: 40\n",
    )
    .unwrap();
    let out = segno(dir.path())
        .args(["validate", fixed.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["ok"], false);
    assert!(report[0]["error"]
        .as_str()
        .unwrap()
        .contains("clip_distance: must be a positive number, got -4"));

    // Missing config: 3.
    let out = segno(dir.path())
        .args(["show", "tasks", "nothing", "--project", p])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no task named \"nothing\""));

    // Conflict: 4, and the stored file is unchanged.
    let good = dir.path().join("d.yaml");
    std::fs::write(&good, "__type__: DistanceTaskConfig\nname: d\nchannels: [mito]\nclip_distance: 4\ntol_distance: 40\n").unwrap();
    stdout_of(segno(dir.path()).args(["import", good.to_str().unwrap(), "--project", p]));
    let stored = std::fs::read(dir.path().join("configs/tasks/d.yaml")).unwrap();
    std::fs::write(&good, "__type__: DistanceTaskConfig\nname: d\nchannels: [mito]\nclip_distance: 8\ntol_distance: 40\n").unwrap();
    let out = segno(dir.path())
        .args(["import", good.to_str().unwrap(), "--project", p])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("differs at: clip_distance"));
    assert_eq!(
        std::fs::read(dir.path().join("configs/tasks/d.yaml")).unwrap(),
        stored
    );

    // Unknown family: 2.
    let out = segno(dir.path())
        .args(["list", "widgets", "--project", p])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn describe_explains_types_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let all = stdout_of(segno(dir.path()).args(["describe"]));
    assert!(all.contains("augments — "), "{all}");
    assert!(all.contains("  ElasticAugmentConfig"), "{all}");

    let unet = stdout_of(segno(dir.path()).args(["describe", "cnnectomeunetconfig"]));
    assert!(
        unet.starts_with("CNNectomeUNetConfig (architectures)\n"),
        "{unet}"
    );
    assert!(
        unet.contains("input_shape (also _input_shape): a coordinate"),
        "{unet}"
    );
    assert!(
        unet.contains("constant_upsample: true or false — default true"),
        "{unet}"
    );

    let json: Value = serde_json::from_str(&stdout_of(segno(dir.path()).args([
        "describe",
        "GunpowderTrainerConfig",
        "--json",
    ])))
    .unwrap();
    let fields = json["fields"].as_array().unwrap();
    let fetchers = fields
        .iter()
        .find(|f| f["key"] == "num_data_fetchers")
        .unwrap();
    assert_eq!(fetchers["default"], 5);
    assert_eq!(fetchers["required"], false);
    let name = fields.iter().find(|f| f["key"] == "name").unwrap();
    assert_eq!(name["required"], true);

    let out = segno(dir.path())
        .args(["describe", "DistanceTask"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean DistanceTaskConfig?"));
}

#[test]
fn the_project_defaults_to_the_dacapo_options_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dacapo.yaml"),
        "type: files\nruns_base_dir: runs\ncompute_context:\n  type: LocalTorch\n  config: {device: cpu}\n",
    )
    .unwrap();
    let task = dir.path().join("t.yaml");
    std::fs::write(
        &task,
        "{__type__: DistanceTaskConfig, name: t, channels: [a], clip_distance: 1, tol_distance: 1}",
    )
    .unwrap();
    let mut cmd = Command::cargo_bin("segno").unwrap();
    cmd.current_dir(dir.path())
        .env_remove("DACAPO_OPTIONS_FILE");
    let out = cmd.args(["config", "import", "t.yaml"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("runs/configs/tasks/t.yaml").is_file());

    // The options file itself validates.
    let out = segno(dir.path())
        .args(["validate", "dacapo.yaml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("dacapo.yaml: valid options file"));
}
