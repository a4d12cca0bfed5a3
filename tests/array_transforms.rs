//! Every lazy array transform, opened from configs over small arrays with known values.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use segno::array::open::open_config;
use segno::array::write::{self, ArraySpec, WriteMode};
use segno::array::{ArrayData, ArrayError, ArraySource, DataType};
use segno::config::{
    ArrayConfig, BinarizeArrayConfig, ConcatArrayConfig, ConstantArrayConfig, CropArrayConfig,
    DVIDArrayConfig, DummyArrayConfig, IntensitiesArrayConfig, LogicalOrArrayConfig,
    MergeInstancesArrayConfig, MissingAnnotationsMaskConfig, OnesArrayConfig, ResampledArrayConfig,
    SumArrayConfig, TiffArrayConfig, ZarrArrayConfig,
};
use segno::geometry::{Coordinate, Roi};

fn roi(offset: [i64; 3], shape: [i64; 3]) -> Roi {
    Roi::new(Coordinate::from(offset), Coordinate::from(shape)).unwrap()
}

/// Writes a 3D array into `container/name` and returns its Zarr config.
fn zarr(dir: &Path, name: &str, data: ArrayData, vs: [i64; 3], offset: [i64; 3]) -> ArrayConfig {
    let shape = data.shape().to_vec();
    let size: Vec<i64> = shape.iter().zip(vs).map(|(n, v)| *n as i64 * v).collect();
    let region = Roi::new(Coordinate::from(offset), Coordinate::new(&size).unwrap()).unwrap();
    let mut spec = ArraySpec::new(data.data_type(), region, Coordinate::from(vs), None);
    spec.chunk_voxels = Some(vec![3, 3, 3]);
    let w = write::create(&dir.join("data.zarr"), name, &spec, WriteMode::Overwrite).unwrap();
    w.write(&region, &data).unwrap();
    ArrayConfig::Zarr(ZarrArrayConfig {
        name: name.to_string(),
        file_name: "data.zarr".into(),
        dataset: name.to_string(),
        snap_to_grid: None,
        axes: None,
        mode: None,
        ome_metadata: false,
    })
}

fn labels(shape: [usize; 3], f: impl Fn(usize, usize, usize) -> u64) -> ArrayData {
    ArrayData::U64(ArrayD::from_shape_fn(IxDyn(&shape), |i| {
        f(i[0], i[1], i[2])
    }))
}

fn all(a: &dyn ArraySource) -> ndarray::ArrayD<f64> {
    a.read(&a.info().roi).unwrap().to_f64()
}

