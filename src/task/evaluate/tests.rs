//! Tests of the criteria on hand-computed cases and of the scores store.

use super::*;
use ndarray::IxDyn;

const L3: f64 = 1.584_962_500_721_156_2; // log2(3)

fn u8s(shape: &[usize], values: Vec<u8>) -> ArrayD<u8> {
    ArrayD::from_shape_vec(IxDyn(shape), values).expect("shape fits values")
}

fn u64s(values: &[u64]) -> ArrayD<u64> {
    ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).expect("1-D")
}

/// A 1-D mask of length `n` that is 1 on `on`.
fn line(n: usize, on: std::ops::Range<usize>) -> Vec<u8> {
    (0..n).map(|i| u8::from(on.contains(&i))).collect()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    if expected.is_nan() {
        assert!(actual.is_nan(), "{what}: expected NaN, got {actual}");
    } else {
        let tol = 1e-12 * expected.abs().max(1.0);
        assert!(
            (actual - expected).abs() <= tol,
            "{what}: expected {expected}, got {actual}"
        );
    }
}

/// Compares all 21 binary criteria of a single-channel evaluation.
fn assert_binary(scores: &Scores, expected: [f64; 21]) {
    assert_eq!(scores.criteria, BINARY_METRICS.map(String::from).to_vec());
    for ((name, &actual), expected) in BINARY_METRICS.iter().zip(&scores.values).zip(expected) {
        assert_close(actual, expected, name);
    }
}

fn binary(
    shape: &[usize],
    test: Vec<u8>,
    truth: Vec<u8>,
    spacing: &[f64],
    clip: f64,
    tol: f64,
) -> Scores {
    binary_segmentation(
        &u8s(shape, test),
        &u8s(shape, truth),
        spacing,
        &[],
        clip,
        tol,
    )
    .expect("valid inputs")
}

#[test]
fn line_1x1x10_all_metrics() {
    // T = x 2..6 = {2,3,4,5}, P = x 4..8 = {4,5,6,7}, spacing (1, 1, 4): x steps are 4 nm.
    // #T = #P = 4, TP = {4,5} = 2, FP = {6,7} = 2, FN = {2,3} = 2, union 6, N_T = 10-4 = 6.
    // EDT_T over P: 0, 0, 4, 8; EDT_P over T: 8 (2->4), 4 (3->4), 0, 0.
    // VOI: table (test,truth) (1,1)=2 (1,0)=2 (0,1)=2 (0,0)=4, marginals 4/6 on both sides:
    // split = .2·log2(4/2) + .2·log2(6/2) + .2·log2(4/2) + .4·log2(6/4)
    //       = .4 + .2·L3 + .4·(L3-1) = .6·L3; merge likewise .6·L3; voi = 1.2·L3.
    // clip 5: P -> (0+0+4+5)/4 = 2.25, T -> (5+4+0+0)/4 = 2.25.
    // tol 4: FP_tol = #{8} = 1, FN_tol = #{8} = 1, TP_tol = 6-1-1 = 4 -> P = R = 4/5.
    let s = binary(
        &[1, 1, 10],
        line(10, 4..8),
        line(10, 2..6),
        &[1.0, 1.0, 4.0],
        5.0,
        4.0,
    );
    assert_binary(
        &s,
        [
            0.5,       // dice 2·2/(4+4)
            1.0 / 3.0, // jaccard 2/6
            8.0,       // hausdorff max(8, 8)
            0.5,       // FNR 2/4
            1.0 / 3.0, // FPR 2/6
            0.5,       // FDR 2/4
            0.5,       // precision 2/4
            0.5,       // recall 2/4
            0.5,       // f1
            1.2 * L3,  // voi
            3.0,       // mean FP distance (0+0+4+8)/4
            3.0,       // mean FN distance (8+4+0+0)/4
            3.0,       // mean false distance
            2.25,      // clipped FP
            2.25,      // clipped FN
            2.25,      // clipped mean
            1.0 / 6.0, // FPR with tolerance 1/6
            0.25,      // FNR with tolerance 1/4
            0.8,       // precision with tolerance 4/5
            0.8,       // recall with tolerance 4/5
            0.8,       // f1 with tolerance
        ],
    );
    // The x spacing is what scales the distances: with 1 nm voxels the Hausdorff is 2.
    let iso = binary(
        &[1, 1, 10],
        line(10, 4..8),
        line(10, 2..6),
        &[1.0, 1.0, 1.0],
        5.0,
        4.0,
    );
    assert_close(
        iso.get("hausdorff").unwrap_or(f64::NAN),
        2.0,
        "isotropic hausdorff",
    );
    assert_close(
        iso.get("mean_false_distance").unwrap_or(f64::NAN),
        0.75,
        "iso mean",
    );
    // Binary voi agrees with the general VOI on the 0/1 labelings.
    let to64 = |v: Vec<u8>| u64s(&v.into_iter().map(u64::from).collect::<Vec<_>>());
    let (split, merge) =
        variation_of_information(&to64(line(10, 4..8)), &to64(line(10, 2..6))).expect("1-D");
    assert_close(split, 0.6 * L3, "split");
    assert_close(merge, 0.6 * L3, "merge");
}

