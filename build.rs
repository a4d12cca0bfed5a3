//! Makes the libtorch shared libraries findable at run time.
//!
//! torch-sys links against libtorch but sets no run-time search path, so every binary and
//! test would fail with "libtorch_cpu.so: cannot open shared object file". We add an rpath
//! to the directory torch-sys linked against (`DEP_TCH_LIBTORCH_LIB`). When the CUDA
//! flavour of libtorch is installed we link it with `--no-as-needed`: nothing references it directly,
//! so the linker would otherwise drop it and CUDA would never be available.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!(
            "cargo:warning=torch-sys did not report its libtorch directory; run scripts/setup.sh"
        );
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    if wants_cuda(&lib_dir) {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

/// Whether to link libtorch_cuda: `SEGNO_LINK_CUDA=1|0` decides if set; otherwise the
/// flavour recorded by scripts/setup.sh next to `LIBTORCH` (the CPU set-up ships
/// libtorch_cuda.so without the CUDA libraries it needs, so it must not be linked).
fn wants_cuda(lib_dir: &str) -> bool {
    println!("cargo:rerun-if-env-changed=SEGNO_LINK_CUDA");
    match std::env::var("SEGNO_LINK_CUDA").as_deref() {
        Ok("1") => return true,
        Ok("0") => return false,
        _ => {}
    }
    if !Path::new(lib_dir).join("libtorch_cuda.so").exists() {
        return false;
    }
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        return false;
    };
    let Some(venv) = Path::new(&libtorch).parent() else {
        return false;
    };
    let stamp = venv.join(".segno-torch");
    println!("cargo:rerun-if-changed={}", stamp.display());
    std::fs::read_to_string(stamp).is_ok_and(|s| s.trim().ends_with("cuda"))
}
