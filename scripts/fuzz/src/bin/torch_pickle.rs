//! torch.save archives (zip with a pickle and storages) and bare pickles, as
//! `segno import-weights` and `segno import-run` read them.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let path = segno_fuzz::put("weights.pt", data);
        if let Ok(value) = segno::weights::torch_pickle::read(&path) {
            let _ = segno::weights::torch_pickle::into_state_dict(value);
        }
        let _ = segno::weights::torch_pickle::read_plain(&path);
    });
}
