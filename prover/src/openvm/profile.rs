//! Where the batch program's cycles go: a sampling profiler over OpenVM's
//! interpreter.
//!
//! OpenVM 2.0's own per-function counts exist only in its proving
//! pipeline (the `perf-metrics` feature, a rebuild of the whole host
//! stack), and a RISC-V guest cannot read its own cycle count. So the guest
//! is executed (not proven) in steps of `period` instructions; after each
//! step the program counter and the frame-pointer chain are read from the
//! VM's registers and memory and mapped to functions through the ELF's
//! symbol table. A sample charges `period` cycles to the function it stopped
//! in (self) and to every distinct function on its stack (inclusive).
//!
//! The call stacks need a guest built with frame pointers
//! (`prover/guest/build.sh --frame-pointers`); with the shipped guest only
//! self cycles are exact and inclusive cycles see one level.

use super::Machine;
use crate::ProverError;
use elf::{endian::AnyEndian, ElfBytes};
use openvm_sdk::openvm_circuit::arch::VmState;
use openvm_sdk::openvm_circuit::system::memory::online::LinearMemory;
use openvm_sdk::F;
use std::collections::HashMap;

/// RV32 registers and main memory in OpenVM's address spaces.
const REGISTER_AS: u32 = 1;
const MEMORY_AS: u32 = 2;
/// x1 (return address) and x8 (s0, the frame pointer).
const RA: u32 = 1;
const FP: u32 = 8;
/// Deeper stacks are cut here (the batch program nests a few dozen deep).
const MAX_DEPTH: usize = 256;

/// Cycles charged to one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCycles {
    /// Demangled name without its hash.
    pub name: String,
    /// Cycles spent in the function's own instructions.
    pub self_cycles: u64,
    /// Cycles spent while it was on the stack.
    pub inclusive_cycles: u64,
}

/// A sampled run of the batch program on one witness.
#[derive(Debug, Clone)]
pub struct GuestProfile {
    /// The program's id, as `prover/guest/PROGRAM_ID` publishes it.
    pub program_id: alloy_primitives::B256,
    /// Instructions the whole run executed.
    pub total_cycles: u64,
    /// Instructions between samples.
    pub period: u64,
    /// Whether the stacks came from frame pointers (otherwise only the
    /// sampled function and its immediate caller are known).
    pub frame_pointers: bool,
    /// Every function sampled, most inclusive cycles first.
    pub functions: Vec<FunctionCycles>,
    /// Leaves without a frame (memcpy, memset…) by the function that called
    /// them: (leaf, caller, cycles), most cycles first. Inlining hides the
    /// callee's name in the caller, so this is where a copy comes from.
    pub leaf_callers: Vec<(String, String, u64)>,
}

/// Function address ranges from the ELF symbol table.
struct Symbols {
    /// (start, end, name index), sorted by start.
    ranges: Vec<(u32, u32, usize)>,
    names: Vec<String>,
    /// Per range: the function sets up no frame (memcpy, memset and other
    /// leaves), so its caller is in `ra`, not on the frame chain.
    frameless: Vec<bool>,
}

/// `addi s0, sp, imm` (opcode 0x13, rd 8, funct3 0, rs1 2): how a function
/// with a frame points s0 at it.
fn sets_frame_pointer(word: u32) -> bool {
    word & 0xfffff == 0x10413
}

