//! `cargo bench --bench arrays`: the same comparison as `segno bench arrays` (Segno against
//! zarr-python reading the same zarr v2 and v3 arrays), with its defaults.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv-zarr/bin/python");
    let size = std::env::var("SEGNO_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let options = segno::bench::ArrayBenchOptions {
        size,
        dir: root.join("target/bench-arrays"),
        repeats: 3,
        python: python.is_file().then_some(python),
        script: root.join("scripts/zarr_python_bench.py"),
    };
    match segno::bench::bench_arrays(&options) {
        Ok(rows) => {
            println!("{size}³ uint8: MB/s, Segno vs zarr-python");
            for r in rows {
                let reference = r
                    .reference_mb_per_s
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_else(|| "-".into());
                let ratio = r
                    .ratio()
                    .map(|v| format!("{v:.2}×"))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<22} {:<7} {:>2} threads  {:>8.0} {:>8} {:>8}",
                    r.array, r.mode, r.threads, r.segno_mb_per_s, reference, ratio
                );
            }
        }
        Err(e) => {
            eprintln!("bench arrays: {e}");
            std::process::exit(1);
        }
    }
}
