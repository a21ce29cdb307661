//! Files and directories: compared by sha256 and mode in one round trip,
//! written only where they differ.

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::error::{Failure, reasons};
use super::{Check, Progress, Task};
use crate::files::HostFiles;
use crate::host::Host;
use crate::ssh::FileSpec;
use crate::ssh::shell::quote;

/// Writes a set of files (configuration, certificates, units).
#[derive(Debug, Clone)]
pub struct WriteFiles {
    id: String,
    describe: String,
    files: HostFiles,
}

impl WriteFiles {
    /// A task writing `files`.
    pub fn new(id: impl Into<String>, describe: impl Into<String>, files: HostFiles) -> Self {
        WriteFiles {
            id: id.into(),
            describe: describe.into(),
            files,
        }
    }

    /// The files it writes.
    pub fn files(&self) -> &HostFiles {
        &self.files
    }

    /// The paths whose content or mode differ on the host.
    async fn differing(&self, host: &dyn Host) -> Result<Vec<String>, Failure> {
        let paths: Vec<String> = self
            .files
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let out = host.run(&describe_files(&paths)).await?;
        let text = out.stdout_text();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != paths.len() {
            return Err(Failure::new(
                reasons::UNEXPECTED_OUTPUT,
                format!(
                    "describing {} files gave {} lines (is GNU coreutils installed?)",
                    paths.len(),
                    lines.len()
                ),
            ));
        }
        let mut differing = Vec::new();
        for ((path, file), line) in self.files.iter().zip(lines) {
            let want = format!(
                "{} {:o}",
                hex::encode(Sha256::digest(file.contents.as_bytes())),
                file.mode
            );
            if line.trim() != want {
                differing.push(path.display().to_string());
            }
        }
        Ok(differing)
    }
}

/// A script printing `SHA256 MODE` (octal) or `absent` for each path, one line each.
pub(crate) fn describe_files(paths: &[String]) -> String {
    let list: Vec<String> = paths.iter().map(|p| quote(p)).collect();
    format!(
        "for f in {}; do if [ -f \"$f\" ]; then printf '%s %s\\n' \"$(sha256sum < \"$f\" | cut -c1-64)\" \"$(stat -c %a \"$f\")\"; else echo absent; fi; done",
        list.join(" ")
    )
}

impl Task for WriteFiles {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let differing = self.differing(host).await?;
            Ok(match differing.len() {
                0 => Check::UpToDate,
                1 => Check::apply(format!("{} differs", differing[0])),
                n => Check::apply(format!("{n} files differ, first {}", differing[0])),
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let differing = self.differing(host).await?;
            for (path, file) in self.files.iter() {
                let path = path.display().to_string();
                if !differing.contains(&path) {
                    continue;
                }
                host.write_file(file.contents.as_bytes(), &path, &FileSpec::mode(file.mode))
                    .await?;
            }
            Ok(())
        })
    }
}

/// Directories that must exist with a mode (etcd's data directory is 0700).
#[derive(Debug, Clone)]
pub struct EnsureDirs {
    id: String,
    dirs: Vec<(String, u32)>,
}

impl EnsureDirs {
    /// A task creating `dirs` (path, mode).
    pub fn new(id: impl Into<String>, dirs: Vec<(String, u32)>) -> Self {
        EnsureDirs {
            id: id.into(),
            dirs,
        }
    }

    fn check_script(&self) -> String {
        let tests: Vec<String> = self
            .dirs
            .iter()
            .map(|(d, mode)| {
                let q = quote(d);
                format!("[ -d {q} ] && [ \"$(stat -c %a {q})\" = {:o} ]", mode)
            })
            .collect();
        tests.join(" && ")
    }
}

impl Task for EnsureDirs {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> String {
        let names: Vec<&str> = self.dirs.iter().map(|(d, _)| d.as_str()).collect();
        format!("create {}", names.join(", "))
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            super::check_exit(host, &self.check_script(), "missing or with another mode").await
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            for (dir, mode) in &self.dirs {
                host.run(&format!("install -d -m {mode:o} {}", quote(dir)))
                    .await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, output};
    use crate::tasks::Runner;

    #[tokio::test]
    async fn writes_only_what_differs_and_then_nothing() {
        let host = FakeHost::new("h:22");
        let mut files = HostFiles::default();
        files.insert_public("/etc/a.conf", "a");
        files.insert_private("/etc/b.key", "b");
        let task = WriteFiles::new("t/files", "write a and b", files);
        // The host has a.conf already, with the right content and mode.
        let a_line = format!("{} 644", hex::encode(Sha256::digest(b"a")));
        host.on("sha256sum", output(0, &format!("{a_line}\nabsent\n")));
        let tasks: Vec<Box<dyn Task>> = vec![Box::new(task.clone())];
        let report = Runner::new(&host).run(&tasks).await.unwrap();
        assert_eq!(report.changed(), 1);
        assert!(
            host.file("/etc/a.conf").is_none(),
            "a.conf was already there"
        );
        assert_eq!(host.file("/etc/b.key").unwrap().mode, 0o600);
    }

    #[tokio::test]
    async fn a_short_answer_is_an_error_not_a_guess() {
        let host = FakeHost::new("h:22");
        let mut files = HostFiles::default();
        files.insert_public("/etc/a.conf", "a");
        files.insert_public("/etc/c.conf", "c");
        host.on("sha256sum", output(0, "absent\n"));
        let task = WriteFiles::new("t/files", "write", files);
        let err = task.check(&host).await.unwrap_err();
        assert_eq!(err.reason, reasons::UNEXPECTED_OUTPUT);
    }

    #[test]
    fn describe_script_quotes_paths() {
        let s = describe_files(&["/etc/it's.conf".into()]);
        assert!(s.contains(r"'/etc/it'\''s.conf'"), "{s}");
    }
}
