//! The config store: one YAML file per config at `configs/<family>/<name>.yaml`, the
//! layout of DaCapo's file config store.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::atomic::{ensure_writable, write_atomic};
use super::StoreError;
use crate::config::{schema, AnyConfig, Family};

/// Longest accepted config name, in bytes (leaves room for `.yaml` and temporary names
/// within the common 255-byte file-name limit).
pub const MAX_NAME_BYTES: usize = 200;

/// What storing a config did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// A new file was written.
    Written,
    /// An identical config was already stored; nothing was written.
    Unchanged,
}

/// What importing one config file did.
#[derive(Debug)]
pub struct Imported {
    /// The file's family, when known (given, or read from the file).
    pub family: Option<Family>,
    /// The config's name, when the file could be read.
    pub name: Option<String>,
    /// Storing it, or why the file could not be read or stored.
    pub outcome: Result<StoreOutcome, StoreError>,
    /// Settings with no effect, and what could not be checked (see
    /// [`ConfigStore::check_file`]).
    pub warnings: Vec<String>,
}

/// Named configs of every family below one `configs/` directory.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    root: PathBuf,
}

/// `name` as messages quote it: whole when short, else its first 60 characters and its
/// length (a 50 MB name is not echoed).
pub fn short_name(name: &str) -> String {
    if name.chars().count() <= 80 {
        name.to_string()
    } else {
        format!(
            "{}… ({} bytes)",
            name.chars().take(60).collect::<String>(),
            name.len()
        )
    }
}

