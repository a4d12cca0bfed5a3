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

/// Named configs of every family below one `configs/` directory.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    root: PathBuf,
}

/// Checks that `name` can be a config file name: not empty, at most [`MAX_NAME_BYTES`],
/// no path separators, no leading dot (hidden files, `..`), no control characters, and
/// none of the characters other operating systems forbid in file names (`: * ? " < > |`).
pub fn validate_name(family: Family, name: &str) -> Result<(), StoreError> {
    let fail = |reason: &str| {
        Err(StoreError::InvalidName {
            family: family.noun(),
            name: name.to_string(),
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

    /// Stores `config` under its name. An identical config already stored is a no-op; a
    /// different one under the same name is refused, as is a config that fails validation.
    pub fn store(&self, config: &AnyConfig) -> Result<StoreOutcome, StoreError> {
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
        let path = self.path_of(family, name);
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
