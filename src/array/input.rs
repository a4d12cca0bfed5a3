//! How stored raw data becomes a network's input: the value and resampling steps of a
//! dataset's raw array chain (`Resampled`, `Intensities`), kept apart from the stored
//! source they were applied to, so that exactly the same steps can be applied to any other
//! volume. A run records the transform its training data went through; prediction and
//! apply read new volumes through it, so they see what validation saw.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::open::open_config;
use super::resample::Resampled;
use super::transform::Intensities;
use super::{ArrayError, ArraySource};
use crate::config::arrays::ArrayConfig;
use crate::geometry::Coordinate;

/// One step between a stored raw volume and the network's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputStep {
    /// Integer up/down-sampling per axis (a `ResampledArrayConfig`).
    Resample {
        /// Upsampling factor per axis (0 or 1 = none).
        upsample: Coordinate,
        /// Downsampling factor per axis (0 or 1 = none).
        downsample: Coordinate,
        /// Linear interpolation / window means (true) or nearest / most frequent (false).
        interpolate: bool,
    },
    /// `(value − min) / (max − min)` as float32, not clipped (an `IntensitiesArrayConfig`).
    Intensities {
        /// Raw value mapped to 0.
        min: f64,
        /// Raw value mapped to 1.
        max: f64,
    },
}

impl InputStep {
    /// The step in words, e.g. `intensities [20, 200] → [0, 1]`.
    pub fn describe(&self) -> String {
        match self {
            InputStep::Resample {
                upsample,
                downsample,
                interpolate,
            } => format!(
                "resample up {upsample} down {downsample} ({})",
                if *interpolate { "linear" } else { "nearest" }
            ),
            InputStep::Intensities { min, max } => format!("intensities [{min}, {max}] → [0, 1]"),
        }
    }
}

/// Errors deriving or applying an input transform.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The raw chain holds a transform that cannot be re-applied to another volume.
    #[error("{0}")]
    Unsupported(String),
    /// The volume does not fit the transform (voxel size, element type, channels).
    #[error("{0}")]
    Mismatch(String),
    /// Opening or wrapping an array failed.
    #[error(transparent)]
    Array(#[from] ArrayError),
}

/// The steps a dataset's raw data goes through before the network, with the stored
/// source's properties they were derived from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTransform {
    /// The steps, from the stored source outwards.
    pub steps: Vec<InputStep>,
    /// The stored source these steps were applied to (`container/dataset`).
    pub source: String,
    /// Element type of that source (`uint8`, `uint16`, `float32`, …).
    pub source_data_type: String,
    /// Voxel size of that source (nm).
    pub source_voxel_size_nm: Coordinate,
    /// Voxel size of the network's input: the source's after the steps (nm).
    pub voxel_size_nm: Coordinate,
    /// Channels of the network's input.
    pub channels: u64,
}

/// Collects the steps of a raw array chain from the outermost transform down to its
/// stored source; returns the steps (outermost first) and the source config.
fn walk(config: &ArrayConfig) -> Result<(Vec<InputStep>, &ArrayConfig), InputError> {
    let mut steps = Vec::new();
    let mut at = config;
    loop {
        match at {
            ArrayConfig::Intensities(c) => {
                steps.push(InputStep::Intensities {
                    min: c.min,
                    max: c.max,
                });
                at = &c.source_array_config;
            }
            ArrayConfig::Resampled(c) => {
                steps.push(InputStep::Resample {
                    upsample: c.upsample,
                    downsample: c.downsample,
                    interpolate: c.interp_order,
                });
                at = &c.source_array_config;
            }
            // A crop only bounds the region; it does not change values or voxel size.
            ArrayConfig::Crop(c) => at = &c.source_array_config,
            ArrayConfig::Zarr(_) | ArrayConfig::Tiff(_) => return Ok((steps, at)),
            other => {
                return Err(InputError::Unsupported(format!(
                    "the raw array `{}` is built with a {} array (`{}`), which cannot be re-applied to another volume; Segno can carry over Intensities, Resampled and Crop steps on a single zarr, N5 or TIFF source",
                    config.name(),
                    other.type_tag(),
                    other.name()
                )))
            }
        }
    }
}

