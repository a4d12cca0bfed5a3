//! Connected components of a foreground mask: the objects of a thresholded prediction.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// Labels the face-connected components of the non-zero voxels of `mask` (two voxels are
/// connected when they differ by one along a single axis: 6-connectivity in 3D) with ids
/// `1..=K` in raster order of first appearance, 0 elsewhere; returns the labels and `K`.
pub fn connected_components(mask: &ArrayViewD<u8>) -> (ArrayD<u64>, u64) {
    let shape = mask.shape().to_vec();
    let n: usize = shape.iter().product();
    let values: Vec<bool> = mask.iter().map(|v| *v != 0).collect();
    let mut strides = vec![1usize; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * shape[a + 1];
    }
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], x: usize) -> usize {
        let mut root = x;
        while parent[root] != root {
            root = parent[root];
        }
        let mut y = x;
        while parent[y] != root {
            let next = parent[y];
            parent[y] = root;
            y = next;
        }
        root
    }
    let mut index = vec![0usize; shape.len()];
    for u in 0..n {
        if values[u] {
            for (a, &i) in index.iter().enumerate() {
                if i > 0 && values[u - strides[a]] {
                    let (ru, rv) = (find(&mut parent, u), find(&mut parent, u - strides[a]));
                    if ru != rv {
                        // The earlier voxel's root stays: roots are first appearances.
                        parent[ru.max(rv)] = ru.min(rv);
                    }
                }
            }
        }
        for a in (0..shape.len()).rev() {
            index[a] += 1;
            if index[a] < shape[a] {
                break;
            }
            index[a] = 0;
        }
    }
    let mut label_of_root = vec![0u64; n];
    let mut next = 0u64;
    let mut labels = Vec::with_capacity(n);
    for (u, &foreground) in values.iter().enumerate() {
        if !foreground {
            labels.push(0);
            continue;
        }
        let root = find(&mut parent, u);
        if label_of_root[root] == 0 {
            next += 1;
            label_of_root[root] = next;
        }
        labels.push(label_of_root[root]);
    }
    // The shape is the mask's, so the labels always fit it.
    let labels = ArrayD::from_shape_vec(IxDyn(&shape), labels)
        .unwrap_or_else(|_| ArrayD::zeros(IxDyn(&shape)));
    (labels, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr2, Array3};

    #[test]
    fn components_by_hand() {
        // Diagonal neighbours are not connected; a U shape is one component.
        let mask = arr2(&[[1u8, 0, 1], [1, 0, 1], [1, 1, 1], [0, 0, 0], [0, 1, 0]]).into_dyn();
        let (labels, k) = connected_components(&mask.view());
        assert_eq!(k, 2);
        assert_eq!(
            labels.iter().copied().collect::<Vec<_>>(),
            vec![1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0]
        );
        let diagonal = arr2(&[[1u8, 0], [0, 1]]).into_dyn();
        assert_eq!(connected_components(&diagonal.view()).1, 2);
    }

    #[test]
    fn components_in_3d_and_empty() {
        let mut mask = Array3::<u8>::zeros((4, 4, 4));
        mask[[0, 0, 0]] = 1;
        mask[[1, 0, 0]] = 1;
        mask[[3, 3, 3]] = 1;
        mask[[3, 3, 2]] = 1;
        mask[[0, 3, 3]] = 1;
        let (labels, k) = connected_components(&mask.into_dyn().view());
        assert_eq!(k, 3);
        assert_eq!(labels[[1, 0, 0]], 1);
        assert_eq!(labels[[0, 3, 3]], 2);
        assert_eq!(labels[[3, 3, 2]], 3);
        assert_eq!(labels[[3, 3, 3]], 3);
        let empty = ArrayD::<u8>::zeros(IxDyn(&[0, 3]));
        assert_eq!(connected_components(&empty.view()).1, 0);
    }
}
