//! Segment colours as neuroglancer draws them, so a segmentation looks the same in Segno
//! as in the viewer users know (a seeded MurmurHash3-style combine of the id's two 32-bit
//! halves picks a hue and a saturation at full value), and the image colormaps.

/// Neuroglancer's axis colours by world axis (z, y, x): x red, y green, z blue. Cross hairs
/// and the 3D panel's axes use them.
pub const AXIS_COLORS: [[u8; 3]; 3] = [[0, 96, 255], [0, 200, 0], [255, 40, 40]];

/// One round of neuroglancer's `hashCombine` (a MurmurHash3 x86_32 block step): mixes the
/// 32-bit `value` into `state`.
pub fn hash_combine(state: u32, value: u32) -> u32 {
    let k = value
        .wrapping_mul(0xCC9E_2D51)
        .rotate_left(15)
        .wrapping_mul(0x1B87_3593);
    (state ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xE654_6B64)
}

/// HSV (each in [0, 1]) to RGB in [0, 1], as neuroglancer's `hsvToRgb`.
pub fn hsv_to_rgb(h: f64, s: f64, v: f64) -> [f64; 3] {
    let h6 = h * 6.0;
    let sector = h6.floor();
    let f = h6 - sector;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match (sector as i64).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// The 8-bit RGB colour neuroglancer gives segment `id` with colour seed `seed`.
pub fn segment_color(seed: u32, id: u64) -> [u8; 3] {
    let h = hash_combine(hash_combine(seed, id as u32), (id >> 32) as u32);
    let hue = f64::from(h & 0xFF) / 255.0;
    let saturation = 0.5 + 0.5 * f64::from((h >> 8) & 0xFF) / 255.0;
    hsv_to_rgb(hue, saturation, 1.0).map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8)
}

/// `#rrggbb` of [`segment_color`], as neuroglancer's state files write colours.
pub fn segment_color_hex(seed: u32, id: u64) -> String {
    let [r, g, b] = segment_color(seed, id);
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_neuroglancers_published_values() {
        // From neuroglancer's python/tests/segment_colors_test.py.
        assert_eq!(hash_combine(0, 39), 761_471_253);
        assert_eq!(hash_combine(0, 92), 2_920_775_201);
        assert_eq!(hash_combine(1_125_505_311, 47), 251_450_508);
        assert_eq!(hash_combine(1_125_505_311, 30), 2_403_373_702);
    }

    #[test]
    fn colours_match_neuroglancers_published_values() {
        for (seed, id, hex) in [
            (0u32, 39u64, "#992cff"),
            (1_965_848_648, 40, "#ff981e"),
            (2_183_424_408, 143, "#0410ff"),
            (2_092_967_958, 58, "#ff4ace"),
        ] {
            assert_eq!(segment_color_hex(seed, id), hex, "seed {seed}, id {id}");
        }
    }

    #[test]
    fn the_high_half_of_64_bit_ids_matters() {
        let low = segment_color(0, 7);
        let high = segment_color(0, 7 | (1u64 << 40));
        assert_ne!(low, high);
        // Full value: the brightest channel is always 255.
        for id in 1..200u64 {
            assert_eq!(segment_color(3, id).iter().max(), Some(&255));
        }
    }

    #[test]
    fn hsv_sectors() {
        assert_eq!(hsv_to_rgb(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]);
        assert_eq!(hsv_to_rgb(1.0 / 3.0, 1.0, 1.0), [0.0, 1.0, 0.0]);
        assert_eq!(hsv_to_rgb(2.0 / 3.0, 1.0, 1.0), [0.0, 0.0, 1.0]);
        assert_eq!(hsv_to_rgb(0.5, 0.0, 0.5), [0.5, 0.5, 0.5]);
    }
}

/// The colormaps of image layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colormap {
    /// Black to white.
    Grey,
    /// Perceptually uniform, dark blue to yellow (matplotlib's default).
    Viridis,
    /// Perceptually uniform, black to pale yellow through magenta.
    Magma,
    /// MATLAB's rainbow: blue, cyan, yellow, red (not perceptually uniform; familiar).
    Jet,
}

impl Colormap {
    /// Every colormap, in menu order.
    pub const ALL: [Colormap; 4] = [
        Colormap::Grey,
        Colormap::Viridis,
        Colormap::Magma,
        Colormap::Jet,
    ];

    /// The colour at `t` in [0, 1] (clamped; NaN maps to 0).
    pub fn rgb(self, t: f64) -> [u8; 3] {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let byte = |x: f64| (x * 255.0).round().clamp(0.0, 255.0) as u8;
        match self {
            Colormap::Grey => [byte(t); 3],
            Colormap::Viridis => from_colorous(colorous::VIRIDIS.eval_continuous(t)),
            Colormap::Magma => from_colorous(colorous::MAGMA.eval_continuous(t)),
            Colormap::Jet => {
                let ramp = |centre: f64| (1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0);
                [byte(ramp(3.0)), byte(ramp(2.0)), byte(ramp(1.0))]
            }
        }
    }

    /// 256 RGBA entries (alpha 255) for a lookup texture: entry `i` is `rgb(i / 255)`.
    pub fn lut(self) -> Vec<[u8; 4]> {
        (0..256)
            .map(|i| {
                let [r, g, b] = self.rgb(f64::from(i) / 255.0);
                [r, g, b, 255]
            })
            .collect()
    }
}

fn from_colorous(c: colorous::Color) -> [u8; 3] {
    [c.r, c.g, c.b]
}

#[cfg(test)]
mod colormap_tests {
    use super::*;

    #[test]
    fn colormap_ends_and_middles() {
        assert_eq!(Colormap::Grey.rgb(0.0), [0, 0, 0]);
        assert_eq!(Colormap::Grey.rgb(1.0), [255, 255, 255]);
        assert_eq!(Colormap::Grey.rgb(0.5), [128, 128, 128]);
        // matplotlib's published end colours.
        assert_eq!(Colormap::Viridis.rgb(0.0), [0x44, 0x01, 0x54]);
        assert_eq!(Colormap::Viridis.rgb(1.0), [0xfd, 0xe7, 0x25]);
        assert_eq!(Colormap::Magma.rgb(0.0), [0x00, 0x00, 0x04]);
        assert_eq!(Colormap::Magma.rgb(1.0), [0xfc, 0xfd, 0xbf]);
        // Jet: dark blue, green-ish middle, dark red.
        assert_eq!(Colormap::Jet.rgb(0.0), [0, 0, 128]);
        assert_eq!(Colormap::Jet.rgb(0.5), [128, 255, 128]);
        assert_eq!(Colormap::Jet.rgb(1.0), [128, 0, 0]);
        // Out of range and NaN are clamped.
        assert_eq!(Colormap::Viridis.rgb(-3.0), Colormap::Viridis.rgb(0.0));
        assert_eq!(Colormap::Viridis.rgb(f64::NAN), Colormap::Viridis.rgb(0.0));
        let lut = Colormap::Magma.lut();
        assert_eq!(lut.len(), 256);
        assert_eq!(lut[255], [0xfc, 0xfd, 0xbf, 255]);
    }
}