impl InputTransform {
    /// The transform of the raw array `config` (relative paths against `base`): its steps
    /// and the stored source's element type and voxel size (the source is opened, not read).
    pub fn from_config(config: &ArrayConfig, base: &Path) -> Result<Self, InputError> {
        let (mut steps, source) = walk(config)?;
        steps.reverse();
        let top = open_config(config, base)?;
        let leaf = open_config(source, base)?;
        let info = leaf.info();
        let source = match source {
            ArrayConfig::Zarr(z) => format!("{}/{}", z.file_name, z.dataset.trim_matches('/')),
            ArrayConfig::Tiff(t) => t.file_name.clone(),
            other => other.name().to_string(),
        };
        Ok(Self {
            steps,
            source,
            source_data_type: info.data_type.to_string(),
            source_voxel_size_nm: info.geometry.voxel_size,
            voxel_size_nm: top.info().geometry.voxel_size,
            channels: top.info().channels(),
        })
    }

    /// The steps in words, `;`-separated (`none` without steps).
    pub fn describe(&self) -> String {
        if self.steps.is_empty() {
            "none (raw values as stored)".into()
        } else {
            self.steps
                .iter()
                .map(InputStep::describe)
                .collect::<Vec<_>>()
                .join("; ")
        }
    }

    /// Whether two transforms treat a volume the same way (same steps, source type and
    /// voxel sizes; the source's path does not matter).
    pub fn same_as(&self, other: &InputTransform) -> bool {
        self.steps == other.steps
            && self.source_data_type == other.source_data_type
            && self.source_voxel_size_nm == other.source_voxel_size_nm
            && self.voxel_size_nm == other.voxel_size_nm
    }

    /// A copy whose resampling takes a volume at `voxel_size_nm` to the network's voxel
    /// size instead of the recorded source's: the recorded resampling steps are replaced by
    /// one that upsamples and/or one that downsamples by whole factors (linear, as for
    /// intensities), placed where the first recorded resampling was (else first).
    pub fn resampled_from(&self, voxel_size_nm: &Coordinate) -> Result<Self, InputError> {
        let target = self.voxel_size_nm;
        if voxel_size_nm.dims() != target.dims() {
            return Err(InputError::Mismatch(format!(
                "the volume has {} spatial axes (voxel size {voxel_size_nm} nm), the network {} ({target} nm)",
                voxel_size_nm.dims(),
                target.dims()
            )));
        }
        let dims = target.dims();
        let mut up = Vec::with_capacity(dims);
        let mut down = Vec::with_capacity(dims);
        for a in 0..dims {
            let (v, t) = (voxel_size_nm[a], target[a]);
            let g = gcd(v, t);
            up.push(v / g);
            down.push(t / g);
        }
        let coord = |v: &[i64]| Coordinate::new(v).map_err(|e| InputError::Mismatch(e.to_string()));
        let ones = vec![1; dims];
        let mut resampling = Vec::new();
        if up.iter().any(|u| *u > 1) {
            resampling.push(InputStep::Resample {
                upsample: coord(&up)?,
                downsample: coord(&ones)?,
                interpolate: true,
            });
        }
        if down.iter().any(|d| *d > 1) {
            resampling.push(InputStep::Resample {
                upsample: coord(&ones)?,
                downsample: coord(&down)?,
                interpolate: true,
            });
        }
        let at = self
            .steps
            .iter()
            .position(|s| matches!(s, InputStep::Resample { .. }))
            .unwrap_or(0);
        let mut steps: Vec<InputStep> = self
            .steps
            .iter()
            .filter(|s| !matches!(s, InputStep::Resample { .. }))
            .cloned()
            .collect();
        let at = at.min(steps.len());
        steps.splice(at..at, resampling);
        Ok(Self {
            steps,
            source_voxel_size_nm: *voxel_size_nm,
            ..self.clone()
        })
    }

