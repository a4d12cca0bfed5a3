//! zarr v2 (`.zarray` + `.zattrs`) and v3 (`zarr.json`) array metadata, with the
//! attributes read for geometry (funlib, DaCapo 0.3.5, OME-NGFF in the parent group): the
//! first byte chooses which file the rest becomes; the array is opened and a chunk read.
use segno_fuzz::{clear, put};

const V2_META: &[u8] = br#"{"zarr_format": 2, "shape": [8, 8, 8], "chunks": [4, 4, 4], "dtype": "|u1", "compressor": null, "fill_value": 0, "order": "C", "filters": null}"#;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&which, rest)) = data.split_first() else {
            return;
        };
        clear("c.zarr");
        put("c.zarr/.zgroup", br#"{"zarr_format": 2}"#);
        match which % 4 {
            0 => {
                put("c.zarr/a/.zarray", rest);
            }
            1 => {
                put("c.zarr/a/.zarray", V2_META);
                put("c.zarr/a/.zattrs", rest);
            }
            2 => {
                put("c.zarr/a/.zarray", V2_META);
                put("c.zarr/.zattrs", rest);
            }
            _ => {
                clear("c.zarr/.zgroup");
                put("c.zarr/a/zarr.json", rest);
            }
        }
        let dir = segno_fuzz::scratch();
        for path in [dir.join("c.zarr/a"), dir.join("c.zarr")] {
            if let Ok(a) = segno::array::open(&path) {
                let info = a.info().clone();
                let _ = a.read_chunk(&vec![0; info.shape.len()]);
                let _ = info.chunk_roi(&vec![0; info.shape.len()]);
            }
        }
    });
}
