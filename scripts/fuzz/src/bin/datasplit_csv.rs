//! DaCapo's DataSplit CSV.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(specs) = segno::datasplit::parse_csv(text, "fuzz.csv") {
            for s in &specs {
                let _ = s.classes("&", None);
                let _ = s.to_csv_line();
            }
        }
    });
}
