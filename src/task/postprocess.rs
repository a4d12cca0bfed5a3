//! Post-processing of predictions: thresholds (distance tasks) and argmax (one-hot), with
//! the parameter grids validation sweeps.

use ndarray::{ArrayD, Axis};

/// One point of a post-processor's parameter grid.
#[derive(Debug, Clone, PartialEq)]
pub enum PostProcessorParameters {
    /// Foreground where the prediction exceeds `threshold` (in prediction units).
    Threshold {
        /// Index in the grid.
        id: usize,
        /// The threshold.
        threshold: f64,
    },
    /// The channel with the largest value.
    Argmax {
        /// Index in the grid.
        id: usize,
    },
    /// Mutex watershed of affinities with `bias` subtracted from every edge.
    Watershed {
        /// Index in the grid.
        id: usize,
        /// Subtracted from affinities in [0, 1]: higher splits more.
        bias: f64,
    },
    /// The dummy task's output: every voxel `min_size`.
    Dummy {
        /// Index in the grid.
        id: usize,
        /// The value written.
        min_size: usize,
    },
}

impl PostProcessorParameters {
    /// The string DaCapo uses in output array names (`threshold_0.2`, `ArgmaxPostProcessorParameters(id=1)`).
    pub fn name(&self) -> String {
        match self {
            PostProcessorParameters::Threshold { threshold, .. } => {
                format!("threshold_{threshold}")
            }
            PostProcessorParameters::Argmax { id } => {
                format!("ArgmaxPostProcessorParameters(id={id})")
            }
            PostProcessorParameters::Watershed { bias, .. } => format!("bias_{bias}"),
            PostProcessorParameters::Dummy { min_size, .. } => format!("min_size_{min_size}"),
        }
    }

    /// Finds the parameters called `name` in `grid`; a threshold grid also accepts any
    /// `threshold_<value>`.
    pub fn from_name(name: &str, grid: &[PostProcessorParameters]) -> Option<Self> {
        if let Some(p) = grid.iter().find(|p| p.name() == name) {
            return Some(p.clone());
        }
        let value = name.strip_prefix("threshold_")?.parse::<f64>().ok()?;
        let is_threshold = grid
            .iter()
            .any(|p| matches!(p, PostProcessorParameters::Threshold { .. }));
        (is_threshold && value.is_finite()).then_some(PostProcessorParameters::Threshold {
            id: grid.len(),
            threshold: value,
        })
    }
}

/// The threshold grid for tanh-distance predictions stored as float32: −0.2, 0.0 and 0.2
/// (DaCapo's uint8 grid 100, 127, 150 in prediction units; DaCapo 0.3.5 compares float
/// predictions with 127 and never finds foreground).
pub fn threshold_grid() -> Vec<PostProcessorParameters> {
    [-0.2, 0.0, 0.2]
        .iter()
        .enumerate()
        .map(|(id, t)| PostProcessorParameters::Threshold { id, threshold: *t })
        .collect()
}

/// `uint8(prediction > threshold)`, same shape as the prediction.
pub fn threshold(prediction: &ArrayD<f32>, threshold: f64) -> ArrayD<u8> {
    // Compared in f32 so that a prediction equal to the threshold (as stored) is not above it.
    let t = threshold as f32;
    prediction.mapv(|v| u8::from(v > t))
}

/// The index of the largest channel (axis 0) per voxel, uint8 (ties: the first).
pub fn argmax(prediction: &ArrayD<f32>) -> ArrayD<u8> {
    prediction.map_axis(Axis(0), |lane| {
        let mut best = 0usize;
        for (i, v) in lane.iter().enumerate() {
            if *v > lane[best] {
                best = i;
            }
        }
        best.min(255) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn thresholds_argmax_and_names() {
        let p =
            ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![-0.5, 0.1, 0.3, 0.2, 0.0, 0.9]).unwrap();
        assert_eq!(
            threshold(&p, 0.0).iter().copied().collect::<Vec<_>>(),
            vec![0, 1, 1, 1, 0, 1]
        );
        assert_eq!(
            threshold(&p, 0.2).iter().copied().collect::<Vec<_>>(),
            vec![0, 0, 1, 0, 0, 1]
        );
        assert_eq!(
            argmax(&p).iter().copied().collect::<Vec<_>>(),
            vec![1, 0, 1]
        );
        let grid = threshold_grid();
        assert_eq!(grid.len(), 3);
        assert_eq!(grid[0].name(), "threshold_-0.2");
        assert_eq!(grid[1].name(), "threshold_0");
        assert_eq!(
            PostProcessorParameters::Argmax { id: 1 }.name(),
            "ArgmaxPostProcessorParameters(id=1)"
        );
    }
}
