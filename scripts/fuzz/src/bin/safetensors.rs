//! safetensors checkpoints (header and data), as import-weights and predict read them.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let path = segno_fuzz::put("weights.safetensors", data);
        let _ = segno::weights::read_state_dict(&path);
    });
}
