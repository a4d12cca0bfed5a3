//! Array geometry from stored attributes: voxel size, world offset, axis names and units,
//! read from any of the attribute dialects that DaCapo-era tools write.
//!
//! Priority: OME-NGFF multiscales → `voxel_size`/`offset`/`axis_names`/`units` (DaCapo
//! v0.3.5+) → `resolution`/`offset`/`axes` (funlib, DaCapo seed era) → `scale` →
//! `pixelResolution` (N5 / BigDataViewer) → `transform` → defaults (voxel size 1, offset 0).
//! For N5 containers every list is stored x, y, z and is reversed.

use serde_json::{Map, Value};

use crate::geometry::Coordinate;

/// Errors resolving an array's geometry from its attributes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// An attribute has the wrong shape or values.
    #[error("attribute `{attribute}`: {message}")]
    BadAttribute {
        /// The attribute key (e.g. `resolution`).
        attribute: String,
        /// What is wrong.
        message: String,
    },
}

/// Where an axis sits in an array: a spatial axis (z, y, x) or another one (channel, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    /// The axis name as written (e.g. `z`, `c^`).
    pub name: String,
    /// Whether the axis is spatial.
    pub spatial: bool,
}

/// An array's geometry in world units (nanometres), spatial axes only.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// Every axis of the stored array, in storage (C) order.
    pub axes: Vec<Axis>,
    /// Size of one voxel along each spatial axis, in nm.
    pub voxel_size: Coordinate,
    /// World position of the first voxel's corner, in nm, exactly as stored (converted to
    /// nm; not necessarily a multiple of the voxel size — see [`Geometry::on_grid`]).
    pub offset: Coordinate,
    /// Unit of each spatial axis (`nm` after conversion when the unit was known).
    pub units: Vec<String>,
    /// Which attribute dialect the geometry came from (for `array info`).
    pub source: &'static str,
    /// The offset as stored, spatial axes in z, y, x order and in the stored units (for
    /// `array info`; equals `offset` for arrays that were not read from attributes).
    pub stored_offset: Vec<f64>,
    /// Every conversion applied to the stored offset (units, DaCapo 0.3.5's offsets in
    /// voxels, rounding to whole nm) and notes about it, in words.
    pub offset_notes: Vec<String>,
}

impl Geometry {
    /// A geometry computed by Segno (a transform's output, an in-memory array): the offset
    /// is its own "stored" value and needs no notes.
    pub fn derived(
        axes: Vec<Axis>,
        voxel_size: Coordinate,
        offset: Coordinate,
        units: Vec<String>,
        source: &'static str,
    ) -> Self {
        Self {
            axes,
            voxel_size,
            stored_offset: offset.iter().map(|v| v as f64).collect(),
            offset,
            units,
            source,
            offset_notes: Vec::new(),
        }
    }

    /// Whether the offset is a multiple of the voxel size on every axis, i.e. the voxels
    /// sit on the world voxel grid that training, prediction and evaluation compute on.
    pub fn on_grid(&self) -> bool {
        self.offset.is_multiple_of(&self.voxel_size)
    }
}

/// Scale and translation of one OME-NGFF multiscale level, with the group's axes.
#[derive(Debug, Clone, PartialEq)]
pub struct OmeLevel {
    /// Axis names and types from the multiscale's `axes`.
    pub axes: Vec<(String, String, Option<String>)>,
    /// `scale` transformation, one entry per axis.
    pub scale: Vec<f64>,
    /// `translation` transformation, one entry per axis (zeros when absent).
    pub translation: Vec<f64>,
    /// `scale` and `translation` of the multiscale's first (finest) level, which the
    /// other levels are aligned to; `None` for the first level itself.
    pub base: Option<(Vec<f64>, Vec<f64>)>,
}

/// [`Geometry::source`] of arrays whose geometry comes from OME-NGFF multiscales metadata.
pub const OME_SOURCE: &str = "OME-NGFF multiscales";

