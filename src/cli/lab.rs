//! `imapref lab` and `imapref demo` (pending the lab module).

/// Arguments of `imapref lab`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabArgs {}
/// Arguments of `imapref demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {}
/// Runs `imapref lab`.
pub async fn run_lab(_args: LabArgs) -> anyhow::Result<i32> {
    anyhow::bail!("pending")
}
/// Runs `imapref demo`.
pub async fn run_demo(_args: DemoArgs) -> anyhow::Result<i32> {
    anyhow::bail!("pending")
}
