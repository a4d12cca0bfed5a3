//! Config documents (YAML and JSON, every DaCapo dialect): parse, decode as every family,
//! check, and write back.
use segno::config::{parse_document, AnyConfig, Family};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(doc) = parse_document(text, "fuzz.yaml") else {
            return;
        };
        let _ = segno::config::compatibility_warnings(&doc);
        for family in Family::ALL {
            if let Ok(config) = AnyConfig::from_document(family, &doc, "fuzz.yaml") {
                let _ = config.problems();
                let _ = config.to_yaml();
            }
        }
    });
}
