//! `imapref shell [TARGET]`: arguments and hand-off to the interactive shell ([`crate::shell`]).

/// Arguments of `imapref shell`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShellArgs {
    /// `host`, `host:port`, `[v6addr]:port` or an IMAP URL; without it, use `:connect` inside the shell.
    pub target: Option<String>,
}

/// Runs `imapref shell`.
pub async fn run(_args: ShellArgs) -> anyhow::Result<i32> {
    anyhow::bail!("the shell is not built yet")
}
