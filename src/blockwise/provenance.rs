//! What a written output records about how it was made: the run, checkpoint, input (with
//! a content identity), region and Segno version, stored in its attributes.

use super::*;

/// What produced a prediction, recorded in its `segno_prediction` attributes. A re-run
/// into an existing, unfinished output continues it only when every field is the same.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// The Segno version that predicted.
    pub segno_version: String,
    /// The run.
    pub run: String,
    /// The checkpoint's iteration.
    pub iteration: u64,
    /// The checkpoint file.
    pub checkpoint: String,
    /// SHA-256 of the checkpoint file.
    pub checkpoint_sha256: String,
    /// The input volume, resolved (symlinks, `.` and `..`).
    pub input: String,
    /// SHA-256 of the input's metadata files and geometry (element type, shape, voxel size,
    /// offset): another volume at the same path differs here.
    pub input_identity: String,
    /// How the input was read (the run's normalisation and resampling steps, the scale
    /// shift inside the network).
    pub input_steps: serde_json::Value,
    /// The region predicted (world units, nm).
    pub region: String,
    /// Output element type, block shapes and voxel sizes.
    pub parameters: serde_json::Value,
}

impl Provenance {
    /// The fields in which `now` differs from this record, each as `field: recorded …,
    /// now …`.
    pub fn differences(&self, now: &Provenance) -> Vec<String> {
        let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
            (serde_json::to_value(self), serde_json::to_value(now))
        else {
            return vec!["the record cannot be compared".into()];
        };
        let short = |v: &serde_json::Value| {
            let t = match v {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            if t.chars().count() > 160 {
                format!("{}…", t.chars().take(160).collect::<String>())
            } else {
                t
            }
        };
        let null = serde_json::Value::Null;
        let mut out = Vec::new();
        for (k, v) in a.iter().filter(|(k, v)| b.get(*k) != Some(*v)) {
            let now = b.get(k).unwrap_or(&null);
            match (v, now) {
                // Records of several entries (the parameters): each entry that differs.
                (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                    let keys: std::collections::BTreeSet<&String> =
                        x.keys().chain(y.keys()).collect();
                    for key in keys {
                        let (r, n) = (x.get(key).unwrap_or(&null), y.get(key).unwrap_or(&null));
                        if r != n {
                            out.push(format!(
                                "{k}.{key}: recorded {}, now {}",
                                short(r),
                                short(n)
                            ));
                        }
                    }
                }
                _ => out.push(format!("{k}: recorded {}, now {}", short(v), short(now))),
            }
        }
        out
    }
}

/// SHA-256 of a file, as hex.
pub(super) fn file_sha256(path: &Path) -> Result<String, TrainError> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path)
        .map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))?;
    Ok(hex(&hasher.finalize()))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity of the volume at `path`: SHA-256 of its metadata files (zarr v2/v3, N5,
/// and the group attributes above a scale level) and its geometry.
pub fn input_identity(path: &Path) -> Result<String, TrainError> {
    use sha2::Digest;
    let array = crate::array::open(path)?;
    let info = array.info();
    let mut hasher = sha2::Sha256::new();
    hasher.update(
        format!(
            "{}|{:?}|{}|{}|{:?}",
            info.data_type,
            info.shape,
            info.geometry.voxel_size,
            info.geometry.offset,
            info.chunk_shape
        )
        .as_bytes(),
    );
    // The path given, the scale level it resolved to, and the groups above them.
    let level = Path::new(&info.path);
    let mut dirs: Vec<&Path> = Vec::new();
    for dir in [Some(path), path.parent(), Some(level), level.parent()]
        .into_iter()
        .flatten()
    {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        for name in [".zarray", ".zattrs", "zarr.json", "attributes.json"] {
            if let Ok(bytes) = std::fs::read(dir.join(name)) {
                hasher.update(name.as_bytes());
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
        }
    }
    Ok(hex(&hasher.finalize()))
}