#[test]
fn one_dimensional_truth_covers_everything() {
    // 1-D, spacing 2 nm: T = {0,1,2} (all voxels, so N_T = 0), P = {0}.
    // TP = 1, FP = 0, FN = 2, union 3. EDT_T over P: 0; EDT_P over T: 0, 2, 4.
    // VOI: (1,1)=1, (0,1)=2; split = 1/3·log2 3 + 2/3·log2(3/2) = L3 - 2/3; merge = 0.
    // clip 3: T -> (0+2+3)/3 = 5/3. tol 2: FN_tol = #{4} = 1, FP_tol = 0, TP_tol = 3-1 = 2.
    let s = binary(&[3], vec![1, 0, 0], vec![1, 1, 1], &[2.0], 3.0, 2.0);
    assert_binary(
        &s,
        [
            0.5,            // dice 2/(1+3)
            1.0 / 3.0,      // jaccard 1/3
            4.0,            // hausdorff max(0, 4)
            2.0 / 3.0,      // FNR 2/3
            f64::NAN,       // FPR: N_T = 0
            0.0,            // FDR 0/1
            1.0,            // precision 1/1
            1.0 / 3.0,      // recall 1/3
            0.5,            // f1 2·(1/3)/(4/3)
            L3 - 2.0 / 3.0, // voi (= binary entropy of 1/3)
            0.0,            // mean FP distance
            2.0,            // mean FN distance (0+2+4)/3
            1.0,            // mean false distance
            0.0,            // clipped FP
            5.0 / 3.0,      // clipped FN
            5.0 / 6.0,      // clipped mean
            f64::NAN,       // FPR with tolerance: N_T = 0
            1.0 / 3.0,      // FNR with tolerance 1/3
            1.0,            // precision with tolerance 2/2
            2.0 / 3.0,      // recall with tolerance 2/3
            0.8,            // f1 with tolerance 2·(2/3)/(5/3)
        ],
    );
}

#[test]
fn two_dimensional_anisotropic_row_and_column() {
    // 3×3, spacing (y 2, x 1). T = row 0, P = column 0; TP = {(0,0)}, FP = FN = 2,
    // union 5, N_T = 6. EDT_T over P: 0, 2, 4 (rows are 2 nm apart); EDT_P over T: 0, 1, 2.
    // VOI: (1,1)=1 (1,0)=2 (0,1)=2 (0,0)=4, marginals 3/6 on both sides:
    // split = 1/9·log2 3 + 2/9·log2 3 + 2/9·log2(3/2) + 4/9·log2(3/2) = L3 - 2/3 = merge.
    // clip 1.5: P -> (0+1.5+1.5)/3 = 1, T -> (0+1+1.5)/3 = 5/6.
    // tol 1: FP_tol = #{2,4} = 2, FN_tol = #{2} = 1, TP_tol = 5-1-2 = 2: P 2/4, R 2/3.
    let row = vec![1, 1, 1, 0, 0, 0, 0, 0, 0];
    let column = vec![1, 0, 0, 1, 0, 0, 1, 0, 0];
    let s = binary(&[3, 3], column.clone(), row.clone(), &[2.0, 1.0], 1.5, 1.0);
    assert_binary(
        &s,
        [
            1.0 / 3.0,            // dice 2/6
            0.2,                  // jaccard 1/5
            4.0,                  // hausdorff max(4, 2)
            2.0 / 3.0,            // FNR 2/3
            1.0 / 3.0,            // FPR 2/6
            2.0 / 3.0,            // FDR 2/3
            1.0 / 3.0,            // precision
            1.0 / 3.0,            // recall
            1.0 / 3.0,            // f1
            2.0 * L3 - 4.0 / 3.0, // voi
            2.0,                  // mean FP distance (0+2+4)/3
            1.0,                  // mean FN distance (0+1+2)/3
            1.5,                  // mean false distance
            1.0,                  // clipped FP
            5.0 / 6.0,            // clipped FN
            11.0 / 12.0,          // clipped mean
            1.0 / 3.0,            // FPR with tolerance 2/6
            1.0 / 3.0,            // FNR with tolerance 1/3
            0.5,                  // precision with tolerance 2/4
            2.0 / 3.0,            // recall with tolerance 2/3
            4.0 / 7.0,            // f1 with tolerance 2·(1/2·2/3)/(7/6)
        ],
    );
    // Swapping the axis sizes swaps which side is far: mean FP 1, mean FN 2.
    let swapped = binary(&[3, 3], column, row, &[1.0, 2.0], 1.5, 1.0);
    assert_close(swapped.values[10], 1.0, "swapped mean FP");
    assert_close(swapped.values[11], 2.0, "swapped mean FN");
}

