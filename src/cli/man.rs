//! `imapref man`: the top man page on standard output, or with `--dir DIR` every page (imapref.1 and one
//! imapref-SUBCOMMAND.1 per subcommand) written as files, all generated from the clap definition.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

use super::{write_stdout, Cli};

/// Arguments of `imapref man`.
#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Write imapref.1 and one imapref-SUBCOMMAND.1 per subcommand into this directory (made if missing) instead of
    /// printing the top page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs `imapref man`.
pub fn run(args: ManArgs) -> anyhow::Result<i32> {
    match &args.dir {
        None => {
            let page = clap_mangen::Man::new(Cli::command());
            write_stdout(|out| page.render(out))?;
        }
        Some(dir) => {
            let written = write_pages(dir)?;
            write_stdout(|out| {
                for path in &written {
                    writeln!(out, "{}", path.display())?;
                }
                Ok(())
            })?;
        }
    }
    Ok(crate::exit::OK)
}

/// Writes every page into `dir` and returns their paths, the top page first.
pub fn write_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--dir {}: cannot create the directory", dir.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Building gives every subcommand its display name (`imapref-probe`), which names its page.
    cmd.build();
    let mut written = Vec::new();
    let top = clap_mangen::Man::new(cmd.clone());
    written.push(
        top.generate_to(dir)
            .with_context(|| format!("--dir {}: cannot write imapref.1", dir.display()))?,
    );
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = clap_mangen::Man::new(sub.clone());
        let path = page.generate_to(dir).with_context(|| {
            format!(
                "--dir {}: cannot write {}",
                dir.display(),
                page.get_filename()
            )
        })?;
        written.push(path);
    }
    Ok(written)
}
