//! The project directory: the embedded store of configs (and, later, stats, checkpoints and
//! arrays) with DaCapo's `runs_base_dir` layout. No server is involved.

pub mod atomic;
pub mod check;
pub mod configs;
pub mod layout;
pub mod lock;
pub mod run;
pub mod scores;
pub mod stats;

use std::path::{Path, PathBuf};

pub use configs::{config_files, with_name, ConfigStore, Imported, StoreOutcome};

/// Errors of the project store. Every variant names the file or name involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A config name that cannot be used as a file name.
    #[error("invalid {family} name {name:?}: {reason}")]
    InvalidName {
        /// The config family ("run", "task", …).
        family: &'static str,
        /// The offending name.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// No config of that name.
    #[error("no {family} named {name:?} in {dir}{hint}", dir = dir.display())]
    NotFound {
        /// The config family.
        family: &'static str,
        /// The name looked for.
        name: String,
        /// The directory searched.
        dir: PathBuf,
        /// A "did you mean" suffix, possibly empty.
        hint: String,
    },
    /// A different config is already stored under this name.
    #[error(
        "a different {family} named {name:?} already exists at {path}; it differs at: {}. \
         Delete it first or choose another name",
        differences.join(", "),
        path = path.display()
    )]
    Duplicate {
        /// The config family.
        family: &'static str,
        /// The contested name.
        name: String,
        /// The existing file.
        path: PathBuf,
        /// Field paths where the stored and the new config differ.
        differences: Vec<String>,
    },
    /// A config that fails validation is not stored.
    #[error("{family} {name:?} is not valid, nothing was stored:\n{problems}")]
    InvalidConfig {
        /// The config family.
        family: &'static str,
        /// The config's name.
        name: String,
        /// Every problem found.
        problems: crate::config::Problems,
    },
    /// A rename onto a name that is already stored.
    #[error("a {family} named {name:?} is already stored at {path}; choose another name", path = path.display())]
    Taken {
        /// Family noun.
        family: &'static str,
        /// The name asked for.
        name: String,
        /// The stored file with that name.
        path: PathBuf,
    },
    /// A stored file that cannot be read as a config.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The project (or a directory in it) is marked read-only.
    #[error("{path} is read-only: nothing was written", path = path.display())]
    ReadOnly {
        /// The read-only directory.
        path: PathBuf,
    },
    /// The project path exists but is not a directory.
    #[error("{path} is not a directory", path = path.display())]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// A file Segno wrote earlier that no longer reads as what it should be.
    #[error("{path}: {message}", path = path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file-system operation failed.
    #[error("cannot {action} {path}: {source}", path = path.display())]
    Io {
        /// What was being done ("read", "write", "list", …).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Wraps an I/O error with what was being done to which path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Reads the JSON file at `path` as a `T`; `None` when there is no such file. A file that
/// is not a `T` is an error naming it and `what` it should have been.
pub(crate) fn read_json_file<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Option<T>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", path, e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StoreError::Malformed {
            path: path.to_path_buf(),
            message: format!("not {what}: {e}"),
        })
}

/// Where the project directory of a command came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectSource {
    /// Given explicitly (`--project`).
    Argument,
    /// The `runs_base_dir` of a DaCapo options file.
    OptionsFile(PathBuf),
    /// Nothing was given and no options file exists: the current directory.
    CurrentDirectory,
}

/// The options files looked for, in order, when no project is given: `$DACAPO_OPTIONS_FILE`,
/// then `./dacapo.yaml` (DaCapo's own first two places).
pub fn options_file_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("DACAPO_OPTIONS_FILE") {
        out.push(PathBuf::from(p));
    }
    out.push(PathBuf::from("dacapo.yaml"));
    out
}