#[test]
fn binarize_concat_logical_or_and_constants() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    // ids 0..5 cycling along x
    let gt = zarr(
        base,
        "gt",
        labels([2, 3, 6], |_, _, x| x as u64),
        [8, 8, 8],
        [0, 0, 0],
    );
    let bin = ArrayConfig::Binarize(BinarizeArrayConfig {
        name: "bin".into(),
        source_array_config: Box::new(gt.clone()),
        groupings: vec![
            ("mito".into(), vec![1, 2]),
            ("any".into(), vec![]),
            ("er".into(), vec![5]),
        ],
        background: 0,
    });
    let a = open_config(&bin, base).unwrap();
    assert_eq!(a.info().data_type, DataType::U8);
    assert_eq!(a.info().shape, vec![3, 2, 3, 6]);
    assert_eq!(a.info().channels(), 3);
    let v = all(a.as_ref());
    let lane = |c: usize| (0..6).map(|x| v[[c, 1, 2, x]]).collect::<Vec<_>>();
    assert_eq!(lane(0), vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    assert_eq!(lane(1), vec![0.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    assert_eq!(lane(2), vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    // Background other than 0.
    let bg = ArrayConfig::Binarize(BinarizeArrayConfig {
        name: "bg".into(),
        source_array_config: Box::new(gt.clone()),
        groupings: vec![("fg".into(), vec![])],
        background: 3,
    });
    let v = all(open_config(&bg, base).unwrap().as_ref());
    assert_eq!(
        (0..6).map(|x| v[[0, 0, 0, x]]).collect::<Vec<_>>(),
        vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    );

    // LogicalOr over the channels = any of mito/any/er.
    let or = ArrayConfig::LogicalOr(LogicalOrArrayConfig {
        name: "or".into(),
        source_array_config: Box::new(bin.clone()),
    });
    let o = open_config(&or, base).unwrap();
    assert_eq!(o.info().shape, vec![2, 3, 6]);
    let v = all(o.as_ref());
    assert_eq!(
        (0..6).map(|x| v[[0, 1, x]]).collect::<Vec<_>>(),
        vec![0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    );

    // Concat in channel order with a default and a missing channel (zeros).
    let single = |name: &str, ids: Vec<u64>| {
        ArrayConfig::Binarize(BinarizeArrayConfig {
            name: name.into(),
            source_array_config: Box::new(gt.clone()),
            groupings: vec![(name.into(), ids)],
            background: 0,
        })
    };
    let mut sources = BTreeMap::new();
    sources.insert("er".to_string(), single("er", vec![5]));
    sources.insert("mito".to_string(), single("mito", vec![1, 2]));
    let cat = ArrayConfig::Concat(ConcatArrayConfig {
        name: "cat".into(),
        channels: vec!["mito".into(), "nuc".into(), "er".into()],
        source_array_configs: sources.clone(),
        default_config: None,
    });
    let c = open_config(&cat, base).unwrap();
    assert_eq!(c.info().shape, vec![3, 2, 3, 6]);
    let v = all(c.as_ref());
    assert_eq!(
        (0..6).map(|x| v[[0, 0, 0, x]]).collect::<Vec<_>>(),
        vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    );
    assert!((0..6).all(|x| v[[1, 0, 0, x]] == 0.0));
    assert_eq!(v[[2, 0, 0, 5]], 1.0);
    let with_default = ArrayConfig::Concat(ConcatArrayConfig {
        name: "cat2".into(),
        channels: vec!["mito".into(), "nuc".into()],
        source_array_configs: sources.into_iter().filter(|(k, _)| k == "mito").collect(),
        default_config: Some(Box::new(ArrayConfig::Constant(ConstantArrayConfig {
            name: "ones".into(),
            source_array_config: Box::new(single("ref", vec![])),
            constant: 1,
        }))),
    });
    let v = all(open_config(&with_default, base).unwrap().as_ref());
    assert!((0..6).all(|x| v[[1, 1, 2, x]] == 1.0));

    // Constant keeps the source type; Ones is boolean true.
    let k = open_config(
        &ArrayConfig::Constant(ConstantArrayConfig {
            name: "k".into(),
            source_array_config: Box::new(gt.clone()),
            constant: 7,
        }),
        base,
    )
    .unwrap();
    assert_eq!(k.info().data_type, DataType::U64);
    assert!(all(k.as_ref()).iter().all(|v| *v == 7.0));
    let ones = open_config(
        &ArrayConfig::Ones(OnesArrayConfig {
            name: "o".into(),
            source_array_config: Box::new(gt),
        }),
        base,
    )
    .unwrap();
    assert_eq!(ones.info().data_type, DataType::Bool);
    assert!(all(ones.as_ref()).iter().all(|v| *v == 1.0));
}

#[test]
fn intensities_crop_sum_and_merge_instances() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let raw_data = ArrayData::U8(ArrayD::from_shape_fn(IxDyn(&[4, 4, 4]), |i| {
        (i[0] * 64 + i[1] * 16 + i[2] * 4) as u8
    }));
    let raw = zarr(base, "raw", raw_data, [4, 4, 4], [8, 8, 8]);
    let norm = ArrayConfig::Intensities(IntensitiesArrayConfig {
        name: "n".into(),
        source_array_config: Box::new(raw.clone()),
        min: 0.0,
        max: 255.0,
    });
    let n = open_config(&norm, base).unwrap();
    assert_eq!(n.info().data_type, DataType::F32);
    let v = all(n.as_ref());
    assert!((v[[3, 3, 3]] - 252.0 / 255.0).abs() < 1e-6);
    assert_eq!(v[[0, 0, 0]], 0.0);

    let crop = ArrayConfig::Crop(CropArrayConfig {
        name: "c".into(),
        source_array_config: Box::new(raw.clone()),
        roi: roi([12, 0, 12], [8, 100, 100]),
    });
    let c = open_config(&crop, base).unwrap();
    assert_eq!(c.info().roi, roi([12, 8, 12], [8, 16, 12]));
    let v = all(c.as_ref());
    assert_eq!(v.shape(), &[2, 4, 3]);
    assert_eq!(v[[0, 0, 0]], (64 + 4) as f64);
    let err = c.read(&roi([8, 8, 8], [4, 4, 4])).unwrap_err();
    assert!(matches!(err, ArrayError::OutOfBounds { .. }), "{err}");
    let bad = ArrayConfig::Crop(CropArrayConfig {
        name: "c2".into(),
        source_array_config: Box::new(raw.clone()),
        roi: roi([10, 8, 8], [4, 4, 4]),
    });
    let err = open_config(&bad, base).err().unwrap();
    assert!(
        err.to_string().contains("c2")
            && err
                .to_string()
                .contains("offset (10, 8, 8) nm is not on the voxel grid"),
        "{err}"
    );

    let a = zarr(
        base,
        "a",
        labels([1, 2, 4], |_, y, x| if x == 0 { 0 } else { (y + 1) as u64 }),
        [4, 4, 4],
        [0, 0, 0],
    );
    let b = zarr(
        base,
        "b",
        labels([1, 2, 4], |_, _, x| if x >= 2 { 5 } else { 0 }),
        [4, 4, 4],
        [0, 0, 0],
    );
    let sum = open_config(
        &ArrayConfig::Sum(SumArrayConfig {
            name: "s".into(),
            source_array_configs: vec![a.clone(), b.clone()],
        }),
        base,
    )
    .unwrap();
    let v = all(sum.as_ref());
    assert_eq!(
        (0..4).map(|x| v[[0, 1, x]]).collect::<Vec<_>>(),
        vec![0.0, 2.0, 7.0, 7.0]
    );
    // Merge: ids of b are shifted past a's maximum (2); a wins where both label a voxel.
    let merged = open_config(
        &ArrayConfig::MergeInstances(MergeInstancesArrayConfig {
            name: "m".into(),
            source_array_configs: vec![a, b],
        }),
        base,
    )
    .unwrap();
    assert_eq!(merged.info().data_type, DataType::U64);
    let v = all(merged.as_ref());
    assert_eq!(
        (0..4).map(|x| v[[0, 0, x]]).collect::<Vec<_>>(),
        vec![0.0, 1.0, 1.0, 1.0]
    );
    let c = zarr(
        base,
        "c",
        labels([1, 2, 4], |_, _, x| if x == 0 { 3 } else { 0 }),
        [4, 4, 4],
        [0, 0, 0],
    );
    let d = zarr(
        base,
        "d",
        labels([1, 2, 4], |_, _, x| if x == 0 { 0 } else { 1 }),
        [4, 4, 4],
        [0, 0, 0],
    );
    let merged = open_config(
        &ArrayConfig::MergeInstances(MergeInstancesArrayConfig {
            name: "m2".into(),
            source_array_configs: vec![c, d],
        }),
        base,
    )
    .unwrap();
    let v = all(merged.as_ref());
    assert_eq!(
        (0..4).map(|x| v[[0, 1, x]]).collect::<Vec<_>>(),
        vec![3.0, 4.0, 4.0, 4.0]
    );
}

#[test]
fn missing_annotations_mask_uses_the_annotation_state() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let gt = zarr(
        base,
        "crop",
        labels([1, 1, 4], |_, _, x| x as u64),
        [4, 4, 4],
        [0, 0, 0],
    );
    // Mark id 2 as present but not annotated (CellMap's annotationState).
    let attrs_path = base.join("data.zarr/crop/s0/.zattrs");
    let mut attrs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&attrs_path).unwrap()).unwrap();
    attrs["labels"] = serde_json::json!([
        {"value": 1, "annotationState": {"present": true, "annotated": true}},
        {"value": 2, "annotationState": {"present": true, "annotated": false}},
    ]);
    std::fs::write(&attrs_path, serde_json::to_string(&attrs).unwrap()).unwrap();
    let cfg = ArrayConfig::MissingAnnotationsMask(MissingAnnotationsMaskConfig {
        name: "mask".into(),
        source_array_config: Box::new(gt),
        groupings: vec![("a".into(), vec![1]), ("b".into(), vec![2, 3])],
    });
    let m = open_config(&cfg, base).unwrap();
    let v = all(m.as_ref());
    assert_eq!(
        (0..4).map(|x| v[[0, 0, 0, x]]).collect::<Vec<_>>(),
        vec![0.0, 1.0, 1.0, 1.0]
    );
    assert!((0..4).all(|x| v[[1, 0, 0, x]] == 0.0));
}