#[test]
fn three_dimensional_anisotropic_disjoint_points() {
    // Shape (2,1,3), spacing (z 3, y 1, x 2): T = {(0,0,0)}, P = {(1,0,2)}.
    // Distance sqrt((1·3)² + (2·2)²) = 5. TP = 0, FP = FN = 1, union 2, N_T = 5, n = 6.
    // VOI: (1,0)=1 (0,1)=1 (0,0)=4, marginals 1/5 on both sides:
    // split = 1/6·log2 5 + 1/6·log2 1 + 4/6·log2(5/4) = merge.
    let mut truth = vec![0; 6];
    truth[0] = 1;
    let mut test = vec![0; 6];
    test[5] = 1;
    let voi = 2.0 * (5f64.log2() / 6.0 + 2.0 / 3.0 * 1.25f64.log2());
    // tol 5 (not exceeded, 5 > 5 is false): FP_tol = FN_tol = 0, TP_tol = 2.
    let s = binary(
        &[2, 1, 3],
        test.clone(),
        truth.clone(),
        &[3.0, 1.0, 2.0],
        3.0,
        5.0,
    );
    assert_binary(
        &s,
        [
            0.0,      // dice
            0.0,      // jaccard
            5.0,      // hausdorff
            1.0,      // FNR 1/1
            0.2,      // FPR 1/5
            1.0,      // FDR 1/1
            0.0,      // precision
            0.0,      // recall
            f64::NAN, // f1: precision = recall = 0
            voi,      // voi
            5.0,      // mean FP distance
            5.0,      // mean FN distance
            5.0,      // mean false distance
            3.0,      // clipped FP min(5, 3)
            3.0,      // clipped FN
            3.0,      // clipped mean
            0.0,      // FPR with tolerance 0/5
            0.0,      // FNR with tolerance 0/1
            1.0,      // precision with tolerance 2/2
            1.0,      // recall with tolerance 2/2
            1.0,      // f1 with tolerance
        ],
    );
    // tol 4.9: FP_tol = FN_tol = 1, TP_tol = 2-1-1 = 0.
    let s = binary(
        &[2, 1, 3],
        test.clone(),
        truth.clone(),
        &[3.0, 1.0, 2.0],
        3.0,
        4.9,
    );
    assert_close(s.values[16], 0.2, "FPR tol 1/5");
    assert_close(s.values[17], 1.0, "FNR tol 1/1");
    assert_close(s.values[18], 0.0, "precision tol");
    assert_close(s.values[19], 0.0, "recall tol");
    assert!(s.values[20].is_nan(), "f1 tol with P = R = 0");
    // The per-axis voxel sizes matter: (z 2, y 1, x 3) gives sqrt(2² + 6²) = sqrt 40.
    let s = binary(&[2, 1, 3], test, truth, &[2.0, 1.0, 3.0], 3.0, 5.0);
    assert_close(s.values[2], 40f64.sqrt(), "hausdorff with other spacing");
}

#[test]
fn empty_masks() {
    let nan = f64::NAN;
    // Both empty: dice and jaccard 0/0, Hausdorff 0, everything else NaN.
    let s = binary(&[4], vec![0; 4], vec![0; 4], &[1.0], 1.0, 1.0);
    let mut expected = [nan; 21];
    expected[2] = 0.0;
    assert_binary(&s, expected);
    // No voxels at all behaves the same.
    let s = binary(&[0], vec![], vec![], &[1.0], 1.0, 1.0);
    assert_binary(&s, expected);
    // Only truth: dice 0/(0+1), jaccard 0/1, Hausdorff undefined, FDR 0/0.
    let s = binary(&[4], vec![0; 4], vec![0, 1, 0, 0], &[1.0], 1.0, 1.0);
    let mut expected = [nan; 21];
    expected[0] = 0.0;
    expected[1] = 0.0;
    assert_binary(&s, expected);
    // Only test: as above but FDR = 1/1.
    let s = binary(&[4], vec![0, 1, 0, 0], vec![0; 4], &[1.0], 1.0, 1.0);
    expected[5] = 1.0;
    assert_binary(&s, expected);
}

