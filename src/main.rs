//! Thin: parse the command line, run, map the outcome to the process exit code.

/// Runs before `main` (and before the first allocation reserves mimalloc's first arena), as a
/// constructor: see `runtime::limits::commit_memory_on_demand`.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static COMMIT_MEMORY_ON_DEMAND: extern "C" fn() = {
    extern "C" fn init() {
        inference_benchmarker::runtime::limits::commit_memory_on_demand();
    }
    init
};

fn main() {
    std::process::exit(inference_benchmarker::cli::main());
}