    /// Wraps `source` in the steps, checking that the result has the network's voxel size
    /// and channels. Errors name both voxel sizes and say how to resolve a mismatch.
    pub fn apply(&self, source: Box<dyn ArraySource>) -> Result<Box<dyn ArraySource>, InputError> {
        let given = source.info().geometry.voxel_size;
        let path = source.info().path.clone();
        let mut array = source;
        for (k, step) in self.steps.iter().enumerate() {
            let name = format!("{path} (input step {})", k + 1);
            array = match step {
                InputStep::Resample {
                    upsample,
                    downsample,
                    interpolate,
                } => Box::new(Resampled::new(
                    &name,
                    array,
                    upsample,
                    downsample,
                    *interpolate,
                )?),
                InputStep::Intensities { min, max } => {
                    Box::new(Intensities::new(&name, array, *min, *max)?)
                }
            };
        }
        let got = array.info().geometry.voxel_size;
        if got != self.voxel_size_nm {
            let via = if self
                .steps
                .iter()
                .any(|s| matches!(s, InputStep::Resample { .. }))
            {
                format!(" (after the run's resampling it would be {got} nm)")
            } else {
                String::new()
            };
            return Err(InputError::Mismatch(format!(
                "{path} has voxel size {given} nm{via}, but the network was trained on raw data at {} nm (read from {} at {} nm): give a volume (or scale level) at {} nm, or ask for resampling (--resample)",
                self.voxel_size_nm,
                self.source,
                self.source_voxel_size_nm,
                self.source_voxel_size_nm
            )));
        }
        let channels = array.info().channels();
        if channels != self.channels {
            return Err(InputError::Mismatch(format!(
                "{path} has {channels} channel(s), the network was trained on {} ({})",
                self.channels, self.source
            )));
        }
        Ok(array)
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::transform::InMemory;
    use crate::array::{ArrayData, DataType};
    use crate::geometry::Roi;

    fn volume(vs: [i64; 3], dt: DataType, value: f64) -> Box<dyn ArraySource> {
        let data = ArrayData::filled(dt, &[8, 8, 8], value);
        Box::new(
            InMemory::new(
                "vol",
                "test",
                data,
                Coordinate::from(vs),
                Coordinate::from([0, 0, 0]),
                false,
            )
            .unwrap(),
        )
    }

    fn transform(steps: Vec<InputStep>, source_vs: [i64; 3], vs: [i64; 3]) -> InputTransform {
        InputTransform {
            steps,
            source: "raw.zarr/raw".into(),
            source_data_type: "uint16".into(),
            source_voxel_size_nm: Coordinate::from(source_vs),
            voxel_size_nm: Coordinate::from(vs),
            channels: 1,
        }
    }

    #[test]
    fn the_steps_of_a_chain_are_recorded_from_the_source_outwards() {
        use crate::config::arrays::*;
        let dir = tempfile::tempdir().unwrap();
        let roi = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([32, 32, 32])).unwrap();
        let spec = crate::array::write::ArraySpec::new(
            DataType::U16,
            roi,
            Coordinate::from([4, 4, 4]),
            None,
        );
        let container = dir.path().join("raw.zarr");
        crate::array::write::create(
            &container,
            "raw",
            &spec,
            crate::array::write::WriteMode::Overwrite,
        )
        .unwrap()
        .write(&roi, &ArrayData::filled(DataType::U16, &[8, 8, 8], 2000.0))
        .unwrap();
        let zarr = ArrayConfig::Zarr(ZarrArrayConfig {
            name: "raw".into(),
            file_name: "raw.zarr".into(),
            dataset: "raw".into(),
            snap_to_grid: None,
            axes: None,
            mode: Some("r".into()),
            ome_metadata: false,
        });
        let config = ArrayConfig::Intensities(IntensitiesArrayConfig {
            name: "norm".into(),
            source_array_config: Box::new(ArrayConfig::Resampled(ResampledArrayConfig {
                name: "half".into(),
                source_array_config: Box::new(zarr),
                upsample: Coordinate::from([1, 1, 1]),
                downsample: Coordinate::from([2, 2, 2]),
                interp_order: true,
            })),
            min: 1000.0,
            max: 50000.0,
        });
        let t = InputTransform::from_config(&config, dir.path()).unwrap();
        assert_eq!(
            t.steps,
            vec![
                InputStep::Resample {
                    upsample: Coordinate::from([1, 1, 1]),
                    downsample: Coordinate::from([2, 2, 2]),
                    interpolate: true
                },
                InputStep::Intensities {
                    min: 1000.0,
                    max: 50000.0
                }
            ]
        );
        assert_eq!(t.source_data_type, "uint16");
        assert_eq!(t.source_voxel_size_nm, Coordinate::from([4, 4, 4]));
        assert_eq!(t.voxel_size_nm, Coordinate::from([8, 8, 8]));
        assert_eq!(t.channels, 1);
    }