#[test]
fn two_channels_named_channel_major() {
    // Shape (2 channels, 1, 4), spacing (1, 1). "mito": identical {0,1}; "er": T {0}, P {3}.
    let test = u8s(&[2, 1, 4], vec![1, 1, 0, 0, 0, 0, 0, 1]);
    let truth = u8s(&[2, 1, 4], vec![1, 1, 0, 0, 1, 0, 0, 0]);
    let names = vec!["mito".to_string(), "er".to_string()];
    let s = binary_segmentation(&test, &truth, &[1.0, 1.0], &names, 2.0, 1.0).expect("valid");
    assert_eq!(s.criteria.len(), 42);
    assert_eq!(s.values.len(), 42);
    assert_eq!(s.criteria[0], "mito__dice");
    assert_eq!(s.criteria[1], "mito__jaccard");
    assert_eq!(s.criteria[20], "mito__f1_score_with_tolerance");
    assert_eq!(s.criteria[21], "er__dice");
    assert_eq!(s.criteria[41], "er__f1_score_with_tolerance");
    let get = |name: &str| s.get(name).unwrap_or(f64::NAN);
    assert_close(get("mito__dice"), 1.0, "mito dice");
    assert_close(get("mito__hausdorff"), 0.0, "mito hausdorff");
    assert_close(get("mito__voi"), 0.0, "mito voi");
    assert_close(get("er__dice"), 0.0, "er dice");
    assert_close(get("er__hausdorff"), 3.0, "er hausdorff: x 0 to x 3");
    // Channel 1 matches its own single-channel evaluation.
    let alone = binary(
        &[1, 4],
        vec![0, 0, 0, 1],
        vec![1, 0, 0, 0],
        &[1.0, 1.0],
        2.0,
        1.0,
    );
    for (a, b) in alone.values.iter().zip(&s.values[21..]) {
        assert!(a == b || (a.is_nan() && b.is_nan()), "{a} vs {b}");
    }
}

#[test]
fn binary_input_errors() {
    let a = u8s(&[2, 1, 4], vec![0; 8]);
    let one = vec!["mito".to_string()];
    let err = binary_segmentation(&a, &a, &[1.0, 1.0], &one, 1.0, 1.0).unwrap_err();
    assert!(matches!(
        err,
        EvaluateError::ChannelCount { channels: 2, .. }
    ));
    assert!(err.to_string().contains("[2, 1, 4]"), "{err}");
    let two = vec!["mito".to_string(), "er".to_string()];
    let err = binary_segmentation(&a, &a, &[1.0, 1.0, 1.0], &two, 1.0, 1.0).unwrap_err();
    assert!(matches!(
        err,
        EvaluateError::ChannelCount { channels: 1, .. }
    ));
    let same = vec!["mito".to_string(), "mito".to_string()];
    let err = binary_segmentation(&a, &a, &[1.0, 1.0], &same, 1.0, 1.0).unwrap_err();
    assert!(matches!(
        err,
        EvaluateError::DuplicateName {
            kind: "channel",
            ..
        }
    ));
    let b = u8s(&[2, 4], vec![0; 8]);
    let err = binary_segmentation(&a, &b, &[1.0, 1.0], &two, 1.0, 1.0).unwrap_err();
    assert!(err.to_string().contains("[2, 1, 4]") && err.to_string().contains("[2, 4]"));
    let err = binary_segmentation(&a, &a, &[1.0], &two, 1.0, 1.0).unwrap_err();
    assert!(
        matches!(err, EvaluateError::DimensionMismatch { .. }),
        "{err}"
    );
    for spacing in [
        vec![],
        vec![1.0, 0.0],
        vec![f64::NAN, 1.0],
        vec![1.0, f64::INFINITY],
    ] {
        let err = binary_segmentation(&a, &a, &spacing, &two, 1.0, 1.0).unwrap_err();
        assert!(matches!(err, EvaluateError::InvalidSpacing(_)), "{err}");
    }
    let err = binary_segmentation(&a, &a, &[1.0, 1.0], &two, -1.0, 1.0).unwrap_err();
    assert!(matches!(
        err,
        EvaluateError::InvalidDistance {
            name: "clip_distance",
            ..
        }
    ));
    let err = binary_segmentation(&a, &a, &[1.0, 1.0], &two, 1.0, f64::NAN).unwrap_err();
    assert!(matches!(
        err,
        EvaluateError::InvalidDistance {
            name: "tol_distance",
            ..
        }
    ));
}