#[test]
fn resampling_by_two_and_four_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    // Labels: 8 voxels of 8 nm along x with ids 1..8; intensities a ramp.
    let lab = zarr(
        base,
        "lab",
        labels([1, 1, 8], |_, _, x| x as u64 + 1),
        [8, 8, 8],
        [0, 0, 0],
    );
    let ramp = zarr(
        base,
        "ramp",
        ArrayData::F32(ArrayD::from_shape_fn(IxDyn(&[1, 1, 8]), |i| {
            (i[2] * 8) as f32
        })),
        [8, 8, 8],
        [0, 0, 0],
    );
    let resampled = |name: &str, src: &ArrayConfig, up: [i64; 3], down: [i64; 3], interp: bool| {
        let cfg = ArrayConfig::Resampled(ResampledArrayConfig {
            name: name.into(),
            source_array_config: Box::new(src.clone()),
            upsample: Coordinate::from(up),
            downsample: Coordinate::from(down),
            interp_order: interp,
        });
        open_config(&cfg, base).unwrap()
    };
    let row = |a: &dyn ArraySource| {
        let v = all(a);
        let n = v.shape()[2];
        (0..n).map(|x| v[[0, 0, x]]).collect::<Vec<f64>>()
    };

    // Up ×2 and ×4: labels repeat, never interpolated.
    let up2 = resampled("up2", &lab, [1, 1, 2], [1, 1, 1], false);
    assert_eq!(up2.info().geometry.voxel_size, Coordinate::from([8, 8, 4]));
    assert_eq!(up2.info().roi, roi([0, 0, 0], [8, 8, 64]));
    assert_eq!(
        row(up2.as_ref()),
        vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 8.0]
    );
    let up4 = resampled("up4", &lab, [1, 1, 4], [1, 1, 1], false);
    assert_eq!(up4.info().geometry.voxel_size, Coordinate::from([8, 8, 2]));
    let r = row(up4.as_ref());
    assert_eq!(r.len(), 32);
    assert_eq!(&r[4..9], &[2.0, 2.0, 2.0, 2.0, 3.0]);
    // A read of an unaligned sub-region (offset 6 nm is on the 2 nm grid, not on 8 nm).
    let part = up4.read(&roi([0, 0, 6], [8, 8, 6])).unwrap().to_f64();
    assert_eq!(
        part.iter().copied().collect::<Vec<_>>(),
        vec![1.0, 2.0, 2.0]
    );

    // Intensities interpolate linearly between voxel centres (edges replicate).
    let ramp2 = resampled("ramp2", &ramp, [1, 1, 2], [1, 1, 1], true);
    assert_eq!(row(ramp2.as_ref())[..6], [0.0, 2.0, 6.0, 10.0, 14.0, 18.0]);
    let ramp4 = resampled("ramp4", &ramp, [1, 1, 4], [1, 1, 1], true);
    assert_eq!(row(ramp4.as_ref())[..6], [0.0, 0.0, 1.0, 3.0, 5.0, 7.0]);
    // Sub-region reads give the same values as the whole read.
    let part = ramp4.read(&roi([0, 0, 10], [8, 8, 4])).unwrap().to_f64();
    assert_eq!(part.iter().copied().collect::<Vec<_>>(), vec![7.0, 9.0]);

    // Down ÷2 and ÷4: labels take the most frequent id (ties: the smaller), intensities the mean.
    let lab_pairs = zarr(
        base,
        "pairs",
        labels([1, 1, 8], |_, _, x| [1, 1, 2, 3, 3, 3, 4, 9][x]),
        [8, 8, 8],
        [0, 0, 0],
    );
    let d2 = resampled("d2", &lab_pairs, [1, 1, 1], [1, 1, 2], false);
    assert_eq!(d2.info().geometry.voxel_size, Coordinate::from([8, 8, 16]));
    assert_eq!(row(d2.as_ref()), vec![1.0, 2.0, 3.0, 4.0]);
    let d4 = resampled("d4", &lab_pairs, [1, 1, 1], [1, 1, 4], false);
    assert_eq!(row(d4.as_ref()), vec![1.0, 3.0]);
    let m2 = resampled("m2", &ramp, [1, 1, 1], [1, 1, 2], true);
    assert_eq!(row(m2.as_ref()), vec![4.0, 20.0, 36.0, 52.0]);
    let m4 = resampled("m4", &ramp, [1, 1, 1], [1, 1, 4], true);
    assert_eq!(row(m4.as_ref()), vec![12.0, 44.0]);

    // A ratio that does not give whole nanometres is an error naming the config.
    let bad = ArrayConfig::Resampled(ResampledArrayConfig {
        name: "odd".into(),
        source_array_config: Box::new(lab),
        upsample: Coordinate::from([1, 1, 3]),
        downsample: Coordinate::from([1, 1, 1]),
        interp_order: false,
    });
    let err = open_config(&bad, base).err().unwrap();
    assert!(
        err.to_string().contains("odd") && err.to_string().contains("non-integer"),
        "{err}"
    );
}

