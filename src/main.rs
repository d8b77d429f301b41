//! Thin: parse the command line, run, map the outcome to the process exit code.

fn main() {
    std::process::exit(inference_benchmarker::cli::main());
}