#[test]
fn voi_identical_and_relabelled_is_zero() {
    let truth = u64s(&[1, 1, 2, 2, 3]);
    assert_eq!(variation_of_information(&truth, &truth), Ok((0.0, 0.0)));
    let relabelled = u64s(&[5, 5, 7, 7, 0]);
    assert_eq!(
        variation_of_information(&relabelled, &truth),
        Ok((0.0, 0.0))
    );
}

#[test]
fn voi_split_and_merge_of_halved_object() {
    // Truth object 1 (half the voxels) is split into two halves by the test labels:
    // split = H(test|truth) = 1 bit × 1/2 of the voxels = 0.5; merge = 0.
    let truth = u64s(&[1, 1, 1, 1, 2, 2, 2, 2]);
    let test = u64s(&[1, 1, 3, 3, 2, 2, 2, 2]);
    let (split, merge) = variation_of_information(&test, &truth).expect("same shape");
    assert_close(split, 0.5, "split");
    assert_close(merge, 0.0, "merge");
    // Exchanging the roles turns the split into a merge.
    let (split, merge) = variation_of_information(&truth, &test).expect("same shape");
    assert_close(split, 0.0, "split");
    assert_close(merge, 0.5, "merge");
}

#[test]
fn voi_label_zero_is_ordinary() {
    // Test is all 0, truth has 0 and 1 half each: merge = H(truth|test) = 1 bit, split = 0.
    let (split, merge) =
        variation_of_information(&u64s(&[0, 0, 0, 0]), &u64s(&[0, 0, 1, 1])).expect("1-D");
    assert_close(split, 0.0, "split");
    assert_close(merge, 1.0, "merge");
}

#[test]
fn voi_edge_cases() {
    let err = variation_of_information(&u64s(&[1, 2]), &u64s(&[1])).unwrap_err();
    assert!(
        err.to_string().contains("[2]") && err.to_string().contains("[1]"),
        "{err}"
    );
    let (split, merge) = variation_of_information(&u64s(&[]), &u64s(&[])).expect("same");
    assert!(split.is_nan() && merge.is_nan());
    // Large labels (no +1 shift, so no overflow).
    let big = u64s(&[u64::MAX, u64::MAX, 0]);
    assert_eq!(variation_of_information(&big, &big), Ok((0.0, 0.0)));
}

#[test]
fn instance_voi_is_the_average() {
    // Truth [1,1,2,2], test [1,2,2,2]: table (test,truth) (1,1)=1 (2,1)=1 (2,2)=2.
    // split = H(test|truth) = 1/4·log2(2/1) + 1/4·log2(2/1) + 2/4·log2(2/2) = 0.5.
    // merge = H(truth|test) = 1/4·log2(1/1) + 1/4·log2(3/1) + 2/4·log2(3/2)
    //       = 0.75·L3 - 0.5.
    // voi = (0.5 + 0.75·L3 - 0.5) / 2 = 0.375·L3.
    let s = instance(&u64s(&[1, 2, 2, 2]), &u64s(&[1, 1, 2, 2])).expect("same shape");
    assert_eq!(s.criteria, vec!["voi_split", "voi_merge", "voi"]);
    assert_close(s.values[0], 0.5, "voi_split");
    assert_close(s.values[1], 0.75 * L3 - 0.5, "voi_merge");
    assert_close(s.values[2], 0.375 * L3, "voi");
    assert!(instance(&u64s(&[1]), &u64s(&[1, 2])).is_err());
}

#[test]
fn dummy_is_deterministic_and_in_unit_interval() {
    let a = dummy(42);
    assert_eq!(a, dummy(42));
    assert_eq!(a.criteria, vec!["frizz_level", "blipp_score"]);
    assert_ne!(a.values, dummy(43).values);
    assert_ne!(a.values[0], a.values[1]);
    for seed in [0, 1, 42, u64::MAX] {
        for v in dummy(seed).values {
            assert!((0.0..1.0).contains(&v), "{v}");
        }
    }
}

