//! Sizes read from files are checked before they are used: arrays declaring huge chunks or
//! shapes, N5 block sizes of 2³¹, regions of more blocks than can be listed and deeply
//! nested YAML are refused with the limit named, quickly, without a panic; an array without
//! voxels is described and read as empty, and refused where voxels are needed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use segno::geometry::{Coordinate, Roi};

fn zarr_v2(dir: &Path, shape: &[u64], chunks: &[u64]) -> std::path::PathBuf {
    let array = dir.join("c.zarr/a");
    std::fs::create_dir_all(&array).unwrap();
    std::fs::write(dir.join("c.zarr/.zgroup"), r#"{"zarr_format": 2}"#).unwrap();
    let meta = serde_json::json!({
        "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": "|u1",
        "compressor": null, "fill_value": 0, "order": "C", "filters": null,
    });
    std::fs::write(array.join(".zarray"), meta.to_string()).unwrap();
    std::fs::write(
        array.join(".zattrs"),
        r#"{"resolution": [4, 4, 4], "offset": [0, 0, 0]}"#,
    )
    .unwrap();
    array
}

fn open_error(path: &Path) -> String {
    match segno::array::open(path) {
        Ok(a) => panic!("{} opened: {:?}", path.display(), a.info().shape),
        Err(e) => e.to_string(),
    }
}

#[test]
fn arrays_declaring_huge_chunks_or_shapes_are_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_error(&zarr_v2(dir.path(), &[100_000; 3], &[1_000_000_000; 3]));
    assert!(
        e.contains("larger than 2 GiB, the largest Segno decodes"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let e = open_error(&zarr_v2(dir.path(), &[1_000_000_000_000; 3], &[64; 3]));
    assert!(e.contains("more than 2^53 voxels"), "{e}");

    // N5 with a block size of 2^31 per axis.
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("c.n5/a");
    std::fs::create_dir_all(&ds).unwrap();
    std::fs::write(
        dir.path().join("c.n5/attributes.json"),
        r#"{"n5": "2.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        ds.join("attributes.json"),
        r#"{"dimensions": [4096, 4096, 4096], "blockSize": [2147483648, 2147483648, 2147483648], "dataType": "uint8", "compression": {"type": "raw"}}"#,
    )
    .unwrap();
    let e = open_error(&ds);
    assert!(e.contains("larger than 2 GiB"), "{e}");

    // An offset beyond 2^53 (no longer exact as a JSON number) is named.
    let dir = tempfile::tempdir().unwrap();
    let a = zarr_v2(dir.path(), &[8, 8, 8], &[8, 8, 8]);
    std::fs::write(
        a.join(".zattrs"),
        r#"{"resolution": [4, 4, 4], "offset": [1e17, 0, 0]}"#,
    )
    .unwrap();
    let e = open_error(&a);
    assert!(e.contains("offset") && e.contains("beyond ±2^53"), "{e}");

    // A large but valid array opens; reading all of it at once is refused.
    let dir = tempfile::tempdir().unwrap();
    let big = zarr_v2(dir.path(), &[1 << 20, 1 << 20, 1 << 10], &[64; 3]);
    let a = segno::array::open(&big).unwrap();
    assert_eq!(a.info().shape, vec![1 << 20, 1 << 20, 1 << 10]);
    let e = a.read(&a.info().roi).unwrap_err().to_string();
    assert!(e.contains("more than 16 GiB of memory"), "{e}");
    // A small region of it reads (missing chunks as the fill value).
    let small = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([16, 16, 16])).unwrap();
    assert_eq!(a.read(&small).unwrap().shape(), &[4, 4, 4]);
}

#[test]
fn a_region_of_too_many_blocks_is_refused_without_spinning() {
    let run = common::tiny_run("r", 4, 2, 0.05, common::demo_raw(0.0, 255.0));
    let vs = Coordinate::from([4, 4, 4]);
    let inference = segno::train::validate::Inference::for_run(&run, vs, tch::Device::Cpu).unwrap();
    // 2^40 voxels on a side.
    let region = Roi::new(
        Coordinate::from([0, 0, 0]),
        vs * Coordinate::from([1 << 40, 1 << 40, 1 << 40]),
    )
    .unwrap();
    let started = Instant::now();
    let sized = inference.sized_for(&run, &region, 1e6).unwrap();
    let input: i64 = sized.input_shape.iter().product();
    assert!(input as f64 <= 1e6, "{}", sized.input_shape);
    let e = sized.blocks(&region).unwrap_err().to_string();
    assert!(e.contains("more than 134217728 blocks"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn deeply_nested_yaml_is_refused_before_it_is_parsed() {
    let cases = [
        // 200 KB of flow nesting.
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("a: {}{}", "{b: ".repeat(50_000), "}".repeat(50_000)),
        // Block nesting: sequences and mappings.
        format!("{}x\n", "- ".repeat(1_000)),
        (0..1_000)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect::<String>(),
    ];
    for text in &cases {
        let started = Instant::now();
        let e = segno::config::parse_document(text, "deep.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("deep.yaml") && e.contains("more than the 64 a config may have"),
            "{}",
            &e[..e.len().min(300)]
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // Ordinary nesting still parses, including quoted brackets and comments.
    let ok = "a:\n  b:\n    - [1, 2, {c: \"[[[[\"}]  # ]]]] {{{{\n    - d: '{'\n";
    let doc = segno::config::parse_document(ok, "ok.yaml").unwrap();
    assert_eq!(doc["a"]["b"][0][2]["c"], "[[[[");
    assert_eq!(doc["a"]["b"][1]["d"], "{");
}

#[test]
fn an_array_without_voxels_is_described_and_refused_where_voxels_are_needed() {
    let dir = tempfile::tempdir().unwrap();
    let empty = zarr_v2(dir.path(), &[0, 8, 8], &[8, 8, 8]);
    let a = segno::array::open(&empty).unwrap();
    assert_eq!(a.info().shape, vec![0, 8, 8]);
    // Reading all of it gives all of it: nothing.
    assert_eq!(a.read(&a.info().roi).unwrap().shape(), &[0, 8, 8]);
    // The viewer refuses it as a layer, saying why.
    let e = segno::render::layer::open_layer(&empty)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the array has no voxels (shape [0, 8, 8]); there is nothing to show"),
        "{e}"
    );
    // `segno array info` describes it.
    let out = assert_cmd::Command::cargo_bin("segno")
        .unwrap()
        .args(["array", "info"])
        .arg(&empty)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("0 × 8 × 8") && text.contains("[0:0, 0:32, 0:32]"),
        "{text}"
    );
}
