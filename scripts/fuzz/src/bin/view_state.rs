//! The viewer's saved view state (JSON).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let path = segno_fuzz::put("view.json", data);
        if let Ok(state) = segno::render::state::ViewState::load(&path) {
            let _ = state.check();
        }
    });
}