#[test]
fn criterion_metadata() {
    let f1 = criterion_info("mito__f1_score").expect("known");
    assert_eq!(
        f1,
        CriterionInfo {
            name: "mito__f1_score".to_string(),
            higher_is_better: true,
            bounds: (0.0, Some(1.0)),
            store_best: true,
        }
    );
    let h = criterion_info("hausdorff").expect("known");
    assert!(!h.higher_is_better && !h.store_best);
    assert_eq!(h.bounds, (0.0, None));
    let d = criterion_info("er__mean_false_distance_clipped").expect("known");
    assert_eq!(d.bounds, (0.0, None));
    assert!(!d.higher_is_better);
    for name in ["voi", "a__voi", "voi_split", "voi_merge", "blipp_score"] {
        let i = criterion_info(name).expect("known");
        assert!(!i.higher_is_better && i.store_best, "{name}");
    }
    let frizz = criterion_info("frizz_level").expect("known");
    assert!(frizz.higher_is_better && frizz.store_best);
    for name in [
        "precision_with_tolerance",
        "recall",
        "f1_score_with_tolerance",
        "jaccard",
    ] {
        let i = criterion_info(name).expect("known");
        assert!(i.higher_is_better && !i.store_best, "{name}");
    }
    for name in ["false_positive_rate_with_tolerance", "false_discovery_rate"] {
        let i = criterion_info(name).expect("known");
        assert!(!i.higher_is_better && !i.store_best && i.bounds == (0.0, Some(1.0)));
    }
    // Every binary metric is known; only voi and f1_score keep a best.
    let stored: Vec<&str> = BINARY_METRICS
        .iter()
        .copied()
        .filter(|m| criterion_info(m).expect("known").store_best)
        .collect();
    assert_eq!(stored, vec!["f1_score", "voi"]);
    assert_eq!(
        criterion_info("a__b__dice").map(|i| i.higher_is_better),
        Some(true)
    );
    assert_eq!(criterion_info("nonsense"), None);
    assert_eq!(criterion_info("mito__"), None);
    assert!(h.is_better(1.0, 2.0) && !f1.is_better(1.0, 2.0) && !f1.is_better(f64::NAN, 0.0));
}

const NAN: f64 = f64::NAN;

fn store() -> ValidationScores {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    ValidationScores::new(
        names(&["dice", "voi", "f1_score"]),
        names(&["t0.5", "t0.7"]),
        names(&["crop1", "crop2"]),
    )
    .expect("valid names")
}

/// A block for `store()`: NaN except the given `(dataset, parameter, criterion)` cells.
fn block(cells: &[((usize, usize, usize), f64)]) -> ScoreBlock {
    let mut b = vec![vec![vec![NAN; 3]; 2]; 2];
    for &((d, p, c), v) in cells {
        b[d][p][c] = v;
    }
    b
}

#[test]
fn best_iteration_skips_nan_and_follows_direction() {
    let mut s = store();
    // (crop1, t0.5): dice NaN, .7, .9, NaN; voi .5, NaN, .2, .3; f1 .8, .8, .6, NaN.
    for (it, dice, voi, f1) in [
        (300, 0.9, 0.2, 0.6),
        (100, NAN, 0.5, 0.8),
        (400, NAN, 0.3, NAN),
        (200, 0.7, NAN, 0.8),
    ] {
        let b = block(&[((0, 0, 0), dice), ((0, 0, 1), voi), ((0, 0, 2), f1)]);
        s.add_iteration(it, b).expect("shape fits");
    }
    assert_eq!(s.iterations().collect::<Vec<_>>(), vec![100, 200, 300, 400]);
    assert_eq!(s.best_iteration("crop1", "t0.5", "dice"), Some((300, 0.9)));
    assert_eq!(s.best_iteration("crop1", "t0.5", "voi"), Some((300, 0.2)));
    // Tie at 0.8 between 100 and 200: the earliest wins (even though 200 came later).
    assert_eq!(
        s.best_iteration("crop1", "t0.5", "f1_score"),
        Some((100, 0.8))
    );
    // All NaN, or unknown names: nothing.
    assert_eq!(s.best_iteration("crop1", "t0.7", "dice"), None);
    assert_eq!(s.best_iteration("crop3", "t0.5", "dice"), None);
    assert_eq!(s.best_iteration("crop1", "t0.9", "dice"), None);
    assert_eq!(s.best_iteration("crop1", "t0.5", "hausdorff"), None);
    assert_eq!(s.value(200, "crop1", "t0.5", "dice"), Some(0.7));
    assert_eq!(s.value(250, "crop1", "t0.5", "dice"), None);
    // Replacing iteration 200 with a better dice.
    s.add_iteration(200, block(&[((0, 0, 0), 0.95)]))
        .expect("shape fits");
    assert_eq!(s.iterations().count(), 4);
    assert_eq!(s.best_iteration("crop1", "t0.5", "dice"), Some((200, 0.95)));
    assert_eq!(
        s.best_iteration("crop1", "t0.5", "f1_score"),
        Some((100, 0.8))
    );
}

