//! N5 dataset attributes (`attributes.json`) and one block file: the first two bytes give
//! the length of the attributes, the rest is the block.
use segno_fuzz::{clear, put};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if data.len() < 2 {
            return;
        }
        let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
        let (attrs, block) = data[2..].split_at(n);
        clear("c.n5");
        put("c.n5/attributes.json", br#"{"n5": "2.0.0"}"#);
        put("c.n5/a/attributes.json", attrs);
        put("c.n5/a/0/0/0", block);
        if let Ok(a) = segno::array::open(&segno_fuzz::scratch().join("c.n5/a")) {
            let dims = a.info().shape.len();
            let _ = a.read_chunk(&vec![0; dims]);
        }
    });
}