impl Symbols {
    fn parse(elf: &[u8]) -> Result<Self, ProverError> {
        let bad = |e: elf::ParseError| ProverError::Zkvm(format!("guest ELF: {e}"));
        let file = ElfBytes::<AnyEndian>::minimal_parse(elf).map_err(bad)?;
        let (table, strings) = file
            .symbol_table()
            .map_err(bad)?
            .ok_or_else(|| ProverError::Zkvm("guest ELF has no symbol table".into()))?;
        let mut names = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut ranges = Vec::new();
        for sym in table.iter() {
            if sym.st_symtype() != elf::abi::STT_FUNC || sym.st_size == 0 {
                continue;
            }
            let raw = strings.get(sym.st_name as usize).map_err(bad)?;
            let name = format!("{:#}", rustc_demangle::demangle(raw));
            let id = *index.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                names.len() - 1
            });
            let start = sym.st_value as u32;
            ranges.push((start, start.saturating_add(sym.st_size as u32), id));
        }
        if ranges.is_empty() {
            return Err(ProverError::Zkvm("guest ELF names no functions".into()));
        }
        ranges.sort_unstable();
        let text = Text::of(&file);
        let frameless = ranges
            .iter()
            .map(|(start, end, _)| {
                // A prologue sets s0 within its first instructions.
                let prologue = (*start..(*end).min(start.saturating_add(128))).step_by(4);
                !prologue
                    .filter_map(|pc| text.word(pc))
                    .any(sets_frame_pointer)
            })
            .collect();
        Ok(Self {
            ranges,
            names,
            frameless,
        })
    }

    /// The range holding `pc`: its index into `ranges`.
    fn range_at(&self, pc: u32) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.0 <= pc).checked_sub(1)?;
        let (start, end, _) = self.ranges[i];
        (start..end).contains(&pc).then_some(i)
    }

    fn function_at(&self, pc: u32) -> Option<usize> {
        self.range_at(pc).map(|i| self.ranges[i].2)
    }

    fn is_frameless(&self, pc: u32) -> bool {
        self.range_at(pc).is_some_and(|i| self.frameless[i])
    }

    /// The guest keeps frame pointers when most of its functions set s0.
    fn has_frame_pointers(&self) -> bool {
        let framed = self.frameless.iter().filter(|f| !**f).count();
        framed * 2 > self.ranges.len()
    }
}

/// The ELF's `.text`, to read instructions by address.
struct Text {
    base: u32,
    words: Vec<u32>,
}

impl Text {
    fn of(file: &ElfBytes<'_, AnyEndian>) -> Self {
        let section = file.section_header_by_name(".text").ok().flatten();
        let (base, words) = section
            .and_then(|h| {
                let (code, _) = file.section_data(&h).ok()?;
                let words = code
                    .chunks_exact(4)
                    .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                    .collect();
                Some((h.sh_addr as u32, words))
            })
            .unwrap_or_default();
        Self { base, words }
    }

    fn word(&self, pc: u32) -> Option<u32> {
        let offset = pc.checked_sub(self.base)? / 4;
        self.words.get(offset as usize).copied()
    }
}

/// Bytes in one of the VM's address spaces (0 if it has none).
fn space_len(state: &VmState<F>, address_space: u32) -> u32 {
    let spaces = state.memory.memory.get_memory();
    spaces.get(address_space as usize).map_or(0, |m| m.size()) as u32
}

fn read_u32(state: &VmState<F>, address_space: u32, ptr: u32) -> u32 {
    // SAFETY: both address spaces hold u8 cells, and every caller keeps
    // `ptr + 4` within the space: registers are at fixed offsets under 128,
    // frame addresses are checked against `space_len` before they are read.
    let bytes: [u8; 4] = unsafe { state.memory.read::<u8, 4>(address_space, ptr) };
    u32::from_le_bytes(bytes)
}

/// The sampled pc and the return addresses on the frame-pointer chain.
fn stack(state: &VmState<F>, symbols: &Symbols, with_frames: bool, out: &mut Vec<u32>) {
    out.clear();
    let pc = state.pc();
    out.push(pc);
    let ra = read_u32(state, REGISTER_AS, RA * 4);
    if !with_frames || symbols.is_frameless(pc) {
        // A leaf without a frame has not touched ra: it is its caller. (In
        // a function with a frame ra may be stale, so it is not used.)
        out.push(ra.wrapping_sub(4));
    }
    if !with_frames {
        return;
    }
    let mut fp = read_u32(state, REGISTER_AS, FP * 4);
    // fp comes from the guest: only frames inside its memory are read.
    let limit = space_len(state, MEMORY_AS);
    while out.len() < MAX_DEPTH && (8..=limit).contains(&fp) {
        let ret = read_u32(state, MEMORY_AS, fp - 4);
        let caller_fp = read_u32(state, MEMORY_AS, fp - 8);
        if ret < 4 {
            break;
        }
        // The call instruction, not the one after it, is in the caller.
        out.push(ret - 4);
        // The stack grows down: a caller's frame is above its callee's.
        if caller_fp <= fp {
            break;
        }
        fp = caller_fp;
    }
}

