//! Link settings for the threaded wasm module (scripts/build_wasm.sh builds it with
//! `+atomics`): its memory must be shared between the Web Workers of the rayon pool, so it is
//! imported and shared, with a 4 GiB maximum (as the plain module's), and the thread-local
//! storage symbols wasm-bindgen's thread support initialises each worker with are exported.
//! Other builds get nothing from here.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "wasm32");
    let atomics = std::env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "atomics"));
    if wasm && atomics {
        for arg in ["--shared-memory", "--import-memory", "--max-memory=4294967296", "--export=__wasm_init_tls", "--export=__tls_size", "--export=__tls_align", "--export=__tls_base"] {
            println!("cargo:rustc-link-arg-cdylib={arg}");
        }
    }
}