/// Reads the first existing options file of `candidates` (see
/// [`options_file_candidates`]); `None` when there is none. A file that exists but is
/// invalid, or names a store other than `files`, is an error naming it.
pub fn read_options(
    candidates: &[PathBuf],
) -> Result<Option<(PathBuf, crate::config::OptionsConfig)>, StoreError> {
    for file in candidates {
        if !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(file).map_err(|e| StoreError::io("read", file, e))?;
        let source_name = file.display().to_string();
        let doc = crate::config::parse_document(&text, &source_name)?;
        let options: crate::config::OptionsConfig =
            crate::config::decode_document(&doc, &source_name)?;
        if options.store_type != "files" {
            return Err(StoreError::Malformed {
                path: file.clone(),
                message: format!(
                    "type: the `{}` store is not supported; use `files` (a project directory)",
                    options.store_type
                ),
            });
        }
        return Ok(Some((file.clone(), options)));
    }
    Ok(None)
}

/// Finds the project directory: `explicit` if given, else the `runs_base_dir` of the first
/// existing options file in `candidates` (a leading `~` is the home directory), else the
/// current directory. An options file that exists but is invalid is an error.
pub fn locate_project(
    explicit: Option<&Path>,
    candidates: &[PathBuf],
) -> Result<(PathBuf, ProjectSource), StoreError> {
    if let Some(p) = explicit {
        return Ok((p.to_path_buf(), ProjectSource::Argument));
    }
    if let Some((file, options)) = read_options(candidates)? {
        let dir = match options.runs_base_dir.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(rest))
                .unwrap_or_else(|| PathBuf::from(&options.runs_base_dir)),
            None => PathBuf::from(&options.runs_base_dir),
        };
        return Ok((dir, ProjectSource::OptionsFile(file)));
    }
    Ok((PathBuf::from("."), ProjectSource::CurrentDirectory))
}

/// A project directory (DaCapo's `runs_base_dir`): configs, stats, checkpoints and arrays.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
}

impl Project {
    /// Opens the project at `root` without writing anything; the directory is created on
    /// the first write if it does not exist yet.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        if root.exists() && !root.is_dir() {
            return Err(StoreError::NotADirectory { path: root });
        }
        Ok(Self { root })
    }

    /// The project's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The config store (`<root>/configs`).
    pub fn configs(&self) -> ConfigStore {
        ConfigStore::new(self.root.join("configs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_comes_from_argument_then_options_file_then_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let options = dir.path().join("dacapo.yaml");
        let candidates = vec![dir.path().join("missing.yaml"), options.clone()];

        assert_eq!(
            locate_project(None, &candidates).unwrap(),
            (PathBuf::from("."), ProjectSource::CurrentDirectory)
        );
        std::fs::write(
            &options,
            "type: files\nruns_base_dir: /data/runs\ncompute_context: {type: LocalTorch, config: {device: cpu}}\n",
        )
        .unwrap();
        assert_eq!(
            locate_project(None, &candidates).unwrap(),
            (
                PathBuf::from("/data/runs"),
                ProjectSource::OptionsFile(options.clone())
            )
        );
        assert_eq!(
            locate_project(Some(Path::new("elsewhere")), &candidates).unwrap(),
            (PathBuf::from("elsewhere"), ProjectSource::Argument)
        );
        std::fs::write(&options, "type: files\nruns_base_dir: ~/dacapo\n").unwrap();
        let home = PathBuf::from(std::env::var_os("HOME").unwrap());
        assert_eq!(
            locate_project(None, &candidates).unwrap().0,
            home.join("dacapo")
        );
    }

    #[test]
    fn an_invalid_options_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = dir.path().join("dacapo.yaml");
        std::fs::write(&options, "type: files\nruns_base_dir: /r\nmongodbhost: x\n").unwrap();
        let err = locate_project(None, std::slice::from_ref(&options)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with(&options.display().to_string()), "{msg}");
        assert!(
            msg.contains("mongodbhost: unknown key `mongodbhost`"),
            "{msg}"
        );
        assert!(msg.contains("did you mean `mongo_db_host`?"), "{msg}");
    }
}