/// Whether an axis name denotes a non-spatial axis (channel, sample, batch, time, …).
pub fn is_non_spatial_name(name: &str) -> bool {
    name.ends_with('^') || matches!(name, "c" | "s" | "b" | "t" | "channel" | "channels")
}

/// Nanometres per unit for the length units OME-NGFF and funlib write.
pub fn nm_per_unit(unit: &str) -> Option<f64> {
    match unit.trim() {
        "nm" | "nanometer" | "nanometre" => Some(1.0),
        "um" | "µm" | "micrometer" | "micrometre" | "micron" => Some(1_000.0),
        "mm" | "millimeter" | "millimetre" => Some(1_000_000.0),
        "angstrom" | "Å" => Some(0.1),
        "pm" | "picometer" => Some(0.001),
        _ => None,
    }
}

fn bad(attribute: &str, message: impl Into<String>) -> MetaError {
    MetaError::BadAttribute {
        attribute: attribute.to_string(),
        message: message.into(),
    }
}

fn number_list(attrs: &Map<String, Value>, key: &str) -> Result<Option<Vec<f64>>, MetaError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                let x = v
                    .as_f64()
                    .ok_or_else(|| bad(key, format!("expected numbers, found {v}")))?;
                // Beyond 2^53 a JSON number is no longer exact as f64 (nor in most readers).
                if !x.is_finite() || x.abs() > 9_007_199_254_740_992.0 {
                    return Err(bad(
                        key,
                        format!("{v} is beyond ±2^53, where numbers are no longer exact"),
                    ));
                }
                Ok(x)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(bad(
            key,
            format!("expected a list of numbers, found {other}"),
        )),
    }
}

fn string_list(attrs: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, MetaError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(key, format!("expected strings, found {v}")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(bad(
            key,
            format!("expected a list of strings, found {other}"),
        )),
    }
}

fn nested<'a>(attrs: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    attrs.get(key).and_then(Value::as_object)
}

/// Inputs of [`resolve`]: everything known about one stored array.
#[derive(Debug, Clone, Default)]
pub struct MetaInputs<'a> {
    /// Number of dimensions of the stored array.
    pub ndim: usize,
    /// The array's own attributes.
    pub attributes: Option<&'a Map<String, Value>>,
    /// The parent group's attributes (consulted when the array has none of the keys).
    pub parent_attributes: Option<&'a Map<String, Value>>,
    /// Zarr v3 `dimension_names`.
    pub dimension_names: Option<Vec<Option<String>>>,
    /// The OME-NGFF multiscale level this array is, if any.
    pub ome: Option<OmeLevel>,
    /// Whether the container is N5 (lists stored x, y, z).
    pub n5: bool,
    /// Axis names given by the user (a config's `axes`), overriding the stored ones.
    pub axis_override: Option<Vec<String>>,
}

/// What one attribute dialect gives: its name, voxel size, offset and units (as stored).
type Dialect = (
    &'static str,
    Option<Vec<f64>>,
    Option<Vec<f64>>,
    Option<Vec<String>>,
);