#[test]
fn overall_best_across_parameters() {
    let mut s = store();
    // crop1 f1: t0.5 [.5, .6], t0.7 [.7, NaN] -> (100, t0.7, .7).
    // crop2 voi: t0.5 [.3, .2], t0.7 [.2, .4] -> tie at .2, iteration 100 comes first.
    s.add_iteration(
        100,
        block(&[
            ((0, 0, 2), 0.5),
            ((0, 1, 2), 0.7),
            ((1, 0, 1), 0.3),
            ((1, 1, 1), 0.2),
        ]),
    )
    .expect("shape fits");
    s.add_iteration(
        200,
        block(&[
            ((0, 0, 2), 0.6),
            ((0, 1, 2), NAN),
            ((1, 0, 1), 0.2),
            ((1, 1, 1), 0.4),
        ]),
    )
    .expect("shape fits");
    assert_eq!(s.overall_best("crop1", "f1_score"), Some((100, 1, 0.7)));
    assert_eq!(s.overall_best("crop2", "voi"), Some((100, 1, 0.2)));
    assert_eq!(s.overall_best("crop2", "dice"), None);
    assert_eq!(s.overall_best("crop9", "voi"), None);
    // Table: every dataset × store_best criterion (voi, f1_score), dataset-major.
    let table = s.best_table();
    let entry = |dataset: &str, criterion: &str, best| BestEntry {
        dataset: dataset.to_string(),
        criterion: criterion.to_string(),
        best,
    };
    assert_eq!(
        table,
        vec![
            entry("crop1", "voi", None),
            entry("crop1", "f1_score", Some((100, 1, 0.7))),
            entry("crop2", "voi", Some((100, 1, 0.2))),
            entry("crop2", "f1_score", None),
        ]
    );
}

#[test]
fn store_shape_and_name_errors() {
    let mut s = store();
    let err = s.add_iteration(5, vec![vec![vec![0.0; 3]; 2]]).unwrap_err();
    assert_eq!(
        err,
        EvaluateError::BlockShape {
            iteration: 5,
            level: "datasets".to_string(),
            expected: 2,
            found: 1,
        }
    );
    let mut ragged = block(&[]);
    ragged[1].pop();
    let err = s.add_iteration(5, ragged).unwrap_err();
    assert!(err.to_string().contains("parameters in dataset 1"), "{err}");
    let mut ragged = block(&[]);
    ragged[1][1].push(0.0);
    let err = s.add_iteration(5, ragged).unwrap_err();
    assert!(
        err.to_string()
            .contains("4 criteria in dataset 1, parameter 1, expected 3"),
        "{err}"
    );
    assert_eq!(s.iterations().count(), 0);
    assert!(s.block(5).is_none());
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let err = ValidationScores::new(names(&["dice"]), names(&["a", "a"]), names(&["c"]));
    assert!(matches!(
        err,
        Err(EvaluateError::DuplicateName {
            kind: "parameter",
            ..
        })
    ));
    let err = ValidationScores::new(names(&["mito__dice", "bogus"]), names(&[]), names(&[]));
    assert_eq!(
        err,
        Err(EvaluateError::UnknownCriterion("bogus".to_string()))
    );
}

#[test]
fn best_for_a_metric_averages_the_channels() {
    let mut s = ValidationScores::new(
        vec!["a__f1_score".into(), "b__f1_score".into(), "a__dice".into()],
        vec!["t0".into(), "t1".into()],
        vec!["crop".into()],
    )
    .unwrap();
    // Iteration 10: t0 mean 0.5, t1 mean 0.6; iteration 20: t0 mean 0.7 (a NaN dice
    // does not matter), t1 has a NaN F1 and is skipped.
    s.add_iteration(10, vec![vec![vec![0.4, 0.6, 0.1], vec![0.9, 0.3, 0.2]]])
        .unwrap();
    s.add_iteration(
        20,
        vec![vec![vec![0.8, 0.6, f64::NAN], vec![f64::NAN, 1.0, 0.3]]],
    )
    .unwrap();
    let (it, p, v) = s.best_for("crop", "f1_score").unwrap();
    assert_eq!((it, p), (20, 0));
    assert!((v - 0.7).abs() < 1e-12);
    // A full name picks that column only: a__f1_score is best at 10/t1 (0.9).
    assert_eq!(s.best_for("crop", "a__f1_score"), Some((10, 1, 0.9)));
    assert_eq!(s.best_for("crop", "a__dice"), Some((20, 1, 0.3)));
    assert_eq!(s.best_for("crop", "voi"), None);
    assert_eq!(s.best_for("other", "f1_score"), None);
    assert_eq!(
        s.best_where("crop", "f1_score", |i, _| i == 10),
        Some((10, 1, 0.6))
    );
}

