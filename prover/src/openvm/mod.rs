//! OpenVM backend: the batch program as a RISC-V guest (prover/guest),
//! proven as one aggregated STARK per batch.
//!
//! The app proof (one STARK per segment) is aggregated by OpenVM's leaf and
//! internal recursion layers into a single STARK: proving takes about twice
//! as long on CPU, but a counterparty checks one small proof in tens of
//! milliseconds however long the batch ran, instead of one STARK per
//! segment.
//!
//! Feature `openvm`; with `cuda` as well, traces are generated and proven on
//! the GPU. The EVM (halo2) wrapper is not used: it needs KZG parameters that
//! cannot be fetched offline, and settlement only needs the outputs digest.

mod config;
mod profile;

pub use profile::{profile_guest, FunctionCycles, GuestProfile};

use crate::{
    backend::{Execution, ZkBackend},
    ProverError,
};
use alloy_primitives::B256;
use openvm_sdk::openvm_circuit::system::memory::merkle::public_values::extract_public_values;
use openvm_sdk::{
    config::{AggregationSystemParams, AppConfig},
    DefaultStarkEngine, Sdk, StdIn,
};
use openvm_sdk_config::SdkVmConfig;
use openvm_stark_sdk::{
    config::{app_params_with_100_bits_security, MAX_APP_LOG_STACKED_HEIGHT},
    openvm_stark_backend::codec::Encode,
};
use openvm_transpiler::{elf::Elf, openvm_platform::memory::MEM_SIZE};
use openvm_verify_stark_host::vk::VmStarkVerifyingKey;
pub use proof::openvm::BACKEND;
use proof::{openvm::commit_bytes, ProofEnvelope};

/// Tunables.
#[derive(Debug, Clone, Copy)]
pub struct OpenVmConfig {
    /// Memory one segment may use while proving; smaller segments use less
    /// RAM but make more segment proofs to aggregate.
    pub segment_max_memory: usize,
}

impl Default for OpenVmConfig {
    fn default() -> Self {
        Self {
            segment_max_memory: 2 << 30,
        }
    }
}

/// Proves the batch program with OpenVM.
///
/// The OpenVM SDK is not `Send` (its transpiler holds `Rc`s), so it lives on
/// a thread of its own and this handle sends it requests; proofs are one at
/// a time per backend, each using every core.
pub struct OpenVmBackend {
    requests: std::sync::mpsc::Sender<Request>,
    program_id: B256,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum Request {
    Execute(
        Vec<u8>,
        std::sync::mpsc::Sender<Result<Execution, ProverError>>,
    ),
    Prove(
        Vec<u8>,
        std::sync::mpsc::Sender<Result<Vec<u8>, ProverError>>,
    ),
}

impl std::fmt::Debug for OpenVmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenVmBackend")
            .field("program_id", &self.program_id)
            .finish_non_exhaustive()
    }
}

fn vm_error(e: impl std::fmt::Display) -> ProverError {
    ProverError::Zkvm(e.to_string())
}

fn gone() -> ProverError {
    ProverError::Zkvm("the OpenVM thread stopped".into())
}

