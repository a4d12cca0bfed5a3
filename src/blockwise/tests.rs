//! Tests of block layout, resumption and provenance.

use super::segment::FRAGMENT_BIT;
use super::*;
use crate::geometry::Coordinate;
use ndarray::{ArrayD, IxDyn};
use std::collections::BTreeSet;

/// Objects of a 3D volume: two slabs split along z and a cube crossing block faces.
fn segmentation(n: usize) -> ArrayD<u64> {
    ArrayD::from_shape_fn(IxDyn(&[n, n, n]), |ix| {
        let (z, y, x) = (ix[0], ix[1], ix[2]);
        if (10..30).contains(&z) && (10..30).contains(&y) && (10..30).contains(&x) {
            3
        } else if y < 6 {
            0
        } else if z < n / 2 {
            1
        } else {
            2
        }
    })
}

#[test]
fn blockwise_watershed_stitches_blocks_into_the_one_piece_result() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40;
    let gt = segmentation(n);
    let offsets = vec![vec![-1, 0, 0], vec![0, -1, 0], vec![0, 0, -1]];
    let affs = crate::task::affinities::affinity_target(&gt.view(), &offsets, false).unwrap();
    let vs = Coordinate::from([4, 4, 4]);
    let roi = Roi::new(
        Coordinate::from([0, 0, 0]),
        vs * Coordinate::from([40, 40, 40]),
    )
    .unwrap();
    let mut spec = ArraySpec::new(DataType::F32, roi, vs, Some(3));
    // 16³ chunks: 3 blocks per axis, faces crossing every object.
    spec.chunk_voxels = Some(vec![16, 16, 16]);
    let container = dir.path().join("p.zarr");
    let w = write::create(&container, "affs", &spec, WriteMode::CreateNew).unwrap();
    w.write(&roi, &ArrayData::F32(affs)).unwrap();
    let prediction = crate::array::open(&container.join("affs")).unwrap();
    let predictor = Predictor::Affinities {
        offsets,
        lsds: None,
        background_as_object: false,
        clip: (0.05, 0.95),
    };
    let params = PostProcessorParameters::Watershed { id: 2, bias: 0.5 };
    let method = SegmentMethod::for_task(&predictor, &params).unwrap();
    let segment = |name: &str, max_one_piece_voxels: u64| {
        let options = SegmentOptions {
            max_one_piece_voxels,
            ..SegmentOptions::default()
        };
        let seen = std::sync::Mutex::new(Vec::new());
        let report = segment_array(
            prediction.as_ref(),
            &method,
            &options,
            (&container, name, WriteMode::CreateNew),
            &|done, total| seen.lock().unwrap().push((done, total)),
        )
        .unwrap();
        (report, seen.into_inner().unwrap())
    };
    let (whole, _) = segment("whole", u64::MAX);
    let (blocks, seen) = segment("blocks", 1000);
    // 16³ chunks → 1000 voxels make blocks of 16·16·16: 27 blocks, 3 per axis; progress
    // counts fragments, faces, the merge and the relabelling (27 + 27 + 1 + 27).
    let job = JobFile::load(&container.join("blocks")).unwrap().unwrap();
    assert_eq!(job.grid.len(), 27);
    assert_eq!(seen.iter().map(|s| s.0).max(), Some(82));
    assert!(seen.iter().all(|s| s.1 == 82));
    let whole_job = JobFile::load(&container.join("whole")).unwrap().unwrap();
    assert_eq!(whole_job.grid.len(), 1);
    assert_eq!(blocks.chunks, 27);
    assert!(blocks.foreground[0] > 0);
    let read = |name: &str| {
        crate::array::open(&container.join(name))
            .unwrap()
            .read(&roi)
            .unwrap()
            .to_labels()
            .unwrap()
    };
    let (a, b) = (read("whole"), read("blocks"));
    // Both recover the three objects and the background exactly (VOI 0 against the truth).
    for seg in [&a, &b] {
        let scores = crate::task::evaluate::instance(seg, &gt).unwrap();
        assert!(scores.values.iter().all(|v| v.abs() < 1e-12), "{scores:?}");
    }
    let ids: BTreeSet<u64> = b.iter().copied().collect();
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert!(b.iter().all(|v| v & FRAGMENT_BIT == 0));
    assert_eq!(whole.foreground, blocks.foreground);
    // Without the face merge the blocks would hold 27 pieces of the big objects.
    assert_eq!(
        blocks.foreground[0],
        gt.iter().filter(|v| **v != 0).count() as u64
    );
}

