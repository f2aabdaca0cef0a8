//! Questions on the terminal before a command destroys data.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;

/// Ask `question` on stderr and read the answer from stdin: true for y or yes. A script (stdin
/// not a terminal) is refused, with the way to go ahead without asking: `--yes` to `action`.
pub(crate) fn confirm(question: &str, action: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to {action} without confirmation: stdin is not a terminal; rerun with --yes to {action}"
        );
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
