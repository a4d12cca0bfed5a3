//! Reading the interop fixtures (written by zarr-python / numcodecs, see
//! tests/fixtures/arrays/generate.sh), writing arrays, and bad input.

mod common;

use std::path::{Path, PathBuf};

use segno::array::write::{self, ArraySpec, WriteMode};
use segno::array::{self, ArrayData, ArrayError, ArraySource, DataType};
use segno::geometry::{Coordinate, Roi};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arrays")
}

fn raw_value(z: usize, y: usize, x: usize) -> f64 {
    ((z * 37 + y * 11 + x * 3) % 256) as f64
}

fn label_value(z: usize, y: usize, x: usize) -> f64 {
    if x < 2 {
        0.0
    } else {
        (1 + (z / 3) * 4 + (y / 5) * 2 + x / 6) as f64
    }
}

fn roi(offset: [i64; 3], shape: [i64; 3]) -> Roi {
    Roi::new(Coordinate::from(offset), Coordinate::from(shape)).unwrap()
}

fn check_values(data: &ArrayData, start: [usize; 3], f: impl Fn(usize, usize, usize) -> f64) {
    let v = data.to_f64();
    assert_eq!(v.ndim(), 3, "shape {:?}", v.shape());
    for ((z, y, x), got) in v
        .clone()
        .into_dimensionality::<ndarray::Ix3>()
        .unwrap()
        .indexed_iter()
    {
        let want = f(z + start[0], y + start[1], x + start[2]);
        assert_eq!(*got, want, "voxel ({z}, {y}, {x}) from {start:?}");
    }
}

#[test]
fn zarr_v2_blosc_gzip_zstd_and_fill_values() {
    let raw = array::open(&fixtures().join("v2.zarr/raw_blosc")).unwrap();
    let info = raw.info();
    assert_eq!(info.format, "zarr v2");
    assert_eq!(info.data_type, DataType::U8);
    assert_eq!(info.shape, vec![6, 10, 12]);
    assert_eq!(info.chunk_shape, vec![4, 4, 5]);
    assert_eq!(info.geometry.voxel_size, Coordinate::from([8, 4, 4]));
    assert_eq!(info.geometry.offset, Coordinate::from([16, 8, 4]));
    assert_eq!(info.roi, roi([16, 8, 4], [48, 40, 48]));
    assert!(info.codecs.contains("lz4"), "{}", info.codecs);
    check_values(&raw.read(&info.roi).unwrap(), [0, 0, 0], raw_value);
    // A region that crosses chunk borders.
    check_values(
        &raw.read(&roi([24, 16, 12], [32, 20, 28])).unwrap(),
        [1, 2, 2],
        raw_value,
    );
    // Chunk access: grid and an edge chunk clipped to the array.
    assert_eq!(raw.chunk_grid_shape(), vec![2, 3, 3]);
    let edge = raw.read_chunk(&[1, 2, 2]).unwrap();
    assert_eq!(edge.shape(), &[2, 2, 2]);
    check_values(&edge, [4, 8, 10], raw_value);

    let labels = array::open(&fixtures().join("v2.zarr/labels_gzip")).unwrap();
    assert_eq!(labels.info().data_type, DataType::U64);
    assert_eq!(labels.info().geometry.source, "voxel_size/offset");
    check_values(
        &labels.read(&labels.info().roi).unwrap(),
        [0, 0, 0],
        label_value,
    );

    let multi = array::open(&fixtures().join("v2.zarr/multichannel_zstd")).unwrap();
    let mi = multi.info();
    assert_eq!(mi.channels(), 2);
    assert!(!mi.geometry.axes[0].spatial);
    assert_eq!(mi.roi, roi([0, 0, 0], [48, 40, 48]));
    let both = multi.read(&mi.roi).unwrap().to_f64();
    assert_eq!(both.shape(), &[2, 6, 10, 12]);
    assert_eq!(both[[1, 2, 3, 4]], raw_value(2, 3, 4) + 1000.0);
    assert_eq!(both[[0, 5, 9, 11]], raw_value(5, 9, 11));

    // Missing chunks read as the fill value (7); the written corner holds data.
    let sparse = array::open(&fixtures().join("v2.zarr/sparse_u16")).unwrap();
    assert_eq!(sparse.info().fill_value, serde_json::json!(7));
    let v = sparse.read(&sparse.info().roi).unwrap().to_f64();
    assert_eq!(v[[0, 0, 0]], raw_value(0, 0, 0) + 1000.0);
    assert_eq!(v[[2, 4, 5]], raw_value(2, 4, 5) + 1000.0);
    assert_eq!(v[[5, 9, 11]], 7.0);
    assert_eq!(v[[0, 0, 6]], 7.0);
}

