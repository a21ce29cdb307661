//! Running the runner's own programs (ip, mount, ssh-keygen, debootstrap)
//! with errors that show the command line and its stderr.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

use crate::error::{LabError, Result};

/// Runs a program to completion; a non-zero exit is an error carrying stderr.
pub(crate) fn run<I, S>(program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args);
    run_command(&mut command)
}

/// Runs a prepared command; a non-zero exit is an error carrying stderr.
pub(crate) fn run_command(command: &mut Command) -> Result<String> {
    let output = output(command)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(failed(command, &output))
    }
}

/// Runs a command and returns its output whatever the exit status.
pub(crate) fn output(command: &mut Command) -> Result<Output> {
    tracing::debug!(command = %command_line(command), "run");
    command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            program: command.get_program().to_string_lossy().into_owned(),
            source,
        })
}

pub(crate) fn failed(command: &Command, output: &Output) -> LabError {
    LabError::Command {
        command: command_line(command),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    }
}

/// The command line as a person would type it.
pub(crate) fn command_line(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Whether `program` is on PATH (or is an existing path).
pub(crate) fn which(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        let path = std::path::PathBuf::from(program);
        return path.exists().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(Into::into))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
