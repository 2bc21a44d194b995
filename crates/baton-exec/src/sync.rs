use std::process::{Command, Stdio};

use crate::known_children;

/// The captured result of a short command.
#[derive(Debug, Clone)]
pub struct SyncOutput {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl SyncOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs a short command to completion in its own process group, stdin from `/dev/null` unless
/// `input` is given, capturing stdout and stderr. For plumbing such as git, where the output
/// is small and the command ends by itself; blocking.
pub fn run_sync(mut cmd: Command, input: Option<&[u8]>) -> std::io::Result<SyncOutput> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;

    cmd.env(crate::OWNER_VAR, crate::my_marker());
    cmd.process_group(0).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut known = known_children();
    let mut child = cmd.spawn()?;
    let pid = child.id();
    known.insert(pid);
    drop(known);
    let writer = match (input, child.stdin.take()) {
        (Some(bytes), Some(mut stdin)) => {
            let bytes = bytes.to_vec();
            Some(std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let output = child.wait_with_output();
    known_children().remove(&pid);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let output = output?;
    Ok(SyncOutput { code: output.status.code(), stdout: output.stdout, stderr: output.stderr })
}
