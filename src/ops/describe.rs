//! What an array is: format, element type, shape, chunking, geometry in nanometres, and
//! the scale levels of the multiscale image it belongs to (`segno array info`).

use std::path::Path;

use serde::Serialize;

use super::{OpsError, RoiNm};
use crate::array::{self, zarr};
use crate::geometry::Roi;

/// One axis of an array as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AxisDescription {
    /// The axis name as written (`z`, `c^`).
    pub name: String,
    /// Whether the axis is spatial (else a channel axis).
    pub spatial: bool,
}

/// One level of the multiscale image an array belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelDescription {
    /// The level's path inside its image group (`s0`, `s1`, …).
    pub path: String,
    /// The level's voxel size in nm.
    pub voxel_size_nm: Vec<i64>,
    /// The level's offset in nm.
    pub offset_nm: Vec<i64>,
    /// The level's shape in voxels.
    pub shape: Vec<u64>,
}

/// Everything `segno array info` tells about an array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayDescription {
    /// The array's path as opened.
    pub path: String,
    /// The storage format (`zarr v2`, `zarr v3`, `n5`).
    pub format: &'static str,
    /// The element type's short name (`uint8`, `float32`).
    pub data_type: String,
    /// The element type as shown to people.
    #[serde(skip)]
    pub data_type_label: String,
    /// The shape in voxels, channel axes included.
    pub shape: Vec<u64>,
    /// The chunk shape in voxels.
    pub chunk_shape: Vec<u64>,
    /// The shard shape, for sharded zarr v3 arrays.
    pub shard_shape: Option<Vec<u64>>,
    /// Every axis, in storage order.
    pub axes: Vec<AxisDescription>,
    /// The number of channels (1 without a channel axis).
    pub channels: u64,
    /// The voxel size in nm, spatial axes only.
    pub voxel_size_nm: Vec<i64>,
    /// The offset in nm as Segno reads it.
    pub offset_nm: Vec<i64>,
    /// The offset exactly as the metadata stores it.
    pub offset_as_stored: Vec<f64>,
    /// Whether the offset is a whole number of voxels.
    pub on_voxel_grid: bool,
    /// How the stored offset was read, when that needs saying.
    pub offset_notes: Vec<String>,
    /// The region the array covers, in nm.
    pub roi_nm: RoiNm,
    /// The units of the spatial axes.
    pub units: Vec<String>,
    /// The codecs, as text.
    pub codecs: String,
    /// The fill value as stored.
    pub fill_value: serde_json::Value,
    /// Which metadata the geometry came from.
    pub metadata: &'static str,
    /// The levels of the multiscale image holding the array (empty for a plain array).
    pub scale_levels: Vec<LevelDescription>,
    /// Which of `scale_levels` is the array described.
    pub current_level: Option<String>,
    /// The region the array covers.
    #[serde(skip)]
    pub roi: Roi,
}

/// Describes the array (or multiscale group, by its finest level) at `path`.
pub fn describe_array(path: &Path) -> Result<ArrayDescription, OpsError> {
    let a = array::open(path)?;
    let info = a.info();
    let (container, inner) = array::split_container_path(path);
    // Scale levels: of the group named, or of the multiscale group holding this array.
    let mut levels = zarr::scale_levels(&container, &inner).unwrap_or_default();
    let mut current = levels.first().map(|l| l.path.clone());
    if levels.is_empty() {
        let inner = inner.trim_matches('/');
        let (parent, name) = inner.rsplit_once('/').unwrap_or(("", inner));
        if !name.is_empty() {
            let siblings = zarr::scale_levels(&container, parent).unwrap_or_default();
            if siblings.iter().any(|l| l.path == name) {
                levels = siblings;
                current = Some(name.to_string());
            }
        }
    }
    let g = &info.geometry;
    Ok(ArrayDescription {
        path: info.path.clone(),
        format: info.format,
        data_type: info.data_type.name().to_string(),
        data_type_label: info.data_type.to_string(),
        shape: info.shape.clone(),
        chunk_shape: info.chunk_shape.clone(),
        shard_shape: info.shard_shape.clone(),
        axes: g
            .axes
            .iter()
            .map(|a| AxisDescription {
                name: a.name.clone(),
                spatial: a.spatial,
            })
            .collect(),
        channels: info.channels(),
        voxel_size_nm: g.voxel_size.to_vec(),
        offset_nm: g.offset.to_vec(),
        offset_as_stored: g.stored_offset.clone(),
        on_voxel_grid: g.on_grid(),
        offset_notes: g.offset_notes.clone(),
        roi_nm: RoiNm::from(&info.roi),
        units: g.units.clone(),
        codecs: info.codecs.clone(),
        fill_value: info.fill_value.clone(),
        metadata: g.source,
        scale_levels: levels
            .iter()
            .map(|l| LevelDescription {
                path: l.path.clone(),
                voxel_size_nm: l.info.geometry.voxel_size.to_vec(),
                offset_nm: l.info.geometry.offset.to_vec(),
                shape: l.info.shape.clone(),
            })
            .collect(),
        current_level: current,
        roi: info.roi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::write::{self, ArraySpec, WriteMode};
    use crate::array::DataType;
    use crate::geometry::Coordinate;

    #[test]
    fn a_level_of_a_multiscale_image_names_its_siblings_and_itself() {
        let dir = tempfile::tempdir().unwrap();
        let container = dir.path().join("d.zarr");
        let roi = Roi::new(
            Coordinate::from([40, 0, 0]),
            Coordinate::from([128, 128, 128]),
        )
        .unwrap();
        let spec = ArraySpec::new(DataType::U8, roi, Coordinate::from([4, 4, 4]), None);
        write::create_image(&container, "raw", &spec, 2, WriteMode::CreateNew).unwrap();
        let d = describe_array(&container.join("raw/s1")).unwrap();
        assert_eq!(d.voxel_size_nm, vec![8, 8, 8]);
        assert_eq!(d.shape, vec![16, 16, 16]);
        assert_eq!(d.data_type, "uint8");
        assert_eq!(d.channels, 1);
        let paths: Vec<&str> = d.scale_levels.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["s0", "s1"]);
        assert_eq!(d.scale_levels[0].voxel_size_nm, vec![4, 4, 4]);
        assert_eq!(d.scale_levels[0].offset_nm, vec![40, 0, 0]);
        assert_eq!(d.current_level.as_deref(), Some("s1"));
        // The group itself is described by its finest level.
        let g = describe_array(&container.join("raw")).unwrap();
        assert_eq!(g.voxel_size_nm, vec![4, 4, 4]);
        assert_eq!(g.offset_nm, vec![40, 0, 0]);
        assert_eq!(
            g.roi_nm,
            RoiNm {
                offset: vec![40, 0, 0],
                shape: vec![128, 128, 128]
            }
        );
        assert!(g.on_voxel_grid);
        assert_eq!(g.current_level.as_deref(), Some("s0"));
    }

    #[test]
    fn a_missing_array_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.zarr/raw");
        let e = describe_array(&path).unwrap_err().to_string();
        assert!(e.contains("none.zarr"), "{e}");
    }
}