impl Machine {
    /// Samples a run of the program on `witness` every `period` instructions.
    pub(super) fn profile(
        &self,
        elf: &[u8],
        witness: &[u8],
        period: u64,
    ) -> Result<GuestProfile, ProverError> {
        let symbols = Symbols::parse(elf)?;
        let frame_pointers = symbols.has_frame_pointers();
        let total = self
            .execute(witness)?
            .cycles
            .ok_or_else(|| ProverError::Zkvm("no cycle count".into()))?;
        let prover = self.prover.borrow();
        let app = &prover.app_prover;
        let exe = app.exe();
        let interpreter = app.vm().interpreter(&exe).map_err(super::vm_error)?;
        let mut state = interpreter.create_initial_vm_state(Self::stdin(witness));
        let period = period.max(1);
        let mut self_cycles = vec![0u64; symbols.names.len() + 1];
        let mut inclusive = vec![0u64; symbols.names.len() + 1];
        let unknown = symbols.names.len();
        let mut frames = Vec::with_capacity(MAX_DEPTH);
        let mut seen = Vec::with_capacity(MAX_DEPTH);
        let mut leaf_callers: HashMap<(usize, usize), u64> = HashMap::new();
        let mut done = 0u64;
        // Stop one step short of the end: running past the terminating
        // instruction is an error, not a sample.
        while done + period < total {
            state = interpreter
                .execute_from_state(state, Some(period))
                .map_err(super::vm_error)?;
            done += period;
            stack(&state, &symbols, frame_pointers, &mut frames);
            if symbols.is_frameless(frames[0]) {
                if let (Some(leaf), Some(caller)) = (
                    symbols.function_at(frames[0]),
                    frames.get(1).and_then(|ra| symbols.function_at(*ra)),
                ) {
                    *leaf_callers.entry((leaf, caller)).or_default() += period;
                }
            }
            seen.clear();
            for (depth, pc) in frames.iter().enumerate() {
                let id = symbols.function_at(*pc).unwrap_or(unknown);
                if depth == 0 {
                    self_cycles[id] += period;
                }
                if !seen.contains(&id) {
                    seen.push(id);
                    inclusive[id] += period;
                }
            }
        }
        let mut functions: Vec<FunctionCycles> = (0..=unknown)
            .filter(|id| inclusive[*id] > 0)
            .map(|id| FunctionCycles {
                name: symbols
                    .names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| "(no symbol)".into()),
                self_cycles: self_cycles[id],
                inclusive_cycles: inclusive[id],
            })
            .collect();
        functions.sort_by_key(|f| std::cmp::Reverse((f.inclusive_cycles, f.self_cycles)));
        let mut leaf_callers: Vec<(String, String, u64)> = leaf_callers
            .into_iter()
            .map(|((leaf, caller), cycles)| {
                (
                    symbols.names[leaf].clone(),
                    symbols.names[caller].clone(),
                    cycles,
                )
            })
            .collect();
        leaf_callers.sort_by_key(|c| std::cmp::Reverse(c.2));
        Ok(GuestProfile {
            program_id: self.program_id,
            total_cycles: total,
            period,
            frame_pointers,
            functions,
            leaf_callers,
        })
    }
}

/// Loads the guest (keys included: tens of seconds) and profiles one run of
/// it on `witness`, sampling every `period` instructions.
pub fn profile_guest(elf: &[u8], witness: &[u8], period: u64) -> Result<GuestProfile, ProverError> {
    let machine = Machine::load(elf, super::OpenVmConfig::default())?;
    machine.profile(elf, witness, period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pc_maps_to_the_function_whose_range_holds_it() {
        let symbols = Symbols {
            ranges: vec![(0x100, 0x140, 0), (0x140, 0x150, 1), (0x200, 0x210, 0)],
            names: vec!["a".into(), "b".into()],
            frameless: vec![false, true, false],
        };
        assert_eq!(symbols.function_at(0x100), Some(0));
        assert_eq!(symbols.function_at(0x13c), Some(0));
        assert_eq!(symbols.function_at(0x140), Some(1));
        assert_eq!(symbols.function_at(0x150), None, "a gap between functions");
        assert_eq!(symbols.function_at(0x20c), Some(0));
        assert_eq!(symbols.function_at(0x50), None);
        assert!(symbols.is_frameless(0x144) && !symbols.is_frameless(0x104));
    }

    #[test]
    fn a_frame_is_recognised_by_its_prologue() {
        // addi s0, sp, 32 and addi s0, sp, 2032 set the frame pointer;
        // addi s1, sp, 32 and addi s0, s1, 32 do not.
        assert!(sets_frame_pointer(0x0201_0413));
        assert!(sets_frame_pointer(0x7f01_0413));
        assert!(!sets_frame_pointer(0x0201_0493));
        assert!(!sets_frame_pointer(0x0204_8413));
    }
}