    #[test]
    fn applying_reproduces_the_values_and_refuses_another_voxel_size() {
        let t = transform(
            vec![InputStep::Intensities {
                min: 1000.0,
                max: 3000.0,
            }],
            [8, 8, 8],
            [8, 8, 8],
        );
        let a = t.apply(volume([8, 8, 8], DataType::U16, 1500.0)).unwrap();
        let roi = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([8, 8, 8])).unwrap();
        let v = a.read(&roi).unwrap().to_f32();
        assert_eq!(v.iter().next().copied(), Some(0.25));
        let err = t
            .apply(volume([16, 16, 16], DataType::U16, 1500.0))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("(16, 16, 16) nm") && err.contains("(8, 8, 8) nm"),
            "{err}"
        );
        assert!(err.contains("--resample"), "{err}");
    }

    #[test]
    fn resampling_from_another_voxel_size_replaces_the_recorded_resampling() {
        // Trained: 4 nm source downsampled ×2 to 8 nm, then normalised.
        let t = transform(
            vec![
                InputStep::Resample {
                    upsample: Coordinate::from([1, 1, 1]),
                    downsample: Coordinate::from([2, 2, 2]),
                    interpolate: true,
                },
                InputStep::Intensities {
                    min: 0.0,
                    max: 255.0,
                },
            ],
            [4, 4, 4],
            [8, 8, 8],
        );
        // A 6 nm volume: up ×3 to 2 nm, then down ×4 to 8 nm; normalisation kept after.
        let r = t.resampled_from(&Coordinate::from([6, 6, 12])).unwrap();
        assert_eq!(
            r.steps,
            vec![
                InputStep::Resample {
                    upsample: Coordinate::from([3, 3, 3]),
                    downsample: Coordinate::from([1, 1, 1]),
                    interpolate: true
                },
                InputStep::Resample {
                    upsample: Coordinate::from([1, 1, 1]),
                    downsample: Coordinate::from([4, 4, 2]),
                    interpolate: true
                },
                InputStep::Intensities {
                    min: 0.0,
                    max: 255.0
                },
            ]
        );
        let a = r.apply(volume([6, 6, 12], DataType::U8, 51.0)).unwrap();
        assert_eq!(a.info().geometry.voxel_size, Coordinate::from([8, 8, 8]));
        // Already at the network's voxel size: no resampling at all.
        let same = t.resampled_from(&Coordinate::from([8, 8, 8])).unwrap();
        assert_eq!(
            same.steps,
            vec![InputStep::Intensities {
                min: 0.0,
                max: 255.0
            }]
        );
    }
}