#[test]
fn zarr_v3_sharded_and_ome_ngff_multiscales() {
    let a = array::open(&fixtures().join("v3.zarr/raw_sharded")).unwrap();
    let info = a.info();
    assert_eq!(info.format, "zarr v3");
    assert_eq!(info.chunk_shape, vec![3, 5, 4]);
    assert_eq!(info.shard_shape, Some(vec![6, 10, 12]));
    assert_eq!(info.geometry.voxel_size, Coordinate::from([8, 4, 4]));
    assert_eq!(info.geometry.offset, Coordinate::from([16, 8, 4]));
    assert!(info.codecs.contains("zstd"), "{}", info.codecs);
    check_values(&a.read(&info.roi).unwrap(), [0, 0, 0], raw_value);

    for name in ["ome04.zarr", "ome05.zarr"] {
        let group = fixtures().join(name);
        // The group opens its finest level.
        let s0 = array::open(&group).unwrap();
        assert_eq!(
            s0.info().geometry.voxel_size,
            Coordinate::from([8, 4, 4]),
            "{name}"
        );
        assert_eq!(
            s0.info().geometry.offset,
            Coordinate::from([16, 8, 4]),
            "{name}"
        );
        assert_eq!(s0.info().geometry.source, "OME-NGFF multiscales");
        check_values(&s0.read(&s0.info().roi).unwrap(), [0, 0, 0], raw_value);
        let levels = array::zarr::scale_levels(&group, "").unwrap();
        assert_eq!(levels.len(), 2, "{name}");
        assert_eq!(levels[1].path, "s1");
        assert_eq!(
            levels[1].info.geometry.voxel_size,
            Coordinate::from([16, 8, 8])
        );
        // The coarser level's translation locates its first voxel's centre: its corner is
        // exactly s0's (4 nm off its own 8 nm grid on x, which is kept, not rounded).
        assert_eq!(levels[1].info.geometry.offset, Coordinate::from([16, 8, 4]));
        assert!(!levels[1].info.geometry.on_grid());
        let s1 = array::open(&group.join("s1")).unwrap();
        check_values(&s1.read(&s1.info().roi).unwrap(), [0, 0, 0], |z, y, x| {
            raw_value(2 * z, 2 * y, 2 * x)
        });
        // Level choice: finest level unless every axis is finer than the target.
        assert_eq!(
            array::zarr::choose_level(&levels, &Coordinate::from([8, 8, 8])),
            Some(0)
        );
        assert_eq!(
            array::zarr::choose_level(&levels, &Coordinate::from([16, 16, 16])),
            Some(1)
        );
        assert_eq!(
            array::zarr::choose_level(&levels, &Coordinate::from([64, 64, 64])),
            Some(1)
        );
    }
}

#[test]
fn n5_with_funlib_attributes() {
    for name in ["gzip", "raw", "blosc"] {
        let a = array::open(&fixtures().join("funlib.n5").join("volumes").join(name)).unwrap();
        let info = a.info();
        assert_eq!(info.format, "N5");
        assert_eq!(info.data_type, DataType::U16);
        assert_eq!(info.shape, vec![6, 10, 12], "{name}");
        assert_eq!(info.chunk_shape, vec![3, 5, 4], "{name}");
        // resolution [4, 4, 8] and offset [4, 8, 16] are stored x, y, z.
        assert_eq!(
            info.geometry.voxel_size,
            Coordinate::from([8, 4, 4]),
            "{name}"
        );
        assert_eq!(info.geometry.offset, Coordinate::from([16, 8, 4]), "{name}");
        check_values(&a.read(&info.roi).unwrap(), [0, 0, 0], |z, y, x| {
            raw_value(z, y, x) * 3.0
        });
        check_values(&a.read_chunk(&[1, 1, 2]).unwrap(), [3, 5, 8], |z, y, x| {
            raw_value(z, y, x) * 3.0
        });
    }
}

