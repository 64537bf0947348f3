//! The `imapref` binary: hands the arguments to the CLI layer and turns its outcome into an exit code.

fn main() {
    std::process::exit(imapref::cli::main());
}
