//! The orientation of the cross-sections: a unit quaternion rotating all three panels'
//! planes together about the view's position, as neuroglancer's
//! `crossSectionOrientation` does. Identity shows the axis-aligned xy, xz and yz planes.

use serde::{Deserialize, Serialize};

/// A rotation of the cross-sections, stored as neuroglancer stores it: a unit quaternion
/// `[x, y, z, w]` over the world's x, y, z axes (Segno's world vectors are z, y, x).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Orientation(pub [f64; 4]);

impl Default for Orientation {
    fn default() -> Self {
        Self::IDENTITY
    }
}

/// A vector of Segno's z, y, x order in x, y, z order, and back (the same swap).
fn swap(v: [f64; 3]) -> [f64; 3] {
    [v[2], v[1], v[0]]
}

impl Orientation {
    /// No rotation: the axis-aligned planes.
    pub const IDENTITY: Orientation = Orientation([0.0, 0.0, 0.0, 1.0]);

    /// Whether this is exactly no rotation (the axis-aligned planes, drawn exactly as
    /// before any rotation).
    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }

    /// Checks that the quaternion is finite and not zero (it is normalised when used).
    pub fn check(&self) -> Result<(), String> {
        let n = self.0.iter().map(|c| c * c).sum::<f64>();
        if !self.0.iter().all(|c| c.is_finite()) || n < 1e-12 {
            return Err(format!(
                "orientation must be a non-zero quaternion [x, y, z, w], got {:?}",
                self.0
            ));
        }
        Ok(())
    }

    /// The same rotation with a unit quaternion (w ≥ 0); identity when it cannot be
    /// normalised.
    pub fn normalized(&self) -> Orientation {
        let n = self.0.iter().map(|c| c * c).sum::<f64>().sqrt();
        if !n.is_finite() || n < 1e-12 {
            return Self::IDENTITY;
        }
        let s = if self.0[3] < 0.0 { -1.0 / n } else { 1.0 / n };
        Orientation(self.0.map(|c| c * s))
    }

    /// The rotation by `angle_rad` about the world direction `axis` (z, y, x order;
    /// any length but zero) applied after this one.
    pub fn rotated(&self, axis: [f64; 3], angle_rad: f64) -> Orientation {
        let a = swap(axis);
        let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
        if n < 1e-12 || !angle_rad.is_finite() {
            return *self;
        }
        let (s, c) = (angle_rad / 2.0).sin_cos();
        let r = [a[0] / n * s, a[1] / n * s, a[2] / n * s, c];
        let q = self.normalized().0;
        // r * q (Hamilton product, [x, y, z, w]).
        Orientation([
            r[3] * q[0] + r[0] * q[3] + r[1] * q[2] - r[2] * q[1],
            r[3] * q[1] - r[0] * q[2] + r[1] * q[3] + r[2] * q[0],
            r[3] * q[2] + r[0] * q[1] - r[1] * q[0] + r[2] * q[3],
            r[3] * q[3] - r[0] * q[0] - r[1] * q[1] - r[2] * q[2],
        ])
        .normalized()
    }

    /// The rotated direction of world vector `v` (z, y, x order).
    pub fn apply(&self, v: [f64; 3]) -> [f64; 3] {
        let [x, y, z, w] = self.normalized().0;
        let p = swap(v);
        // v + 2w (q × v) + 2 q × (q × v)
        let t = [
            2.0 * (y * p[2] - z * p[1]),
            2.0 * (z * p[0] - x * p[2]),
            2.0 * (x * p[1] - y * p[0]),
        ];
        swap([
            p[0] + w * t[0] + (y * t[2] - z * t[1]),
            p[1] + w * t[1] + (z * t[0] - x * t[2]),
            p[2] + w * t[2] + (x * t[1] - y * t[0]),
        ])
    }

    /// The rotated unit vector of world axis `axis` (0 z, 1 y, 2 x), in z, y, x order.
    pub fn axis(&self, axis: usize) -> [f64; 3] {
        let mut e = [0.0; 3];
        e[axis.min(2)] = 1.0;
        self.apply(e)
    }

    /// The rotation's angle in degrees (0 for identity).
    pub fn angle_deg(&self) -> f64 {
        let w = self.normalized().0[3].clamp(-1.0, 1.0);
        (2.0 * w.acos()).to_degrees()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 3], b: [f64; 3]) -> bool {
        (0..3).all(|i| (a[i] - b[i]).abs() < 1e-12)
    }

    #[test]
    fn rotations_turn_axes_as_the_right_hand_rule_says() {
        let q = Orientation::IDENTITY;
        assert!(close(q.axis(2), [0.0, 0.0, 1.0]));
        // 90° about z (world z, y, x order: [1, 0, 0]) turns x into y.
        let r = q.rotated([1.0, 0.0, 0.0], std::f64::consts::FRAC_PI_2);
        assert!(close(r.axis(2), [0.0, 1.0, 0.0]), "{:?}", r.axis(2));
        assert!(close(r.axis(1), [0.0, 0.0, -1.0]));
        assert!(close(r.axis(0), [1.0, 0.0, 0.0]));
        // Neuroglancer's quaternion of that rotation.
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert!((r.0[2] - s).abs() < 1e-12 && (r.0[3] - s).abs() < 1e-12);
        assert!((r.angle_deg() - 90.0).abs() < 1e-9);
        // And back.
        let back = r.rotated([1.0, 0.0, 0.0], -std::f64::consts::FRAC_PI_2);
        assert!(close(back.axis(2), [0.0, 0.0, 1.0]));
        assert!(back.angle_deg() < 1e-6);
    }

    #[test]
    fn a_zero_quaternion_is_refused() {
        assert!(Orientation([0.0; 4]).check().is_err());
        assert!(Orientation([0.0, 0.0, f64::NAN, 1.0]).check().is_err());
        assert!(Orientation([0.0, 0.0, 0.0, 2.0]).check().is_ok());
        assert_eq!(
            Orientation([0.0, 0.0, 0.0, 2.0]).normalized(),
            Orientation::IDENTITY
        );
    }
}
