//! What a run of the `imapref` binary gave: its exit code and its output as text, for the tests that run it as a
//! child process.

use std::process::Output;

/// The exit code (`-1` when a signal ended it), standard output and standard error of one run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit code, or -1.
    pub code: i32,
    /// Standard output, invalid UTF-8 replaced.
    pub stdout: String,
    /// Standard error, invalid UTF-8 replaced.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The run as a failed assertion shows it: exit code, stdout, stderr.
pub fn shows(run: &Run) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
        run.code, run.stdout, run.stderr
    )
}