/// The statistics of `test` and `truth` (1×1×n lines) over the blocks `[0, cut)` and
/// `[cut, n)`, each read with `context` voxels of context, summed.
fn split_stats(
    test: &[u8],
    truth: &[u8],
    cut: usize,
    context: usize,
    (clip, tol): (f64, f64),
) -> Result<ChannelStats, EvaluateError> {
    let n = test.len();
    let mut sum = ChannelStats::default();
    for (begin, end) in [(0, cut), (cut, n)] {
        let (lo, hi) = (begin.saturating_sub(context), (end + context).min(n));
        let part = |v: &[u8]| u8s(&[1, 1, hi - lo], v[lo..hi].to_vec());
        let ctx = BlockContext {
            core: vec![0..1, 0..1, begin - lo..end - lo],
            open: vec![(false, false), (false, false), (lo > 0, hi < n)],
        };
        let stats = binary_stats(
            (&part(test).view(), &part(truth).view(), None),
            &[1.0; 3],
            &[],
            (clip, tol),
            &ctx,
        )?;
        sum.add(&stats[0]);
    }
    Ok(sum)
}

#[test]
fn block_statistics_add_up_to_the_whole_and_unknown_distances_are_named() {
    // Truth at x = 0..2, test at x = 3 and x = 9 of a 10-voxel line; blocks [0, 5) and
    // [5, 10) read with 3 voxels of context (reaching 4 > clip 2, tolerance 1).
    let truth = line(10, 0..2);
    let mut test = line(10, 3..4);
    test[9] = 1;
    let whole = binary(
        &[1, 1, 10],
        test.clone(),
        truth.clone(),
        &[1.0; 3],
        2.0,
        1.0,
    );
    let sum = split_stats(&test, &truth, 5, 3, (2.0, 1.0)).unwrap();
    assert_eq!((sum.voxels, sum.test, sum.truth, sum.both), (10, 2, 2, 0));
    // x = 9 is 8 from the truth, which block [5, 10) (read as x 2..10) does not see: its
    // distance is unknown. x = 3 is 2 away, seen in block [0, 5).
    assert_eq!(sum.test_to_truth.unknown, 1);
    assert_eq!(sum.test_to_truth.sum_nm, 2.0);
    // Clipped: 2 (x = 3) + the clip for x = 9 = 4, as in one piece (2 + min(8, 2)).
    assert_eq!(sum.test_to_truth.sum_clipped_nm, 4.0);
    assert_eq!(sum.test_to_truth.beyond_tolerance, 2);
    // Truth voxels x = 0, 1 are 3 and 2 from the test's x = 3: both in block 0's view.
    assert_eq!(sum.truth_to_test.unknown, 0);
    assert_eq!(sum.truth_to_test.sum_nm, 5.0);
    let blocks = binary_scores(&[sum], None);
    for (name, (a, b)) in BINARY_METRICS
        .iter()
        .zip(blocks.values.iter().zip(&whole.values))
    {
        if sum.not_computed().contains(name) {
            assert!(a.is_nan(), "{name}: {a}");
            assert!(b.is_finite(), "{name} in one piece: {b}");
        } else {
            assert_close(*a, *b, name);
        }
    }
    assert_eq!(
        sum.not_computed(),
        vec![
            "hausdorff",
            "mean_false_positive_distance",
            "mean_false_distance"
        ]
    );
    // With context reaching the whole line, every criterion equals the one-piece one.
    let full = split_stats(&test, &truth, 5, 10, (2.0, 1.0)).unwrap();
    assert!(full.not_computed().is_empty());
    let full = binary_scores(&[full], None);
    for (name, (a, b)) in BINARY_METRICS
        .iter()
        .zip(full.values.iter().zip(&whole.values))
    {
        assert_close(*a, *b, name);
    }
    // Context that does not reach past the clip distance is refused.
    let e = split_stats(&test, &truth, 5, 1, (2.0, 1.0)).unwrap_err();
    assert_eq!(
        e,
        EvaluateError::ContextTooSmall {
            reach_nm: 2.0,
            needed_nm: 2.0
        }
    );
}

#[test]
fn contingency_tables_of_blocks_add_up_to_the_same_variation_of_information() {
    let test: Vec<u64> = vec![1, 1, 2, 2, 2, 3, 3, 0, 0, 1];
    let truth: Vec<u64> = vec![5, 5, 5, 6, 6, 6, 7, 7, 0, 0];
    let whole = instance(&u64s(&test), &u64s(&truth)).unwrap();
    let mut table: HashMap<(u64, u64), u64> = HashMap::new();
    for (a, b) in [(0, 4), (4, 10)] {
        let part =
            label_pairs(&u64s(&test[a..b]).view(), &u64s(&truth[a..b]).view(), None).unwrap();
        for (k, n) in part {
            *table.entry(k).or_default() += n;
        }
    }
    // The same table, so bit-identical scores.
    assert_eq!(instance_scores(&table), whole);
    assert!(whole.values[2] > 0.0);
}