#[test]
fn snap_to_grid_axes_tiff_dummy_and_dvid() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let raw = zarr(
        base,
        "raw",
        labels([5, 5, 5], |z, _, _| z as u64),
        [4, 4, 4],
        [4, 0, 0],
    );
    let ArrayConfig::Zarr(mut z) = raw else {
        unreachable!()
    };
    z.snap_to_grid = Some(Coordinate::from([8, 8, 8]));
    let a = open_config(&ArrayConfig::Zarr(z.clone()), base).unwrap();
    assert_eq!(a.info().roi, roi([8, 0, 0], [16, 16, 16]));
    // A missing container names the config's path.
    z.file_name = "missing.zarr".into();
    z.snap_to_grid = None;
    let err = open_config(&ArrayConfig::Zarr(z), base).err().unwrap();
    assert!(err.to_string().contains("missing.zarr"), "{err}");

    // TIFF stack: pages are z slices; the region is offset + shape × voxel size.
    let path = base.join("stack.tif");
    {
        let mut file = std::fs::File::create(&path).unwrap();
        let mut enc = tiff::encoder::TiffEncoder::new(&mut file).unwrap();
        for z in 0..3u8 {
            let page: Vec<u8> = (0..(4 * 5)).map(|i| z * 100 + i as u8).collect();
            enc.write_image::<tiff::encoder::colortype::Gray8>(5, 4, &page)
                .unwrap();
        }
    }
    let t = open_config(
        &ArrayConfig::Tiff(TiffArrayConfig {
            name: "t".into(),
            file_name: "stack.tif".into(),
            offset: Coordinate::from([40, 0, 0]),
            voxel_size: Coordinate::from([40, 4, 4]),
            axis_names: vec!["z".into(), "y".into(), "x".into()],
            units: vec![],
        }),
        base,
    )
    .unwrap();
    assert_eq!(t.info().roi, roi([40, 0, 0], [120, 16, 20]));
    let v = all(t.as_ref());
    assert_eq!(v[[2, 1, 3]], 200.0 + 8.0);

    let d = open_config(
        &ArrayConfig::Dummy(DummyArrayConfig { name: "d".into() }),
        base,
    )
    .unwrap();
    assert_eq!(d.info().roi, roi([0, 0, 0], [100, 100, 100]));
    assert_eq!(d.info().shape, vec![100, 50, 50]);

    let err = open_config(
        &ArrayConfig::Dvid(DVIDArrayConfig {
            name: "dv".into(),
            source: ("a".into(), "b".into(), "c".into()),
        }),
        base,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("DVID server"), "{err}");
}

