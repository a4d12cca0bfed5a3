//! Tests of block layout, resumption and provenance.

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
    let whole = watershed_array(
        prediction.as_ref(),
        &predictor,
        &params,
        &container,
        "whole",
        usize::MAX,
        WriteMode::CreateNew,
    )
    .unwrap();
    let blocks = watershed_array(
        prediction.as_ref(),
        &predictor,
        &params,
        &container,
        "blocks",
        1000,
        WriteMode::CreateNew,
    )
    .unwrap();
    assert_eq!(blocks.chunks, 27);
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
    assert_eq!(whole.foreground, blocks.foreground);
    // Without the face merge the blocks would hold 27 pieces of the big objects.
    assert_eq!(
        blocks.foreground[0],
        gt.iter().filter(|v| **v != 0).count() as u64
    );
}
