//! A `cuda` build is shipped as the binary plus NVIDIA's runtime library
//! (`libcudart.so.13`) in the same folder (see prover/cuda/build.sh): GPU
//! servers have a driver but rarely a CUDA toolkit. An rpath of `$ORIGIN`
//! lets the loader find the runtime there without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    }
}