/// Checks that `name` can be a config file name: not empty, at most [`MAX_NAME_BYTES`],
/// no path separators, no leading dot (hidden files, `..`), no control characters, and
/// none of the characters other operating systems forbid in file names (`: * ? " < > |`).
pub fn validate_name(family: Family, name: &str) -> Result<(), StoreError> {
    let fail = |reason: &str| {
        Err(StoreError::InvalidName {
            family: family.noun(),
            name: short_name(name),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return fail("a name must not be empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return fail(&format!(
            "a name must be at most {MAX_NAME_BYTES} bytes long"
        ));
    }
    if name.contains('/') || name.contains('\\') {
        return fail("a name must not contain / or \\ (it is used as a file name)");
    }
    if name.starts_with('.') {
        return fail("a name must not start with a dot");
    }
    if name.contains("..") {
        return fail("a name must not contain `..`");
    }
    if name.chars().any(char::is_control) {
        return fail("a name must not contain control characters");
    }
    if let Some(c) = name.chars().find(|c| ":*?\"<>|".contains(*c)) {
        return fail(&format!("a name must not contain {c:?}"));
    }
    if name.trim() != name {
        return fail("a name must not start or end with white space");
    }
    Ok(())
}

impl ConfigStore {
    /// A store rooted at `root` (the project's `configs` directory). Nothing is created
    /// until the first config is stored.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The `configs` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of one family.
    pub fn family_dir(&self, family: Family) -> PathBuf {
        self.root.join(family.dir_name())
    }

    /// File of one named config.
    pub fn path_of(&self, family: Family, name: &str) -> PathBuf {
        self.family_dir(family).join(format!("{name}.yaml"))
    }

    /// The file `config` is stored in, after checking its name and its validity.
    fn checked_path(&self, config: &AnyConfig) -> Result<PathBuf, StoreError> {
        let family = config.family();
        let name = config.name();
        validate_name(family, name)?;
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(StoreError::InvalidConfig {
                family: family.noun(),
                name: name.to_string(),
                problems,
            });
        }
        Ok(self.path_of(family, name))
    }

    /// Stores `config` under its name. An identical config already stored is a no-op; a
    /// different one under the same name is refused, as is a config that fails validation.
    pub fn store(&self, config: &AnyConfig) -> Result<StoreOutcome, StoreError> {
        let family = config.family();
        let path = self.checked_path(config)?;
        if path.exists() {
            return self.compare_existing(config, &path);
        }
        let project = self.root.parent().unwrap_or(&self.root);
        ensure_writable(&self.family_dir(family), project)?;
        match write_atomic(&path, config.to_yaml().as_bytes(), false) {
            Ok(()) => Ok(StoreOutcome::Written),
            // Someone stored the same name between our check and our rename.
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                self.compare_existing(config, &path)
            }
            Err(e) => Err(e),
        }
    }

    fn compare_existing(
        &self,
        config: &AnyConfig,
        path: &Path,
    ) -> Result<StoreOutcome, StoreError> {
        let existing = self.read_file(config.family(), path)?;
        if existing == *config {
            return Ok(StoreOutcome::Unchanged);
        }
        let mut differences = Vec::new();
        diff_documents(
            &existing.to_document(),
            &config.to_document(),
            "",
            &mut differences,
        );
        if differences.is_empty() {
            differences.push("(values that print the same)".to_string());
        }
        Err(StoreError::Duplicate {
            family: config.family().noun(),
            name: config.name().to_string(),
            path: path.to_path_buf(),
            differences,
        })
    }

    fn read_file(&self, family: Family, path: &Path) -> Result<AnyConfig, StoreError> {
        let text = std::fs::read_to_string(path).map_err(|e| StoreError::io("read", path, e))?;
        Ok(AnyConfig::from_text(
            Some(family),
            &text,
            &path.display().to_string(),
        )?)
    }

    /// Loads the config `name` of `family`.
    pub fn retrieve(&self, family: Family, name: &str) -> Result<AnyConfig, StoreError> {
        validate_name(family, name)?;
        let path = self.path_of(family, name);
        if !path.is_file() {
            let names = self.names(family).unwrap_or_default();
            let hint = schema::closest(name, names.iter().map(String::as_str))
                .map(|n| format!(" (did you mean {n:?}?)"))
                .unwrap_or_default();
            return Err(StoreError::NotFound {
                family: family.noun(),
                name: name.to_string(),
                dir: self.family_dir(family),
                hint,
            });
        }
        self.read_file(family, &path)
    }

    /// Names of the stored configs of `family`, sorted.
    pub fn names(&self, family: Family) -> Result<Vec<String>, StoreError> {
        let dir = self.family_dir(family);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &dir, e))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if file_name.starts_with('.') {
                continue;
            }
            if let Some(stem) = file_name.strip_suffix(".yaml") {
                names.push(stem.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Writes `config` under its name whether or not a config of that name is stored (the
    /// editor's Save). Invalid configs are refused; the file is replaced atomically, so the
    /// old version stays intact until the new one is complete.
    pub fn replace(&self, config: &AnyConfig) -> Result<StoreOutcome, StoreError> {
        let family = config.family();
        let path = self.checked_path(config)?;
        if path.is_file() && self.read_file(family, &path).ok().as_ref() == Some(config) {
            return Ok(StoreOutcome::Unchanged);
        }
        let project = self.root.parent().unwrap_or(&self.root);
        ensure_writable(&self.family_dir(family), project)?;
        write_atomic(&path, config.to_yaml().as_bytes(), true)?;
        Ok(StoreOutcome::Written)
    }

    /// Renames the stored config `old` of `family` to `new`, changing its `name` field too.
    /// Refused when `new` is taken; the new file is complete before the old one is removed.
    pub fn rename(&self, family: Family, old: &str, new: &str) -> Result<AnyConfig, StoreError> {
        validate_name(family, new)?;
        let config = self.retrieve(family, old)?;
        if old == new {
            return Ok(config);
        }
        let path = self.path_of(family, new);
        if path.exists() {
            return Err(StoreError::Taken {
                family: family.noun(),
                name: new.to_string(),
                path,
            });
        }
        let renamed = with_name(&config, new)?;
        self.store(&renamed)?;
        self.delete(family, old)?;
        Ok(renamed)
    }

    /// Checks a config read from the file at `path` before it is stored: its `name` must
    /// be the file's name (without `.yaml`/`.yml`/`.json`), and what it names in the project
    /// must exist and fit (see [`super::check::against_project`]). Returns the problems and
    /// the warnings (including settings that have no effect in Segno).
    pub fn check_file(&self, path: &Path, config: &AnyConfig) -> super::check::ProjectCheck {
        let project = self.root.parent().unwrap_or(&self.root);
        let mut check = super::check::against_project(config, project);
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if stem != config.name() {
            check.problems.push(
                "name",
                format!(
                    "`{}` differs from the file name `{}`: the project stores a config under its name, so rename the file or the config",
                    config.name(),
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
            );
        }
        check
            .warnings
            .extend(crate::config::compatibility_warnings(&config.to_document()));
        check
    }

    /// Reads the config file at `path` (of `family`, or of the family its contents show),
    /// checks it ([`ConfigStore::check_file`]) and stores it as [`ConfigStore::store`] does.
    pub fn import_file(&self, path: &Path, family: Option<Family>) -> Imported {
        let loaded = std::fs::read_to_string(path)
            .map_err(|e| StoreError::io("read", path, e))
            .and_then(|text| {
                Ok(AnyConfig::from_text(
                    family,
                    &text,
                    &path.display().to_string(),
                )?)
            });
        match loaded {
            Ok(c) => {
                let check = self.check_file(path, &c);
                let outcome = if check.problems.is_empty() {
                    self.store(&c)
                } else {
                    Err(StoreError::InvalidConfig {
                        family: c.family().noun(),
                        name: c.name().to_string(),
                        problems: check.problems,
                    })
                };
                Imported {
                    family: Some(c.family()),
                    name: Some(c.name().to_string()),
                    outcome,
                    warnings: check.warnings,
                }
            }
            Err(e) => Imported {
                family,
                name: None,
                outcome: Err(e),
                warnings: Vec::new(),
            },
        }
    }

    /// Deletes the config `name` of `family`.
    pub fn delete(&self, family: Family, name: &str) -> Result<(), StoreError> {
        validate_name(family, name)?;
        let path = self.path_of(family, name);
        if !path.is_file() {
            return Err(StoreError::NotFound {
                family: family.noun(),
                name: name.to_string(),
                dir: self.family_dir(family),
                hint: String::new(),
            });
        }
        let project = self.root.parent().unwrap_or(&self.root);
        ensure_writable(&self.family_dir(family), project)?;
        std::fs::remove_file(&path).map_err(|e| StoreError::io("delete", &path, e))
    }
}

/// Collects the field paths where two documents differ.
fn diff_documents(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            let keys: std::collections::BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
            for k in keys {
                let p = schema::child(path, k);
                match (ma.get(k), mb.get(k)) {
                    (Some(va), Some(vb)) => diff_documents(va, vb, &p, out),
                    _ => out.push(p),
                }
            }
        }
        (Value::Array(va), Value::Array(vb)) if va.len() == vb.len() => {
            for (i, (x, y)) in va.iter().zip(vb).enumerate() {
                diff_documents(x, y, &schema::index(path, i), out);
            }
        }
        _ if a == b => {}
        _ => out.push(if path.is_empty() {
            "(whole document)".into()
        } else {
            path.to_string()
        }),
    }
}

/// `config` with its `name` field set to `name`.
pub fn with_name(config: &AnyConfig, name: &str) -> Result<AnyConfig, StoreError> {
    let mut doc = config.to_document();
    if let Some(map) = doc.as_object_mut() {
        map.insert("name".to_string(), Value::String(name.to_string()));
    }
    Ok(AnyConfig::from_document(config.family(), &doc, name)?)
}

/// Collects the YAML/JSON config files below `path` (a file, or a folder searched
/// recursively, skipping hidden entries and zarr/N5 containers), each with the family its
/// folder name implies (`tasks/`, `runs/`, …) when it does.
pub fn config_files(path: &Path) -> Result<Vec<(PathBuf, Option<Family>)>, StoreError> {
    let mut out = Vec::new();
    collect_config_files(path, &mut out)?;
    Ok(out)
}

fn collect_config_files(
    path: &Path,
    out: &mut Vec<(PathBuf, Option<Family>)>,
) -> Result<(), StoreError> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| StoreError::io("list", path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let hidden = entry
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if entry.is_dir() {
                // Array containers and run outputs hold JSON metadata, not configs.
                let container = matches!(
                    entry.extension().and_then(|e| e.to_str()),
                    Some("zarr" | "n5")
                );
                if !container {
                    collect_config_files(&entry, out)?;
                }
            } else if matches!(
                entry.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                let family = entry
                    .parent()
                    .and_then(|p| p.file_name())
                    .and_then(|n| n.to_str())
                    .and_then(Family::parse);
                out.push((entry, family));
            }
        }
        Ok(())
    } else if path.exists() {
        out.push((path.to_path_buf(), None));
        Ok(())
    } else {
        Err(StoreError::io(
            "read",
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TaskConfig;

    fn task(name: &str, scale: f64) -> AnyConfig {
        let run = crate::demo::project::demo_run(20, 10);
        let mut t = run.task_config;
        if let TaskConfig::Distance(c) = &mut t {
            c.name = name.to_string();
            c.scale_factor = scale;
        }
        AnyConfig::Task(t)
    }

    #[test]
    fn replace_overwrites_a_stored_config_and_refuses_an_invalid_one_keeping_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path().join("configs"));
        assert_eq!(store.store(&task("t", 1.0)).unwrap(), StoreOutcome::Written);
        assert!(matches!(
            store.store(&task("t", 2.0)),
            Err(StoreError::Duplicate { .. })
        ));
        assert_eq!(
            store.replace(&task("t", 2.0)).unwrap(),
            StoreOutcome::Written
        );
        assert_eq!(
            store.replace(&task("t", 2.0)).unwrap(),
            StoreOutcome::Unchanged
        );
        assert_eq!(store.retrieve(Family::Tasks, "t").unwrap(), task("t", 2.0));
        let before = std::fs::read(store.path_of(Family::Tasks, "t")).unwrap();
        let mut bad = task("t", 2.0);
        if let AnyConfig::Task(TaskConfig::Distance(c)) = &mut bad {
            c.channels.clear();
        }
        assert!(matches!(
            store.replace(&bad),
            Err(StoreError::InvalidConfig { .. })
        ));
        assert_eq!(
            std::fs::read(store.path_of(Family::Tasks, "t")).unwrap(),
            before
        );
    }

    #[test]
    fn rename_moves_the_file_and_the_name_field_and_refuses_a_taken_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path().join("configs"));
        store.store(&task("a", 1.0)).unwrap();
        store.store(&task("b", 3.0)).unwrap();
        let renamed = store.rename(Family::Tasks, "a", "c").unwrap();
        assert_eq!(renamed.name(), "c");
        assert_eq!(store.names(Family::Tasks).unwrap(), vec!["b", "c"]);
        assert_eq!(store.retrieve(Family::Tasks, "c").unwrap(), task("c", 1.0));
        // "b" is taken: nothing moves, both stay.
        let e = store.rename(Family::Tasks, "c", "b").unwrap_err();
        assert!(matches!(e, StoreError::Taken { .. }));
        assert!(
            e.to_string()
                .contains("a task named \"b\" is already stored"),
            "{e}"
        );
        assert_eq!(store.names(Family::Tasks).unwrap(), vec!["b", "c"]);
        assert!(matches!(
            store.rename(Family::Tasks, "c", "x/y"),
            Err(StoreError::InvalidName { .. })
        ));
    }

    #[test]
    fn config_files_are_found_in_folders_with_the_family_of_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = dir.path().join("configs/tasks");
        std::fs::create_dir_all(&tasks).unwrap();
        std::fs::create_dir_all(dir.path().join("data.zarr")).unwrap();
        std::fs::write(tasks.join("t.yaml"), "x").unwrap();
        std::fs::write(tasks.join(".hidden.yaml"), "x").unwrap();
        std::fs::write(dir.path().join("data.zarr/.zattrs.json"), "{}").unwrap();
        std::fs::write(dir.path().join("run.yml"), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let found = config_files(dir.path()).unwrap();
        assert_eq!(
            found,
            vec![
                (tasks.join("t.yaml"), Some(Family::Tasks)),
                (dir.path().join("run.yml"), None),
            ]
        );
        assert!(config_files(&dir.path().join("missing")).is_err());
    }
}