impl OpenVmBackend {
    /// Loads the guest ELF and generates its keys (tens of seconds, once).
    pub fn new(elf: &[u8], settings: OpenVmConfig) -> Result<Self, ProverError> {
        let elf = elf.to_vec();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (requests, inbox) = std::sync::mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("openvm".into())
            .spawn(move || match Machine::load(&elf, settings) {
                Ok(machine) => {
                    let _ = ready_tx.send(Ok(machine.program_id));
                    for request in inbox {
                        machine.serve(request);
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(vm_error)?;
        let program_id = ready_rx.recv().map_err(|_| gone())??;
        Ok(Self {
            requests,
            program_id,
            thread: Some(thread),
        })
    }
}

impl Drop for OpenVmBackend {
    /// Closes the request channel, so the thread's loop ends, and waits for
    /// it to drop the machine. On a GPU its buffers must be freed before
    /// the process exits: once the CUDA runtime unloads, OpenVM's free
    /// fails and panics.
    fn drop(&mut self) {
        self.requests = std::sync::mpsc::channel().0;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(not(feature = "cuda"))]
type VmBuilder = openvm_sdk_config::SdkVmCpuBuilder;
#[cfg(feature = "cuda")]
type VmBuilder = openvm_sdk_config::SdkVmGpuBuilder;
type StarkProver = openvm_sdk::prover::StarkProver<DefaultStarkEngine, VmBuilder>;

/// The program committed once with its keys, owned by the OpenVM thread.
/// (Building the prover commits the program and generates the app and
/// aggregation keys: tens of seconds, so it is kept.)
struct Machine {
    prover: std::cell::RefCell<StarkProver>,
    exe_commit: Vec<u8>,
    verifying_key: Vec<u8>,
    program_id: B256,
}

impl Machine {
    fn load(elf: &[u8], settings: OpenVmConfig) -> Result<Self, ProverError> {
        let elf = Elf::decode(elf, MEM_SIZE as u32).map_err(vm_error)?;
        let mut vm_config = SdkVmConfig::from_toml(config::VM_TOML).map_err(vm_error)?;
        vm_config.system.config.segmentation_max_memory = settings.segment_max_memory;
        let app_config = AppConfig::new(
            vm_config,
            app_params_with_100_bits_security(MAX_APP_LOG_STACKED_HEIGHT),
        );
        let sdk = Sdk::new(app_config, AggregationSystemParams::default()).map_err(vm_error)?;
        let exe = sdk.convert_to_exe(elf).map_err(vm_error)?;
        let started = std::time::Instant::now();
        let prover = sdk.prover(exe).map_err(vm_error)?;
        // The verifying key is the last recursion layer's key plus the
        // baseline: the commitments to this program image, the app VM and
        // every aggregation layer a valid proof must chain back through.
        let vk = VmStarkVerifyingKey {
            mvk: sdk.agg_vk().as_ref().clone(),
            baseline: prover.generate_baseline(),
        };
        let verifying_key = bitcode::serialize(&vk).map_err(vm_error)?;
        let exe_commit = commit_bytes(&vk.baseline.app_exe_commit);
        let program_id = ProofEnvelope::program_id(BACKEND, &exe_commit, &verifying_key);
        tracing::info!(%program_id, keygen_ms = started.elapsed().as_millis() as u64, "OpenVM batch program loaded");
        Ok(Self {
            prover: std::cell::RefCell::new(prover),
            exe_commit,
            verifying_key,
            program_id,
        })
    }

    fn serve(&self, request: Request) {
        match request {
            Request::Execute(witness, reply) => {
                let _ = reply.send(self.execute(&witness));
            }
            Request::Prove(witness, reply) => {
                let _ = reply.send(self.prove(&witness));
            }
        }
    }

    fn stdin(witness: &[u8]) -> StdIn {
        let mut stdin = StdIn::default();
        stdin.write_bytes(witness);
        stdin
    }

    fn execute(&self, witness: &[u8]) -> Result<Execution, ProverError> {
        let prover = &self.prover.borrow().app_prover;
        let (vm, exe) = (prover.vm(), prover.exe());
        let interpreter = vm.metered_cost_interpreter(&exe).map_err(vm_error)?;
        let (ctx, state) = interpreter
            .execute_metered_cost(Self::stdin(witness), vm.build_metered_cost_ctx())
            .map_err(vm_error)?;
        let public_values = extract_public_values(
            prover.vm_config().as_ref().num_public_values,
            &state.memory.memory,
        );
        Ok(Execution {
            digest: proof::openvm::outputs_digest(&public_values).ok_or_else(|| {
                ProverError::Zkvm("the program revealed no outputs digest".into())
            })?,
            cycles: Some(ctx.instret),
        })
    }

    fn prove(&self, witness: &[u8]) -> Result<Vec<u8>, ProverError> {
        // No deferred (off-VM) computations: the guest has none.
        let (proof, _) = self
            .prover
            .borrow_mut()
            .prove(Self::stdin(witness), &[])
            .map_err(vm_error)?;
        let envelope = ProofEnvelope {
            backend: BACKEND.to_string(),
            program_commit: self.exe_commit.clone(),
            verifying_key: self.verifying_key.clone(),
            proof: proof.encode_to_vec().map_err(vm_error)?,
        };
        Ok(envelope.encode())
    }
}

impl ZkBackend for OpenVmBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn program_id(&self) -> B256 {
        self.program_id
    }

    fn execute(&self, witness: &[u8]) -> Result<Execution, ProverError> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.requests
            .send(Request::Execute(witness.to_vec(), reply))
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    fn prove(&self, witness: &[u8]) -> Result<Vec<u8>, ProverError> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.requests
            .send(Request::Prove(witness.to_vec(), reply))
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

#[cfg(test)]
mod tests {
    use openvm_sdk::openvm_circuit::arch::InitFileGenerator;

    #[test]
    fn guest_init_file_matches_the_vm_config() {
        let vm = openvm_sdk_config::SdkVmConfig::from_toml(super::config::VM_TOML).unwrap();
        let generated = vm.generate_init_file_contents().unwrap();
        let body = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("//") && !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        };
        assert_eq!(body(&generated), body(super::config::GUEST_INIT));
    }
}