#[test]
fn regions_outside_or_off_grid_are_errors_unless_filled() {
    let raw = array::open(&fixtures().join("v2.zarr/raw_blosc")).unwrap();
    let err = raw.read(&roi([0, 8, 4], [16, 8, 8])).unwrap_err();
    assert!(matches!(err, ArrayError::OutOfBounds { .. }), "{err}");
    assert!(err.to_string().contains("raw_blosc"), "{err}");
    let err = raw.read(&roi([16, 8, 6], [8, 8, 8])).unwrap_err();
    assert!(matches!(err, ArrayError::Misaligned { .. }), "{err}");
    assert!(
        err.to_string().contains("voxel size (8, 4, 4)") || err.to_string().contains("voxel size"),
        "{err}"
    );
    // With a fill value, the part outside reads as that value.
    let v = raw
        .read_filled(&roi([8, 8, 4], [16, 4, 4]), 99.0)
        .unwrap()
        .to_f64();
    assert_eq!(v.shape(), &[2, 1, 1]);
    assert_eq!(v[[0, 0, 0]], 99.0);
    assert_eq!(v[[1, 0, 0]], raw_value(0, 0, 0));
    let far = raw
        .read_filled(&roi([-800, 8, 4], [8, 4, 4]), 5.0)
        .unwrap()
        .to_f64();
    assert_eq!(far[[0, 0, 0]], 5.0);
}

