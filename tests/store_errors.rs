//! The project store and config reader refuse bad input with errors that name the file
//! and the field, and never change what is already stored.

use std::path::{Path, PathBuf};

use segno::config::{AnyConfig, ConfigError, Family};
use segno::store::{Project, StoreError, StoreOutcome};

const TASK: &str = "__type__: DistanceTaskConfig\nname: dist\nchannels: [mito]\nclip_distance: 40.0\ntol_distance: 40.0\nscale_factor: 80.0\n";

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn project_with_task() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let project = Project::open(dir.path()).unwrap();
    let task = AnyConfig::from_text(None, TASK, "dist.yaml").unwrap();
    assert_eq!(
        project.configs().store(&task).unwrap(),
        StoreOutcome::Written
    );
    (dir, project)
}

#[test]
fn store_retrieve_list_delete() {
    let (dir, project) = project_with_task();
    let store = project.configs();
    let path = dir.path().join("configs/tasks/dist.yaml");
    assert!(path.is_file());
    let stored = store.retrieve(Family::Tasks, "dist").unwrap();
    assert_eq!(stored, AnyConfig::from_text(None, TASK, "x").unwrap());
    assert_eq!(store.names(Family::Tasks).unwrap(), vec!["dist"]);
    assert!(store.names(Family::Runs).unwrap().is_empty());

    // Identical re-store: a no-op that leaves the file untouched.
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let again = AnyConfig::from_text(None, TASK, "x").unwrap();
    assert_eq!(store.store(&again).unwrap(), StoreOutcome::Unchanged);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );

    store.delete(Family::Tasks, "dist").unwrap();
    assert!(!path.exists());
    assert!(matches!(
        store.retrieve(Family::Tasks, "dist"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn a_different_config_under_an_existing_name_is_refused() {
    let (dir, project) = project_with_task();
    let before = snapshot(dir.path());
    let changed = AnyConfig::from_text(None, &TASK.replace("80.0", "160.0"), "x").unwrap();
    let err = project.configs().store(&changed).unwrap_err();
    let StoreError::Duplicate { differences, .. } = &err else {
        panic!("expected a duplicate error, got {err}");
    };
    assert_eq!(differences, &vec!["scale_factor".to_string()]);
    assert!(err.to_string().contains("dist"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn not_found_suggests_a_close_name() {
    let (_dir, project) = project_with_task();
    let err = project
        .configs()
        .retrieve(Family::Tasks, "dits")
        .unwrap_err();
    assert!(err.to_string().contains("did you mean \"dist\""), "{err}");
}

#[test]
fn bad_names_are_refused() {
    let (dir, project) = project_with_task();
    let before = snapshot(dir.path());
    for bad in [
        "../escape",
        "a/b",
        "..",
        ".hidden",
        "",
        "a\\b",
        "tab\tname",
        "x:y",
        " padded",
    ] {
        let text = TASK.replace("name: dist", &format!("name: {bad:?}"));
        let config = AnyConfig::from_text(None, &text, "x").unwrap();
        let err = project.configs().store(&config).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::InvalidName { .. } | StoreError::InvalidConfig { .. }
            ),
            "{bad:?}: {err}"
        );
        assert!(
            matches!(
                project.configs().retrieve(Family::Tasks, bad),
                Err(StoreError::InvalidName { .. })
            ),
            "{bad:?} retrieved"
        );
    }
    let err = project
        .configs()
        .store(
            &AnyConfig::from_text(None, &TASK.replace("name: dist", "name: ../escape"), "x")
                .unwrap(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid task name \"../escape\": a name must not contain / or \\ (it is used as a file name)"
    );
    assert_eq!(snapshot(dir.path()), before);
    assert!(!dir.path().join("configs/escape.yaml").exists());
}

#[test]
fn malformed_yaml_names_the_file_and_position() {
    let err =
        AnyConfig::from_text(None, "name: [unclosed\nchannels: x", "tasks/bad.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }));
    let msg = err.to_string();
    assert!(msg.starts_with("tasks/bad.yaml: not valid YAML"), "{msg}");
    assert!(msg.contains("line"), "{msg}");
}

#[test]
fn wrong_types_are_reported_with_their_field_paths() {
    let text = "__type__: DistanceTaskConfig\nname: dist\nchannels: mito\nclip_distance: far\ntol_distance: 40\nmask_distances: 3\n";
    let err = AnyConfig::from_text(None, text, "dist.yaml").unwrap_err();
    let problems: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        vec![
            "channels: expected a list of strings, found the string \"mito\"",
            "clip_distance: expected a number, found the string \"far\"",
            "mask_distances: expected true or false, found the number 3",
        ]
    );
    assert!(
        err.to_string().starts_with("dist.yaml: 3 problem(s):"),
        "{err}"
    );
}

#[test]
fn unknown_type_tag_is_an_error_with_a_suggestion() {
    let text = "__type__: DistanceTaskConfg\nname: dist\n";
    let err = AnyConfig::from_text(Some(Family::Tasks), text, "dist.yaml").unwrap_err();
    let p = &err.problems()[0];
    assert_eq!(p.path, "__type__");
    assert!(
        p.message.starts_with(
            "unknown TaskConfig type `DistanceTaskConfg` (did you mean `DistanceTaskConfig`?)"
        ),
        "{}",
        p.message
    );
    // Without a family the reader still names the tag.
    let err = AnyConfig::from_text(None, text, "dist.yaml").unwrap_err();
    assert!(
        err.to_string()
            .contains("did you mean `DistanceTaskConfig`"),
        "{err}"
    );

    // A nested unknown tag is located by its path.
    let run = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dacapo-v0.3.5/runs/peer_run_bench_132_f1.yaml"
    ))
    .unwrap()
    .replacen(
        "__type__: SimpleAugmentConfig",
        "__type__: MirrorAugmentConfig",
        1,
    );
    let err = AnyConfig::from_text(None, &run, "run.yaml").unwrap_err();
    assert_eq!(
        err.problems()[0].path,
        "trainer_config.augments[0].__type__"
    );
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let text = format!("{TASK}clip_distanse: 3\nfoo: 1\n");
    let err = AnyConfig::from_text(None, &text, "dist.yaml").unwrap_err();
    let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, vec!["clip_distanse", "foo"]);
    assert!(err.problems()[0]
        .message
        .contains("did you mean `clip_distance`?"));
}

#[test]
fn missing_fields_of_a_truncated_file_are_all_listed() {
    let full = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dacapo-v0.3.5/runs/peer_run_bench_132_f1.yaml"
    ))
    .unwrap();
    // Cut the file in the middle of the task config (it loses the trainer too).
    let cut = full.find("  clipmax: 0.95").unwrap();
    let err = AnyConfig::from_text(Some(Family::Runs), &full[..cut], "run.yaml").unwrap_err();
    let problems: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    assert!(
        problems.contains(
            &"task_config.tol_distance: missing required field `tol_distance` (a number)"
                .to_string()
        ),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("trainer_config: missing required field")),
        "{problems:?}"
    );
    // A file cut inside a token is a syntax error naming the file.
    let err = AnyConfig::from_text(
        Some(Family::Runs),
        &full[..full.len() / 3].replace("- 2\n", "- [2\n"),
        "run.yaml",
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("run.yaml:"), "{err}");
}

