//! Turns an array config (a chain such as Zarr → Resampled → Intensities) into a lazy
//! array that reads only what is asked for.

use std::path::{Path, PathBuf};

use crate::config::arrays::ArrayConfig;
use crate::geometry::Coordinate;

use super::resample::Resampled;
use super::transform::{
    Binarize, Concat, Constant, Crop, InMemory, Intensities, LogicalOr, MergeInstances,
    MissingAnnotationsMask, Sum,
};
use super::{ArrayData, ArrayError, ArraySource, DataType};

/// Resolves a config's `file_name` against `base` (the project directory) unless it is
/// absolute.
pub fn resolve_path(base: &Path, file_name: &str) -> PathBuf {
    let p = Path::new(file_name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A TIFF config's voxel size and offset in nm, converted from its `units` (nm when none
/// are given). Errors name the field.
fn tiff_geometry(
    c: &crate::config::arrays::TiffArrayConfig,
) -> Result<(Coordinate, Coordinate), ArrayError> {
    let invalid = |message: String| ArrayError::Invalid {
        path: c.name.clone(),
        message,
    };
    let dims = c.voxel_size.dims();
    if c.units.is_empty() {
        return Ok((c.voxel_size, c.offset));
    }
    if c.units.len() != dims {
        return Err(invalid(format!(
            "units: {} unit(s) for {dims} spatial axes ({:?})",
            c.units.len(),
            c.units
        )));
    }
    let mut factors = Vec::with_capacity(dims);
    for (a, unit) in c.units.iter().enumerate() {
        let f = super::meta::nm_per_unit(unit).ok_or_else(|| {
            invalid(format!(
                "units[{a}]: `{unit}` is not a length unit Segno knows (nm, um, mm, angstrom, pm)"
            ))
        })?;
        factors.push(f);
    }
    let convert = |field: &str, v: &Coordinate| -> Result<Coordinate, ArrayError> {
        let nm: Vec<f64> = v.iter().zip(&factors).map(|(x, f)| x as f64 * f).collect();
        if nm.iter().any(|x| x.fract().abs() > 1e-9) {
            return Err(invalid(format!(
                "{field}: {v} in {:?} is {nm:?} nm, not a whole number of nm",
                c.units
            )));
        }
        let ints: Vec<i64> = nm.iter().map(|x| x.round() as i64).collect();
        Coordinate::new(&ints).map_err(|e| invalid(format!("{field}: {e}")))
    };
    Ok((
        convert("voxel_size", &c.voxel_size)?,
        convert("offset", &c.offset)?,
    ))
}

/// Opens the array a config describes. Relative container paths are resolved against
/// `base`. Errors name the config (by its `name`) and what is wrong with it.
pub fn open_config(config: &ArrayConfig, base: &Path) -> Result<Box<dyn ArraySource>, ArrayError> {
    let name = config.name();
    let wrap = |e: ArrayError| -> ArrayError {
        match e {
            ArrayError::Invalid { .. } => e,
            other => ArrayError::Invalid {
                path: name.to_string(),
                message: other.to_string(),
            },
        }
    };
    Ok(match config {
        ArrayConfig::Zarr(c) => {
            if let Some(mode @ ("w" | "w-")) = c.mode.as_deref() {
                return Err(ArrayError::Invalid {
                    path: name.to_string(),
                    message: format!("mode: `{mode}` would create or empty the array; Segno only reads input arrays: use `r`"),
                });
            }
            let container = resolve_path(base, &c.file_name);
            let axes = c.axes.as_deref();
            let is_n5 = container.extension().is_some_and(|e| e.eq_ignore_ascii_case("n5"));
            let array: Box<dyn ArraySource> = if is_n5 {
                Box::new(super::n5::N5Array::open(&container, &c.dataset)?)
            } else {
                Box::new(super::zarr::ZarrArray::open_with_axes(&container, &c.dataset, axes)?)
            };
            let source = array.info().geometry.source;
            if c.ome_metadata && source != super::meta::OME_SOURCE {
                return Err(ArrayError::Invalid {
                    path: name.to_string(),
                    message: format!(
                        "ome_metadata: {}/{} is not a level of an OME-NGFF multiscale image (its geometry comes from {source}); set ome_metadata to false to read it anyway",
                        c.file_name,
                        c.dataset.trim_matches('/')
                    ),
                });
            }
            match &c.snap_to_grid {
                Some(grid) => {
                    let roi = super::transform::snap_roi(name, array.info(), grid)?;
                    Box::new(Crop::new(name, array, &roi)?)
                }
                None => array,
            }
        }
        ArrayConfig::Binarize(c) => {
            let src = open_config(&c.source_array_config, base)?;
            Box::new(Binarize::new(name, src, &c.groupings, c.background).map_err(wrap)?)
        }
        ArrayConfig::Resampled(c) => {
            let src = open_config(&c.source_array_config, base)?;
            Box::new(Resampled::new(name, src, &c.upsample, &c.downsample, c.interp_order).map_err(wrap)?)
        }
        ArrayConfig::Intensities(c) => {
            let src = open_config(&c.source_array_config, base)?;
            Box::new(Intensities::new(name, src, c.min, c.max)?)
        }
        ArrayConfig::MissingAnnotationsMask(c) => {
            let src = open_config(&c.source_array_config, base)?;
            Box::new(MissingAnnotationsMask::new(name, src, &c.groupings)?)
        }
        ArrayConfig::Ones(c) => {
            let src = open_config(&c.source_array_config, base)?;
            Box::new(Constant::new(name, src.as_ref(), 1.0, Some(DataType::Bool), "Ones"))
        }
        ArrayConfig::Constant(c) => {
            let src = open_config(&c.source_array_config, base)?;
            Box::new(Constant::new(name, src.as_ref(), c.constant as f64, None, "Constant"))
        }
        ArrayConfig::Concat(c) => {
            let mut parts = Vec::with_capacity(c.channels.len());
            for channel in &c.channels {
                parts.push(match c.source_array_configs.get(channel) {
                    Some(cfg) => Some(open_config(cfg, base)?),
                    None => None,
                });
            }
            let default = c.default_config.as_ref().map(|d| open_config(d, base)).transpose()?;
            Box::new(Concat::new(name, &c.channels, parts, default)?)
        }
        ArrayConfig::LogicalOr(c) => {
            let src = open_config(&c.source_array_config, base)?;
            Box::new(LogicalOr::new(name, src))
        }
        ArrayConfig::Crop(c) => {
            let src = open_config(&c.source_array_config, base)?;
            Box::new(Crop::new(name, src, &c.roi)?)
        }
        ArrayConfig::MergeInstances(c) => {
            let sources = c.source_array_configs.iter().map(|s| open_config(s, base)).collect::<Result<Vec<_>, _>>()?;
            Box::new(MergeInstances::new(name, sources)?)
        }
        ArrayConfig::Sum(c) => {
            let sources = c.source_array_configs.iter().map(|s| open_config(s, base)).collect::<Result<Vec<_>, _>>()?;
            Box::new(Sum::new(name, sources)?)
        }
        ArrayConfig::Tiff(c) => {
            let path = resolve_path(base, &c.file_name);
            let (voxel_size, offset) = tiff_geometry(c)?;
            let mut array = InMemory::tiff(name, &path, voxel_size, offset).map_err(wrap)?;
            array.name_axes(name, &c.axis_names)?;
            Box::new(array)
        }
        ArrayConfig::Dvid(c) => {
            return Err(ArrayError::Unsupported {
                path: name.to_string(),
                what: format!(
                    "DVID array ({} / {} / {}): reading it needs a DVID server, which Segno does not support; export the volume to zarr or N5 and use a ZarrArrayConfig",
                    c.source.0, c.source.1, c.source.2
                ),
            })
        }
        ArrayConfig::Dummy(_) => {
            // DaCapo's dummy: voxel size (1, 2, 2), region (0,0,0)+(100,100,100).
            let data = ArrayData::filled(DataType::F32, &[100, 50, 50], 0.0);
            Box::new(InMemory::new(
                name,
                "Dummy",
                data,
                Coordinate::from([1, 2, 2]),
                Coordinate::from([0, 0, 0]),
                false,
            )?)
        }
    })
}