#[test]
fn bad_files_give_errors_naming_the_array_and_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("bad.zarr");
    common::copy_dir(&fixtures().join("v2.zarr"), &c);

    // Missing metadata.
    std::fs::remove_file(c.join("labels_gzip/.zarray")).unwrap();
    let err = array::open(&c.join("labels_gzip")).err().unwrap();
    assert!(err.to_string().contains("labels_gzip"), "{err}");
    assert!(err.to_string().contains(".zarray"), "{err}");
    let err = array::open(&c.join("no_such_array")).err().unwrap();
    assert!(err.to_string().contains("no_such_array"), "{err}");

    // A corrupt and a truncated chunk.
    let raw = c.join("raw_blosc");
    std::fs::write(raw.join("0/0/0"), b"this is not blosc").unwrap();
    let bytes = std::fs::read(raw.join("1/2/2")).unwrap();
    std::fs::write(raw.join("1/2/2"), &bytes[..bytes.len() / 2]).unwrap();
    let a = array::open(&raw).unwrap();
    let err = a.read_chunk(&[0, 0, 0]).unwrap_err();
    assert!(err.to_string().contains("raw_blosc"), "{err}");
    assert!(err.to_string().contains("chunk [0, 0, 0]"), "{err}");
    // A region over many chunks names the one that failed and its file.
    let err = a.read(&a.info().roi).unwrap_err().to_string();
    assert!(err.contains("raw_blosc"), "{err}");
    assert!(
        (err.contains("chunk [0, 0, 0]") && err.contains("raw_blosc/0/0/0"))
            || (err.contains("chunk [1, 2, 2]") && err.contains("raw_blosc/1/2/2")),
        "{err}"
    );
    let err = a.read_chunk(&[1, 2, 2]).unwrap_err();
    assert!(err.to_string().contains("raw_blosc"), "{err}");
    assert!(err.to_string().contains("raw_blosc/1/2/2"), "{err}");
    // Other chunks still read.
    check_values(&a.read_chunk(&[0, 1, 0]).unwrap(), [0, 4, 0], raw_value);
    // A missing chunk is the fill value.
    std::fs::remove_file(raw.join("0/1/1")).unwrap();
    let missing = a.read_chunk(&[0, 1, 1]).unwrap().to_f64();
    assert!(missing.iter().all(|v| *v == 0.0));

    // Unsupported data type and unknown codec.
    let meta = std::fs::read_to_string(c.join("sparse_u16/.zarray")).unwrap();
    std::fs::write(c.join("sparse_u16/.zarray"), meta.replace("<u2", "<c8")).unwrap();
    let err = array::open(&c.join("sparse_u16")).err().unwrap();
    assert!(err.to_string().contains("sparse_u16"), "{err}");
    let meta = std::fs::read_to_string(c.join("multichannel_zstd/.zarray")).unwrap();
    std::fs::write(
        c.join("multichannel_zstd/.zarray"),
        meta.replace("\"zstd\"", "\"fancy_codec\""),
    )
    .unwrap();
    let err = array::open(&c.join("multichannel_zstd")).err().unwrap();
    assert!(err.to_string().contains("multichannel_zstd"), "{err}");
    assert!(err.to_string().contains("fancy_codec"), "{err}");

    // zarr v3: missing zarr.json, and a corrupt shard.
    let v3 = dir.path().join("bad3.zarr");
    common::copy_dir(&fixtures().join("v3.zarr"), &v3);
    let shard = common::walk_files(&v3.join("raw_sharded"))
        .into_iter()
        .find(|p| !p.ends_with("zarr.json"))
        .unwrap();
    std::fs::write(&shard, b"garbage").unwrap();
    let a = array::open(&v3.join("raw_sharded")).unwrap();
    let err = a.read(&a.info().roi).unwrap_err();
    assert!(err.to_string().contains("raw_sharded"), "{err}");
    std::fs::remove_file(v3.join("raw_sharded/zarr.json")).unwrap();
    let err = array::open(&v3.join("raw_sharded")).err().unwrap();
    assert!(
        err.to_string().contains("raw_sharded") && err.to_string().contains("zarr.json"),
        "{err}"
    );

    // N5: truncated block, unknown compression, unsupported type.
    let n5 = dir.path().join("bad.n5");
    common::copy_dir(&fixtures().join("funlib.n5"), &n5);
    let gz = n5.join("volumes/gzip");
    let bytes = std::fs::read(gz.join("0/0/0")).unwrap();
    std::fs::write(gz.join("0/0/0"), &bytes[..bytes.len() - 7]).unwrap();
    let a = array::open(&gz).unwrap();
    let err = a.read_chunk(&[0, 0, 0]).unwrap_err();
    assert!(matches!(err, ArrayError::Chunk { .. }), "{err}");
    assert!(
        err.to_string().contains("volumes/gzip") && err.to_string().contains("[0, 0, 0]"),
        "{err}"
    );
    let attrs = std::fs::read_to_string(n5.join("volumes/raw/attributes.json")).unwrap();
    std::fs::write(
        n5.join("volumes/raw/attributes.json"),
        attrs.replace("raw", "xz"),
    )
    .unwrap();
    let err = array::open(&n5.join("volumes/raw")).err().unwrap();
    assert!(err.to_string().contains("xz"), "{err}");
    std::fs::write(
        n5.join("volumes/blosc/attributes.json"),
        attrs.replace("uint16", "complex64"),
    )
    .unwrap();
    let err = array::open(&n5.join("volumes/blosc")).err().unwrap();
    assert!(err.to_string().contains("complex64"), "{err}");
}

