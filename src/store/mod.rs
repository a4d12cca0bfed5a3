//! The project directory: the embedded store of configs (and, later, stats, checkpoints and
//! arrays) with DaCapo's `runs_base_dir` layout. No server is involved.

pub mod atomic;
pub mod configs;

use std::path::{Path, PathBuf};

pub use configs::{ConfigStore, StoreOutcome};

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