#[test]
fn open_mode_ome_metadata_tiff_units_and_crop_offsets_act_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let raw = zarr(
        base,
        "raw",
        labels([5, 5, 5], |z, _, _| z as u64),
        [4, 4, 4],
        [4, 0, 0],
    );
    let ArrayConfig::Zarr(z) = raw.clone() else {
        unreachable!()
    };
    // `w` and `w-` would create or empty the array in DaCapo: refused, nothing touched.
    let chunks = base.join("data.zarr/raw/s0");
    let listing = |p: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = listing(&chunks);
    for mode in ["w", "w-"] {
        let mut c = z.clone();
        c.mode = Some(mode.into());
        let err = open_config(&ArrayConfig::Zarr(c.clone()), base)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(&format!("mode: `{mode}` would create or empty the array")),
            "{err}"
        );
        let problems = segno::config::AnyConfig::Array(ArrayConfig::Zarr(c)).problems();
        assert!(problems.to_string().contains("mode: `"), "{problems}");
    }
    assert_eq!(listing(&chunks), before);
    for mode in ["r", "r+", "a"] {
        let mut c = z.clone();
        c.mode = Some(mode.into());
        assert!(open_config(&ArrayConfig::Zarr(c), base).is_ok(), "{mode}");
    }
    // ome_metadata demands an OME-NGFF level: Segno's own arrays are, a plain zarr-python
    // array (DaCapo's attributes) is not.
    let mut ome = z.clone();
    ome.ome_metadata = true;
    assert!(open_config(&ArrayConfig::Zarr(ome.clone()), base).is_ok());
    ome.file_name = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/arrays/v2.zarr").into();
    ome.dataset = "raw_blosc".into();
    let err = open_config(&ArrayConfig::Zarr(ome.clone()), base)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("ome_metadata: ")
            && err.contains("is not a level of an OME-NGFF multiscale image"),
        "{err}"
    );
    ome.ome_metadata = false;
    assert!(open_config(&ArrayConfig::Zarr(ome), base).is_ok());

    // A crop whose offset is off the voxel grid names the offset.
    let err = open_config(
        &ArrayConfig::Crop(CropArrayConfig {
            name: "c".into(),
            source_array_config: Box::new(raw),
            roi: roi([6, 0, 0], [8, 8, 8]),
        }),
        base,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("its offset (6, 0, 0) nm is not on the voxel grid")
            && err.contains("e.g. (4, 0, 0)"),
        "{err}"
    );

    // TIFF units convert voxel size and offset to nm; axis names are kept.
    let path = base.join("stack.tif");
    {
        let mut file = std::fs::File::create(&path).unwrap();
        let mut enc = tiff::encoder::TiffEncoder::new(&mut file).unwrap();
        for _ in 0..2 {
            enc.write_image::<tiff::encoder::colortype::Gray8>(3, 2, &[0u8; 6])
                .unwrap();
        }
    }
    let tiff = |units: Vec<&str>, names: Vec<&str>| {
        open_config(
            &ArrayConfig::Tiff(TiffArrayConfig {
                name: "t".into(),
                file_name: "stack.tif".into(),
                offset: Coordinate::from([1, 0, 0]),
                voxel_size: Coordinate::from([1, 1, 1]),
                axis_names: names.into_iter().map(String::from).collect(),
                units: units.into_iter().map(String::from).collect(),
            }),
            base,
        )
    };
    let t = tiff(vec!["um", "nm", "nm"], vec!["plane", "row", "col"]).unwrap();
    assert_eq!(t.info().geometry.voxel_size, Coordinate::from([1000, 1, 1]));
    assert_eq!(t.info().roi, roi([1000, 0, 0], [2000, 2, 3]));
    let names: Vec<&str> = t
        .info()
        .geometry
        .axes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["plane", "row", "col"]);
    let err = tiff(vec!["furlong", "nm", "nm"], vec![])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("units[0]: `furlong`"), "{err}");
    let err = tiff(vec![], vec!["z", "y"]).err().unwrap().to_string();
    assert!(err.contains("axis_names: 2 name(s)"), "{err}");
}