#[test]
fn written_arrays_read_back_with_geometry_and_levels() {
    let dir = tempfile::tempdir().unwrap();
    let container = dir.path().join("out.zarr");
    let region = roi([80, 40, 40], [64, 128, 128]);
    let vs = Coordinate::from([8, 4, 4]);
    let mut spec = ArraySpec::new(DataType::U16, region, vs, None);
    spec.chunk_voxels = Some(vec![4, 16, 16]);
    let levels =
        write::create_image(&container, "volumes/raw", &spec, 3, WriteMode::CreateNew).unwrap();
    assert_eq!(levels.len(), 3);
    let shape = [8usize, 32, 32];
    let full = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&shape), |i| {
        ((i[0] * 1000 + i[1] * 31 + i[2]) % 60000) as u16
    });
    levels[0]
        .write(&region, &ArrayData::U16(full.clone()))
        .unwrap();
    write::build_pyramid(&levels, false).unwrap();

    // Reopen from disk as a reader would.
    let s0 = array::open(&container.join("volumes/raw")).unwrap();
    assert_eq!(s0.info().roi, region);
    assert_eq!(s0.info().geometry.voxel_size, vs);
    assert_eq!(s0.info().chunk_shape, vec![4, 16, 16]);
    assert_eq!(s0.read(&region).unwrap(), ArrayData::U16(full.clone()));
    let s2 = array::open(&container.join("volumes/raw/s2")).unwrap();
    assert_eq!(
        s2.info().geometry.voxel_size,
        Coordinate::from([32, 16, 16])
    );
    // Coarser levels cover what falls on their grid: 80 nm is not a multiple of 32 nm.
    assert_eq!(s2.info().roi, roi([96, 48, 48], [32, 112, 112]));
    let levels_read = array::zarr::scale_levels(&container, "volumes/raw").unwrap();
    assert_eq!(levels_read.len(), 3);
    // s1 is the 2×2×2 mean of s0.
    let s1 = array::open(&container.join("volumes/raw/s1")).unwrap();
    let v1 = s1.read(&s1.info().roi).unwrap().to_f64();
    let mean: f64 = (0..2)
        .flat_map(|z| (0..2).flat_map(move |y| (0..2).map(move |x| (z, y, x))))
        .map(|(z, y, x)| full[[2 + z, 4 + y, 6 + x]] as f64)
        .sum::<f64>()
        / 8.0;
    assert_eq!(v1[[1, 2, 3]], mean.round());
    // DaCapo-era attributes are on the level array.
    let attrs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(container.join("volumes/raw/s0/.zattrs")).unwrap(),
    )
    .unwrap();
    assert_eq!(attrs["resolution"], serde_json::json!([8, 4, 4]));
    assert_eq!(attrs["voxel_size"], serde_json::json!([8, 4, 4]));
    assert_eq!(attrs["offset"], serde_json::json!([80, 40, 40]));
    assert_eq!(attrs["axis_names"], serde_json::json!(["z", "y", "x"]));
    // No temporary files are left behind.
    let leftovers: Vec<_> = common::walk_files(&container)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Creating again refuses; resume with the same metadata reuses; other metadata is refused.
    let err = write::create(&container, "volumes/raw", &spec, WriteMode::CreateNew)
        .err()
        .unwrap();
    assert!(err.to_string().contains("volumes/raw exists"), "{err}");
    let resumed = write::create(&container, "volumes/raw", &spec, WriteMode::Resume).unwrap();
    assert_eq!(resumed.read(&region).unwrap(), ArrayData::U16(full));
    let mut other = spec.clone();
    other.data_type = DataType::U8;
    let err = write::create(&container, "volumes/raw", &other, WriteMode::Resume)
        .err()
        .unwrap();
    assert!(err.to_string().contains("different metadata"), "{err}");
    // Writes outside the array or of the wrong shape are errors, and change nothing.
    let w = &resumed;
    let err = w
        .write(
            &roi([0, 0, 0], [8, 4, 4]),
            &ArrayData::filled(DataType::U16, &[1, 1, 1], 1.0),
        )
        .unwrap_err();
    assert!(matches!(err, ArrayError::OutOfBounds { .. }), "{err}");
    let err = w
        .write(
            &roi([80, 40, 40], [8, 4, 4]),
            &ArrayData::filled(DataType::U16, &[2, 1, 1], 1.0),
        )
        .unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
}

#[test]
fn channel_arrays_and_concurrent_chunk_writers() {
    let dir = tempfile::tempdir().unwrap();
    let container = dir.path().join("pred.zarr");
    let region = roi([0, 0, 0], [32, 32, 32]);
    let mut spec = ArraySpec::new(DataType::F32, region, Coordinate::from([4, 4, 4]), Some(3));
    spec.chunk_voxels = Some(vec![4, 4, 4]);
    let w = write::create(&container, "prediction", &spec, WriteMode::Overwrite).unwrap();
    assert_eq!(w.info().shape, vec![3, 8, 8, 8]);
    assert_eq!(w.info().chunk_shape, vec![3, 4, 4, 4]);
    let grid = w.chunk_grid_shape();
    assert_eq!(grid, vec![1, 2, 2, 2]);
    let indices = write::grid_indices(&grid);
    std::thread::scope(|s| {
        for index in &indices {
            let w = &w;
            s.spawn(move || {
                let value = (index[1] * 4 + index[2] * 2 + index[3]) as f64 + 0.5;
                w.write_chunk(
                    index,
                    &ArrayData::filled(DataType::F32, &[3, 4, 4, 4], value),
                )
                .unwrap();
            });
        }
    });
    let r = array::open(&container.join("prediction")).unwrap();
    assert_eq!(r.info().channels(), 3);
    let v = r.read(&region).unwrap().to_f64();
    assert_eq!(v[[2, 0, 0, 0]], 0.5);
    assert_eq!(v[[0, 7, 0, 5]], 5.5);
    assert_eq!(v[[1, 7, 7, 7]], 7.5);
    let ome: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(container.join("prediction/.zattrs")).unwrap(),
    )
    .unwrap();
    assert_eq!(ome["multiscales"][0]["axes"][0]["type"], "channel");
    assert_eq!(
        ome["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"],
        serde_json::json!([1.0, 4.0, 4.0, 4.0])
    );
}