#[test]
fn validation_reports_every_problem_with_its_path() {
    let text = "__type__: CNNectomeUNetConfig\nname: unet\ninput_shape: [132, 132, 132]\nfmaps_in: 1\nfmaps_out: 0\nnum_fmaps: 12\nfmap_inc_factor: 2\ndownsample_factors: [[2, 2, 2], [0, 2, 2], [2, 2]]\npadding: full\n";
    let config = AnyConfig::from_text(None, text, "unet.yaml").unwrap();
    let problems: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        vec![
            "padding: `full` is not one of: valid, same",
            "fmaps_out: must be positive",
            "downsample_factors[1]: must be positive, got (0, 2, 2)",
            "downsample_factors[2]: has 2 axes but input_shape has 3",
        ]
    );
}

#[test]
fn invalid_configs_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let project = Project::open(dir.path()).unwrap();
    let config = AnyConfig::from_text(None, &TASK.replace("40.0", "-1.0"), "x").unwrap();
    let err = project.configs().store(&config).unwrap_err();
    assert!(matches!(err, StoreError::InvalidConfig { .. }));
    assert!(
        err.to_string()
            .contains("clip_distance: must be a positive number, got -1"),
        "{err}"
    );
    assert!(snapshot(dir.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn a_read_only_project_is_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, project) = project_with_task();
    let before = snapshot(dir.path());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let other =
        AnyConfig::from_text(None, &TASK.replace("name: dist", "name: other"), "x").unwrap();
    let err = project.configs().store(&other);
    let delete = project.configs().delete(Family::Tasks, "dist");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = err.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(matches!(delete, Err(StoreError::ReadOnly { .. })));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_corrupt_stored_file_is_reported_not_overwritten() {
    let (dir, project) = project_with_task();
    let path = dir.path().join("configs/tasks/dist.yaml");
    std::fs::write(
        &path,
        "__type__: DistanceTaskConfig\nname: dist\nchannels: [mi",
    )
    .unwrap();
    let err = project
        .configs()
        .retrieve(Family::Tasks, "dist")
        .unwrap_err();
    assert!(err.to_string().contains("configs/tasks/dist.yaml"), "{err}");
    let config = AnyConfig::from_text(None, TASK, "x").unwrap();
    assert!(project.configs().store(&config).is_err());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "__type__: DistanceTaskConfig\nname: dist\nchannels: [mi"
    );
}
