//! `--gpu N` for the commands that prove (`prividium prover worker`,
//! `prividium prover prove`).

#[cfg(not(feature = "cuda"))]
use anyhow::bail;
#[cfg(feature = "cuda")]
use anyhow::Context;
use anyhow::Result;

/// Makes GPU `gpu` the only one this process sees.
#[cfg(feature = "cuda")]
pub(crate) fn select_gpu(gpu: u32) -> Result<()> {
    // OpenVM's GPU memory pool is set up before main, on the first device
    // the process sees, so choosing the device from main would be too late:
    // the command is run again with only that device visible.
    use std::os::unix::process::CommandExt;
    let wanted = gpu.to_string();
    if std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    let exe = std::env::current_exe().context("locating this binary")?;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("CUDA_VISIBLE_DEVICES", &wanted)
        .exec();
    Err(err).context("re-running with CUDA_VISIBLE_DEVICES set")
}

/// Makes GPU `gpu` the only one this process sees.
#[cfg(not(feature = "cuda"))]
pub(crate) fn select_gpu(gpu: u32) -> Result<()> {
    bail!(
        "--gpu {gpu}: this build proves on CPU only; build with `--features cuda` to prove on GPUs"
    )
}