#[test]
fn sharded_fast_path_matches_zarrs_with_fill_values_and_missing_shards() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    for name in ["gzip", "zstd"] {
        let container = dir.path().join(format!("{name}.zarr"));
        let store = Arc::new(zarrs::filesystem::FilesystemStore::new(&container).unwrap());
        zarrs::group::GroupBuilder::new()
            .build(store.clone(), "/")
            .unwrap()
            .store_metadata()
            .unwrap();
        let a = zarrs::array::ArrayBuilder::new(
            vec![10, 12, 9],
            vec![4, 6, 6],
            zarrs::array::data_type::uint16(),
            9u16,
        )
        .subchunk_shape(vec![2, 3, 3])
        .bytes_to_bytes_codecs(if name == "gzip" {
            vec![Arc::new(zarrs::array::codec::GzipCodec::new(5).unwrap())]
        } else {
            vec![Arc::new(zarrs::array::codec::ZstdCodec::new(3, true))]
        })
        .build(store.clone(), "/a")
        .unwrap();
        a.store_metadata().unwrap();
        // Write only part of the array: other shards and chunks stay missing (fill value 9).
        let data = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[5, 7, 9]), |i| {
            (i[0] * 100 + i[1] * 10 + i[2]) as u16
        });
        a.store_array_subset(
            &zarrs::array::ArraySubset::new_with_ranges(&[3..8, 2..9, 0..9]),
            data,
        )
        .unwrap();
        let arr = array::open(&container.join("a")).unwrap();
        let whole = arr.read(&arr.info().roi).unwrap().to_f64();
        assert_eq!(whole[[0, 0, 0]], 9.0, "{name}");
        assert_eq!(whole[[3, 2, 0]], 0.0, "{name}");
        assert_eq!(whole[[7, 8, 8]], 468.0, "{name}");
        assert_eq!(whole[[9, 11, 8]], 9.0, "{name}");
        // Every shard read through zarrs equals the same part of the fast-path read.
        for index in write::grid_indices(&arr.chunk_grid_shape()) {
            let shard = arr.read_chunk(&index).unwrap().to_f64();
            let start: Vec<usize> = index
                .iter()
                .zip([4, 6, 6])
                .map(|(i, s)| (*i as usize) * s)
                .collect();
            for ((z, y, x), v) in shard
                .into_dimensionality::<ndarray::Ix3>()
                .unwrap()
                .indexed_iter()
            {
                assert_eq!(
                    *v,
                    whole[[start[0] + z, start[1] + y, start[2] + x]],
                    "{name} shard {index:?}"
                );
            }
        }
        // An unaligned sub-region across shard borders.
        let part = arr.read(&roi([2, 5, 1], [5, 4, 7])).unwrap().to_f64();
        assert_eq!(part[[1, 0, 0]], whole[[3, 5, 1]]);
        assert_eq!(part[[4, 3, 6]], whole[[6, 8, 7]]);
    }
    // A shard whose index is damaged is an error naming the array and the chunk.
    let container = dir.path().join("zstd.zarr");
    let shard = container.join("a/c/1/0/0");
    let mut bytes = std::fs::read(&shard).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&shard, &bytes).unwrap();
    let arr = array::open(&container.join("a")).unwrap();
    let err = arr.read(&arr.info().roi).unwrap_err();
    assert!(
        err.to_string().contains("zstd.zarr/a") && err.to_string().contains("corrupt"),
        "{err}"
    );
}
