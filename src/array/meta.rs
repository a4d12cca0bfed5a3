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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Every axis of the stored array, in storage (C) order.
    pub axes: Vec<Axis>,
    /// Size of one voxel along each spatial axis, in nm.
    pub voxel_size: Coordinate,
    /// World position of the first voxel's corner, in nm (a multiple of the voxel size).
    pub offset: Coordinate,
    /// Unit of each spatial axis (`nm` after conversion when the unit was known).
    pub units: Vec<String>,
    /// Which attribute dialect the geometry came from (for `array info`).
    pub source: &'static str,
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
}

/// Whether an axis name denotes a non-spatial axis (channel, sample, batch, time, …).
pub fn is_non_spatial_name(name: &str) -> bool {
    name.ends_with('^') || matches!(name, "c" | "s" | "b" | "t" | "channel" | "channels")
}

/// Nanometres per unit for the length units OME-NGFF and funlib write.
fn nm_per_unit(unit: &str) -> Option<f64> {
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
                v.as_f64()
                    .ok_or_else(|| bad(key, format!("expected numbers, found {v}")))
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
    let (source, vs, off, units): Dialect = if let Some(level) = &inputs.ome {
        let units = level
            .axes
            .iter()
            .zip(&axes)
            .filter(|(_, a)| a.spatial)
            .map(|((_, _, u), _)| u.clone().unwrap_or_default())
            .collect();
        (
            "OME-NGFF multiscales",
            Some(spatial_only("scale", level.scale.clone())?),
            Some(spatial_only("translation", level.translation.clone())?),
            Some(units),
        )
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
    let mut offset = Vec::with_capacity(dims);
    for i in 0..dims {
        let nm = vs[i] * factors[i];
        let whole = nm.round();
        if !(nm.is_finite() && nm > 0.0) || (nm - whole).abs() > 1e-6 * whole.max(1.0) {
            return Err(bad(
                "voxel_size",
                format!(
                    "{} {} on axis {} is not a positive whole number of nanometres",
                    vs[i], units[i], axes[spatial[i]].name
                ),
            ));
        }
        let vs_nm = whole as i64;
        // Offsets snap to the voxel grid (pixel-corner convention): ((o + vs/2) // vs) · vs.
        let o = off[i] * factors[i];
        let snapped = ((o + vs_nm as f64 / 2.0) / vs_nm as f64).floor() as i64 * vs_nm;
        voxel_size.push(vs_nm);
        offset.push(snapped);
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
    })
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
            },
        ));
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
    fn offsets_snap_to_the_voxel_grid_and_units_convert() {
        let g = geo(
            3,
            json!({"resolution": [8, 4, 4], "offset": [13, 5, 6]}),
            false,
        )
        .unwrap();
        assert_eq!(g.offset, Coordinate::from([16, 4, 8]));
        let level = OmeLevel {
            axes: vec![("z".into(), "space".into(), Some("micrometer".into())); 3],
            scale: vec![0.008, 0.004, 0.004],
            translation: vec![0.016, 0.0, 0.004],
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