#[test]
fn connected_components_across_blocks_equal_the_one_piece_components() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40usize;
    // A noisy one-channel prediction: blobs, thin bridges and single voxels that cross
    // block faces in every direction.
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
    let p = ArrayD::from_shape_fn(IxDyn(&[n, n, n]), |_| {
        rand::Rng::gen_range(&mut rng, -1.0f32..1.0)
    });
    let vs = Coordinate::from([2, 2, 2]);
    let roi = Roi::new(
        Coordinate::from([10, 0, 0]),
        vs * Coordinate::from([40, 40, 40]),
    )
    .unwrap();
    let mut spec = ArraySpec::new(DataType::F32, roi, vs, None);
    spec.chunk_voxels = Some(vec![8, 8, 8]);
    let container = dir.path().join("p.zarr");
    let w = write::create(&container, "dist", &spec, WriteMode::CreateNew).unwrap();
    w.write(&roi, &ArrayData::F32(p.clone())).unwrap();
    let prediction = crate::array::open(&container.join("dist")).unwrap();
    let method = SegmentMethod::Components { threshold: 0.3 };
    let options = SegmentOptions {
        block_voxels: Some(vec![16, 16, 8]),
        threads: Some(2),
        ..SegmentOptions::default()
    };
    let report = segment_array(
        prediction.as_ref(),
        &method,
        &options,
        (&container, "cc", WriteMode::CreateNew),
        &|_, _| {},
    )
    .unwrap();
    let job = JobFile::load(&container.join("cc")).unwrap().unwrap();
    assert_eq!(job.grid.counts(), vec![3, 3, 5]);
    let blocks = crate::array::open(&container.join("cc"))
        .unwrap()
        .read(&roi)
        .unwrap()
        .to_labels()
        .unwrap();
    let mask = crate::task::postprocess::threshold(&p, 0.3);
    let (whole, k) = crate::task::components::connected_components(&mask.view());
    // Equal up to relabelling: the same partition of the voxels, object for object.
    let mut forward = std::collections::HashMap::new();
    let mut backward = std::collections::HashMap::new();
    for (a, b) in whole.iter().zip(blocks.iter()) {
        assert_eq!(*a == 0, *b == 0);
        assert_eq!(*forward.entry(*a).or_insert(*b), *b);
        assert_eq!(*backward.entry(*b).or_insert(*a), *a);
    }
    assert!(k > 100, "{k} components");
    assert_eq!(forward.len() as u64, k + 1);
    assert_eq!(
        report.foreground[0],
        mask.iter().filter(|v| **v != 0).count() as u64
    );
    // Interrupted twice — in the relabelling (blocks already relabelled are redone) and in
    // the fragments (every later stage forgotten) — the same call ends identical.
    let forget = |ledger: &str, keep: u64| {
        let dir = job.dir().join(ledger);
        for k in keep..job.grid.len() {
            let _ = std::fs::remove_file(dir.join("done").join(k.to_string()));
            for e in std::fs::read_dir(dir.join("claims")).unwrap() {
                let e = e.unwrap();
                if e.file_name().to_string_lossy().split('.').next() == Some(&k.to_string()) {
                    std::fs::remove_file(e.path()).unwrap();
                }
            }
        }
    };
    // The same call continues an unfinished job to the uninterrupted result.
    let resume = |name: &str| {
        assert!(crate::blockwise::job::unfinished(&container.join(name)));
        let r = segment_array(
            prediction.as_ref(),
            &method,
            &options,
            (&container, name, WriteMode::Resume),
            &|_, _| {},
        )
        .unwrap();
        let labels = crate::array::open(&container.join(name))
            .unwrap()
            .read(&roi)
            .unwrap()
            .to_labels()
            .unwrap();
        assert_eq!(labels, blocks, "{name}");
        assert_eq!(r.foreground, report.foreground);
    };
    forget("ledger", 10);
    resume("cc");
    // Interrupted in the fragments: a new job whose first 20 blocks alone are done.
    let fresh = super::segment::prepare_segment_job(
        prediction.as_ref(),
        &method,
        &options,
        (&container, "cc2", WriteMode::CreateNew),
    )
    .unwrap();
    super::segment::fragments_only(&fresh, 0..20).unwrap();
    resume("cc2");
    // A block size that is not whole chunks is refused, naming both.
    let e = segment_array(
        prediction.as_ref(),
        &method,
        &SegmentOptions {
            block_voxels: Some(vec![12, 16, 8]),
            ..SegmentOptions::default()
        },
        (&container, "bad", WriteMode::CreateNew),
        &|_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("[12, 16, 8]") && e.contains("[8, 8, 8]"), "{e}");
}