/// Resolves the geometry of an array from its attributes (see the module docs).
pub fn resolve(inputs: &MetaInputs<'_>) -> Result<Geometry, MetaError> {
    let ndim = inputs.ndim;
    let empty = Map::new();
    let own = inputs.attributes.unwrap_or(&empty);
    let parent = inputs.parent_attributes.unwrap_or(&empty);
    let reverse = |mut v: Vec<f64>| {
        if inputs.n5 {
            v.reverse();
        }
        v
    };
    let reverse_s = |mut v: Vec<String>| {
        if inputs.n5 {
            v.reverse();
        }
        v
    };

    // Axis names.
    let mut names: Option<Vec<String>> = inputs.axis_override.clone();
    if names.is_some() {
        // Given by the user: taken as is.
    } else if let Some(level) = &inputs.ome {
        names = Some(level.axes.iter().map(|(n, _, _)| n.clone()).collect());
    }
    for key in ["axis_names", "axes", "_ARRAY_DIMENSIONS"] {
        if names.is_none() {
            names = string_list(own, key)?.map(reverse_s);
        }
    }
    if names.is_none() {
        if let Some(dn) = &inputs.dimension_names {
            if dn.iter().all(Option::is_some) {
                names = Some(dn.iter().flatten().cloned().collect());
            }
        }
    }
    let names = match names {
        Some(n) if n.len() == ndim => n,
        Some(n) => {
            return Err(bad(
                "axis_names",
                format!(
                    "lists {} axes ({}) but the array has {ndim}",
                    n.len(),
                    n.join(", ")
                ),
            ))
        }
        None => default_axis_names(ndim),
    };
    let ome_types: Option<Vec<String>> = inputs
        .ome
        .as_ref()
        .map(|l| l.axes.iter().map(|(_, t, _)| t.clone()).collect());
    let axes: Vec<Axis> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let spatial = match &ome_types {
                Some(types) if inputs.axis_override.is_none() => {
                    types.get(i).is_some_and(|t| t == "space" || t.is_empty())
                }
                _ => !is_non_spatial_name(n),
            };
            Axis {
                name: n.clone(),
                spatial,
            }
        })
        .collect();
    let spatial: Vec<usize> = (0..ndim).filter(|&i| axes[i].spatial).collect();
    let dims = spatial.len();
    if dims == 0 || dims > 3 {
        return Err(bad(
            "axis_names",
            format!(
                "{dims} spatial axes ({}); Segno needs 1 to 3",
                names.join(", ")
            ),
        ));
    }
    // Keep the spatial entries of a per-axis list; accept spatial-only lists as they are.
    let spatial_only = |key: &str, v: Vec<f64>| -> Result<Vec<f64>, MetaError> {
        if v.len() == dims {
            Ok(v)
        } else if v.len() == ndim {
            Ok(spatial.iter().map(|&i| v[i]).collect())
        } else {
            Err(bad(
                key,
                format!(
                    "has {} entries but the array has {dims} spatial axes",
                    v.len()
                ),
            ))
        }
    };

    // Voxel size, offset and units, by dialect.
    let mut notes = Vec::new();
    let mut stored = None;
    let (source, vs, off, units): Dialect = if let Some(level) = &inputs.ome {
        let units = level
            .axes
            .iter()
            .zip(&axes)
            .filter(|(_, a)| a.spatial)
            .map(|((_, _, u), _)| u.clone().unwrap_or_default())
            .collect();
        let translation = spatial_only("translation", level.translation.clone())?;
        stored = Some(translation.clone());
        let scale = spatial_only("scale", level.scale.clone())?;
        // A coarser level's translation locates its first voxel's centre (OME-NGFF; CellMap
        // and Segno pyramids shift level k by (scale_k − scale_0)/2): its corner is where
        // the finest level's is. A level translated like the finest one uses corners.
        let mut corner = translation.clone();
        if let Some((base_scale, base_translation)) = &level.base {
            let base_scale = spatial_only("scale", base_scale.clone())?;
            let base_translation = spatial_only("translation", base_translation.clone())?;
            if base_scale != scale && base_translation != translation {
                corner = translation
                    .iter()
                    .zip(scale.iter().zip(&base_scale))
                    .map(|(t, (s, s0))| t - (s - s0) / 2.0)
                    .collect();
                notes.push(format!(
                    "OME-NGFF translation {} locates the first voxel's centre: its corner is at {}, in line with the finest level",
                    list(&translation),
                    list(&corner)
                ));
            }
        }
        (OME_SOURCE, Some(scale), Some(corner), Some(units))
    } else {
        let mut found = None;
        for attrs in [own, parent] {
            if found.is_some() {
                break;
            }
            let units = string_list(attrs, "units")?.map(reverse_s);
            if let Some(v) = number_list(attrs, "voxel_size")? {
                found = Some((
                    "voxel_size/offset",
                    Some(reverse(v)),
                    number_list(attrs, "offset")?.map(reverse),
                    units,
                ));
            } else if let Some(v) = number_list(attrs, "resolution")? {
                found = Some((
                    "resolution/offset",
                    Some(reverse(v)),
                    number_list(attrs, "offset")?.map(reverse),
                    units,
                ));
            } else if let Some(v) = number_list(attrs, "scale")? {
                found = Some((
                    "scale/offset",
                    Some(reverse(v)),
                    number_list(attrs, "offset")?.map(reverse),
                    units,
                ));
            } else if let Some(pr) = nested(attrs, "pixelResolution") {
                let unit = pr.get("unit").and_then(Value::as_str).map(str::to_string);
                let v = number_list(pr, "dimensions")?.map(reverse);
                let units = unit.map(|u| vec![u; dims]).or(units);
                found = Some((
                    "pixelResolution",
                    v,
                    number_list(attrs, "offset")?.map(reverse),
                    units,
                ));
            } else if let Some(t) = nested(attrs, "transform") {
                let fortran = t.get("ordering").and_then(Value::as_str) == Some("F");
                let flip = |v: Vec<f64>| {
                    if fortran {
                        v.into_iter().rev().collect()
                    } else {
                        v
                    }
                };
                let units = string_list(t, "units")?;
                found = Some((
                    "transform",
                    number_list(t, "scale")?.map(flip),
                    number_list(t, "translate")?.map(flip),
                    units,
                ));
            } else if let Some(o) = number_list(attrs, "offset")? {
                found = Some(("offset only", None, Some(reverse(o)), units));
            }
        }
        found.unwrap_or(("defaults", None, None, None))
    };

    let units = match units {
        Some(u) if u.len() == dims => u,
        Some(u) if u.len() == ndim => spatial.iter().map(|&i| u[i].clone()).collect(),
        _ => vec![String::new(); dims],
    };
    let factors: Vec<f64> = units
        .iter()
        .map(|u| {
            if u.is_empty() {
                1.0
            } else {
                nm_per_unit(u).unwrap_or(1.0)
            }
        })
        .collect();
    let vs = match vs {
        Some(v) => spatial_only("voxel_size", v)?,
        None => vec![1.0; dims],
    };
    let off = match off {
        Some(v) => spatial_only("offset", v)?,
        None => vec![0.0; dims],
    };
    let mut voxel_size = Vec::with_capacity(dims);
    for i in 0..dims {
        let nm = vs[i] * factors[i];
        let whole = nm.round();
        if !(nm.is_finite() && nm > 0.0 && nm < 1e15) || (nm - whole).abs() > 1e-6 * whole.max(1.0)
        {
            return Err(bad(
                "voxel_size",
                format!(
                    "{} {} on axis {} is not a positive whole number of nanometres",
                    vs[i], units[i], axes[spatial[i]].name
                ),
            ));
        }
        voxel_size.push(whole as i64);
    }
    let axis_names: Vec<&str> = spatial.iter().map(|&i| axes[i].name.as_str()).collect();
    let mut off_nm: Vec<f64> = off.iter().zip(&factors).map(|(o, f)| o * f).collect();
    if factors.iter().any(|f| *f != 1.0) && off.iter().any(|o| *o != 0.0) {
        notes.push(format!(
            "offset converted from {} to nm",
            units
                .iter()
                .filter(|u| !u.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // DaCapo 0.3.5 wrote `offset` divided by the voxel size, with `voxel_size`,
    // `axis_names` and empty `units` (and no `resolution`, which Segno and funlib write).
    // Such an offset that is off the voxel grid in nm but whole in voxels is one of those.
    let dacapo_035 = source == "voxel_size/offset"
        && own.contains_key("axis_names")
        && !own.contains_key("resolution")
        && units.iter().all(String::is_empty);
    if dacapo_035 {
        let off_grid = off_nm
            .iter()
            .zip(&voxel_size)
            .any(|(o, v)| o.rem_euclid(*v as f64) != 0.0);
        let whole_voxels = off_nm.iter().all(|o| o.fract() == 0.0);
        if off_grid && whole_voxels {
            let world: Vec<f64> = off_nm
                .iter()
                .zip(&voxel_size)
                .map(|(o, v)| o * *v as f64)
                .collect();
            notes.push(format!(
                "offset {} is in voxels, as DaCapo 0.3.5 wrote it (world offset ÷ voxel size): read as {} nm",
                list(&off_nm),
                list(&world)
            ));
            off_nm = world;
        } else if off_nm.iter().any(|o| *o != 0.0) {
            notes.push(
                "written like a DaCapo 0.3.5 output, which stores offsets in voxels; read in nm because it lies on the voxel grid"
                    .to_string(),
            );
        }
    }
    let mut offset = Vec::with_capacity(dims);
    for (i, o) in off_nm.iter().enumerate() {
        let whole = o.round();
        if !(o.is_finite() && o.abs() < 1e15) {
            return Err(bad(
                "offset",
                format!(
                    "{} on axis {} is not a finite length",
                    off[i], axis_names[i]
                ),
            ));
        }
        if (o - whole).abs() > 1e-6 * whole.abs().max(1.0) {
            notes.push(format!(
                "offset {o} nm on axis {} is not a whole number of nm: rounded to {whole} nm",
                axis_names[i]
            ));
        }
        offset.push(whole as i64);
    }
    let off_axes: Vec<String> = (0..dims)
        .filter(|&i| offset[i].rem_euclid(voxel_size[i]) != 0)
        .map(|i| {
            format!(
                "{} ({} nm, voxel size {} nm)",
                axis_names[i], offset[i], voxel_size[i]
            )
        })
        .collect();
    if !off_axes.is_empty() {
        notes.push(format!(
            "offset is off the voxel grid on {}: kept as stored; training, prediction and evaluation refuse such an array",
            off_axes.join(", ")
        ));
    }
    let known: Vec<String> = units
        .iter()
        .map(|u| {
            if u.is_empty() || nm_per_unit(u).is_some() {
                "nm".to_string()
            } else {
                u.clone()
            }
        })
        .collect();
    let as_coord =
        |v: Vec<i64>, key: &str| Coordinate::new(&v).map_err(|e| bad(key, e.to_string()));
    Ok(Geometry {
        axes,
        voxel_size: as_coord(voxel_size, "voxel_size")?,
        offset: as_coord(offset, "offset")?,
        units: known,
        source,
        stored_offset: stored.unwrap_or(off),
        offset_notes: notes,
    })
}

/// `[a, b, c]` with whole numbers printed without a fraction.
fn list(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
    format!("[{}]", items.join(", "))
}

/// Axis names when nothing names them: the last (at most 3) axes are `z, y, x`; leading
/// extra axes are channels (`c^`, then `c1^`, …).
pub fn default_axis_names(ndim: usize) -> Vec<String> {
    let spatial = ndim.min(3);
    let mut names: Vec<String> = (0..ndim - spatial)
        .map(|i| {
            if i == 0 {
                "c^".to_string()
            } else {
                format!("c{i}^")
            }
        })
        .collect();
    names.extend(["z", "y", "x"][3 - spatial..].iter().map(|s| s.to_string()));
    names
}

/// Reads the OME-NGFF multiscales of a group's attributes (0.4: `multiscales` at the top;
/// 0.5: under `ome`). Returns the first multiscale's levels as (path, level).
pub fn ome_levels(
    group_attributes: &Map<String, Value>,
) -> Result<Vec<(String, OmeLevel)>, MetaError> {
    let ms = group_attributes
        .get("multiscales")
        .or_else(|| nested(group_attributes, "ome").and_then(|o| o.get("multiscales")));
    let Some(ms) = ms else {
        return Ok(Vec::new());
    };
    let first = ms
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_object)
        .ok_or_else(|| {
            bad(
                "multiscales",
                "expected a non-empty list of multiscale objects",
            )
        })?;
    let axes: Vec<(String, String, Option<String>)> = match first.get("axes") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| match a {
                Value::String(s) => Ok((
                    s.clone(),
                    if is_non_spatial_name(s) {
                        "channel".into()
                    } else {
                        "space".into()
                    },
                    None,
                )),
                Value::Object(o) => Ok((
                    o.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    o.get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    o.get("unit").and_then(Value::as_str).map(str::to_string),
                )),
                other => Err(bad("multiscales.axes", format!("unexpected entry {other}"))),
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    let datasets = first
        .get("datasets")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("multiscales.datasets", "missing"))?;
    let mut out = Vec::new();
    for d in datasets {
        let path = d
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("multiscales.datasets", "a dataset has no path"))?;
        let mut scale = None;
        let mut translation = None;
        for t in d
            .get("coordinateTransformations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(t) = t.as_object() else { continue };
            match t.get("type").and_then(Value::as_str) {
                Some("scale") => scale = number_list(t, "scale")?,
                Some("translation") => translation = number_list(t, "translation")?,
                _ => {}
            }
        }
        let scale =
            scale.ok_or_else(|| bad("multiscales.datasets", format!("{path} has no scale")))?;
        let n = scale.len();
        let axes = if axes.len() == n {
            axes.clone()
        } else {
            default_axis_names(n)
                .into_iter()
                .map(|a| (a, String::new(), None))
                .collect()
        };
        out.push((
            path.to_string(),
            OmeLevel {
                axes,
                translation: translation.unwrap_or_else(|| vec![0.0; n]),
                scale,
                base: None,
            },
        ));
    }
    // Every level after the first is aligned to the first.
    if let Some((_, first)) = out.first() {
        let base = (first.scale.clone(), first.translation.clone());
        for (_, level) in out.iter_mut().skip(1) {
            if level.scale.len() == base.0.len() {
                level.base = Some(base.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn geo(ndim: usize, a: Value, n5: bool) -> Result<Geometry, MetaError> {
        let a = attrs(a);
        resolve(&MetaInputs {
            ndim,
            attributes: Some(&a),
            n5,
            ..Default::default()
        })
    }

    #[test]
    fn dialects() {
        let funlib = geo(
            3,
            json!({"resolution": [8, 4, 4], "offset": [16, 8, 4], "axes": ["z", "y", "x"]}),
            false,
        )
        .unwrap();
        assert_eq!(funlib.voxel_size, Coordinate::from([8, 4, 4]));
        assert_eq!(funlib.offset, Coordinate::from([16, 8, 4]));
        assert_eq!(funlib.source, "resolution/offset");

        let v035 = geo(4, json!({"voxel_size": [8, 4, 4], "offset": [0, 0, 0], "axis_names": ["c^", "z", "y", "x"], "units": ["", "nm", "nm", "nm"]}), false).unwrap();
        assert!(!v035.axes[0].spatial && v035.axes[1].spatial);
        assert_eq!(v035.voxel_size, Coordinate::from([8, 4, 4]));
        assert_eq!(v035.units, vec!["nm"; 3]);

        let n5 = geo(
            3,
            json!({"resolution": [4, 4, 8], "offset": [4, 8, 16]}),
            true,
        )
        .unwrap();
        assert_eq!(n5.voxel_size, Coordinate::from([8, 4, 4]));
        assert_eq!(n5.offset, Coordinate::from([16, 8, 4]));

        let bdv = geo(
            3,
            json!({"pixelResolution": {"dimensions": [4.0, 4.0, 40.0], "unit": "nm"}}),
            true,
        )
        .unwrap();
        assert_eq!(bdv.voxel_size, Coordinate::from([40, 4, 4]));

        let none = geo(4, json!({}), false).unwrap();
        assert_eq!(none.voxel_size, Coordinate::from([1, 1, 1]));
        assert_eq!(none.axes[0].name, "c^");
        assert_eq!(none.source, "defaults");
    }

    #[test]
    fn offsets_are_kept_exactly_and_units_convert() {
        let g = geo(
            3,
            json!({"resolution": [8, 4, 4], "offset": [13, 5, 6]}),
            false,
        )
        .unwrap();
        assert_eq!(g.offset, Coordinate::from([13, 5, 6]));
        assert!(!g.on_grid());
        assert_eq!(g.stored_offset, vec![13.0, 5.0, 6.0]);
        assert_eq!(g.offset_notes.len(), 1);
        assert!(
            g.offset_notes[0].contains("off the voxel grid on z (13 nm, voxel size 8 nm), y (5 nm, voxel size 4 nm), x (6 nm, voxel size 4 nm)"),
            "{:?}",
            g.offset_notes
        );
        let level = OmeLevel {
            axes: vec![("z".into(), "space".into(), Some("micrometer".into())); 3],
            scale: vec![0.008, 0.004, 0.004],
            translation: vec![0.016, 0.0, 0.004],
            base: None,
        };
        let g = resolve(&MetaInputs {
            ndim: 3,
            ome: Some(level),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(g.voxel_size, Coordinate::from([8, 4, 4]));
        assert_eq!(g.offset, Coordinate::from([16, 0, 4]));
        assert_eq!(g.units, vec!["nm"; 3]);
        assert_eq!(g.stored_offset, vec![0.016, 0.0, 0.004]);
        assert!(g.on_grid());
        // A fraction of a nm is rounded, and says so.
        let g = geo(
            3,
            json!({"resolution": [8, 8, 8], "offset": [16.4, 0, 0]}),
            false,
        )
        .unwrap();
        assert_eq!(g.offset, Coordinate::from([16, 0, 0]));
        assert!(g.offset_notes[0]
            .contains("16.4 nm on axis z is not a whole number of nm: rounded to 16 nm"));
    }

    #[test]
    fn dacapo_035_offsets_in_voxels_are_recognised() {
        // DaCapo 0.3.5 wrote the world offset [40, 40, 40] at 4 nm as [10, 10, 10].
        let written = json!({"voxel_size": [4, 4, 4], "offset": [10, 10, 10],
            "axis_names": ["z", "y", "x"], "units": ["", "", ""]});
        let g = geo(3, written, false).unwrap();
        assert_eq!(g.offset, Coordinate::from([40, 40, 40]));
        assert_eq!(g.stored_offset, vec![10.0, 10.0, 10.0]);
        assert!(
            g.offset_notes[0]
                .contains("offset [10, 10, 10] is in voxels, as DaCapo 0.3.5 wrote it"),
            "{:?}",
            g.offset_notes
        );
        assert!(g.offset_notes[0].contains("read as [40, 40, 40] nm"));
        // On the grid it cannot be told apart from a newer DaCapo's nm offset: read as nm,
        // with a note.
        let g = geo(
            3,
            json!({"voxel_size": [4, 4, 4], "offset": [8, 0, 0],
            "axis_names": ["z", "y", "x"], "units": ["", "", ""]}),
            false,
        )
        .unwrap();
        assert_eq!(g.offset, Coordinate::from([8, 0, 0]));
        assert!(g.offset_notes[0].contains("read in nm because it lies on the voxel grid"));
        // Segno's own arrays (with `resolution`) and nm units are never reinterpreted.
        let g = geo(
            3,
            json!({"voxel_size": [4, 4, 4], "resolution": [4, 4, 4], "offset": [10, 10, 10],
            "axis_names": ["z", "y", "x"], "units": ["nm", "nm", "nm"]}),
            false,
        )
        .unwrap();
        assert_eq!(g.offset, Coordinate::from([10, 10, 10]));
    }

    #[test]
    fn coarser_ome_levels_line_up_with_the_finest() {
        let attrs = json!({"multiscales": [{"axes": [
                {"name": "z", "type": "space", "unit": "nanometer"},
                {"name": "y", "type": "space", "unit": "nanometer"},
                {"name": "x", "type": "space", "unit": "nanometer"}],
            "datasets": [
                {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [8, 4, 4]}, {"type": "translation", "translation": [80, 40, 40]}]},
                {"path": "s1", "coordinateTransformations": [{"type": "scale", "scale": [16, 8, 8]}, {"type": "translation", "translation": [84, 42, 42]}]},
                {"path": "s2", "coordinateTransformations": [{"type": "scale", "scale": [32, 16, 16]}, {"type": "translation", "translation": [80, 40, 40]}]},
                {"path": "s3", "coordinateTransformations": [{"type": "scale", "scale": [64, 32, 32]}, {"type": "translation", "translation": [90, 40, 40]}]}]}]});
        let levels = ome_levels(attrs.as_object().unwrap()).unwrap();
        let geo_of = |i: usize| {
            resolve(&MetaInputs {
                ndim: 3,
                ome: Some(levels[i].1.clone()),
                ..Default::default()
            })
            .unwrap()
        };
        assert_eq!(levels[0].1.axes[2].0, "x");
        // s0 is the reference; s1 (centre convention) has its corner where s0's is.
        assert_eq!(geo_of(0).offset, Coordinate::from([80, 40, 40]));
        let s1 = geo_of(1);
        assert_eq!(s1.offset, Coordinate::from([80, 40, 40]));
        assert_eq!(s1.stored_offset, vec![84.0, 42.0, 42.0]);
        assert!(s1.offset_notes[0].contains("locates the first voxel's centre"));
        // s2 translated like s0: corners.
        assert_eq!(geo_of(2).offset, Coordinate::from([80, 40, 40]));
        // s3 by neither convention: exactly 90 − (64 − 8)/2 = 62 nm, off its grid, said so.
        let s3 = geo_of(3);
        assert_eq!(s3.offset, Coordinate::from([62, 26, 26]));
        assert!(!s3.on_grid());
        assert!(s3
            .offset_notes
            .iter()
            .any(|n| n.contains("off the voxel grid")));
    }

    #[test]
    fn bad_attributes_are_named() {
        let err = geo(3, json!({"resolution": [8, 4]}), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute `voxel_size`: has 2 entries but the array has 3 spatial axes"
        );
        let err = geo(3, json!({"resolution": "8nm"}), false).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("attribute `resolution`: expected a list"),
            "{err}"
        );
        let err = geo(3, json!({"resolution": [8, 4, 3.5]}), false).unwrap_err();
        assert!(
            err.to_string().contains("not a positive whole number"),
            "{err}"
        );
        let err = geo(3, json!({"axes": ["c", "z"]}), false).unwrap_err();
        assert!(err.to_string().contains("lists 2 axes"), "{err}");
    }

    #[test]
    fn ome_multiscales_04_and_05() {
        let ms = json!([{"axes": [{"name": "c", "type": "channel"}, {"name": "z", "type": "space", "unit": "nanometer"}, {"name": "y", "type": "space", "unit": "nanometer"}, {"name": "x", "type": "space", "unit": "nanometer"}],
            "datasets": [{"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [1, 8, 4, 4]}, {"type": "translation", "translation": [0, 16, 8, 4]}]},
                         {"path": "s1", "coordinateTransformations": [{"type": "scale", "scale": [1, 16, 8, 8]}]}]}]);
        for doc in [
            json!({"multiscales": ms}),
            json!({"ome": {"version": "0.5", "multiscales": ms}}),
        ] {
            let levels = ome_levels(doc.as_object().unwrap()).unwrap();
            assert_eq!(levels.len(), 2);
            assert_eq!(levels[1].0, "s1");
            let g = resolve(&MetaInputs {
                ndim: 4,
                ome: Some(levels[0].1.clone()),
                ..Default::default()
            })
            .unwrap();
            assert_eq!(g.voxel_size, Coordinate::from([8, 4, 4]));
            assert_eq!(g.offset, Coordinate::from([16, 8, 4]));
            assert!(!g.axes[0].spatial);
        }
    }
}
