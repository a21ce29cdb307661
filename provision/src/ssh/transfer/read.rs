//! Reading a small remote file whole, in one round trip.

use tracing::Instrument as _;

use crate::ssh::error::{SshError, Step};
use crate::ssh::exec::ExecOptions;
use crate::ssh::session::Session;
use crate::ssh::shell;

/// Room for the first line of the answer (`file SIZE`).
const HEADER_MAX: usize = 64;

/// What the host answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Absent,
    NotRegular,
    TooLarge(u64),
    File(Vec<u8>),
}

/// Splits the answer's first line from the content that follows it.
fn parse(mut stdout: Vec<u8>) -> Option<Answer> {
    let nl = stdout.iter().take(HEADER_MAX).position(|&b| b == b'\n')?;
    let content = stdout.split_off(nl + 1);
    let header = std::str::from_utf8(&stdout[..nl]).ok()?;
    let size = |s: &str| s.parse::<u64>().ok();
    match header.split_once(' ') {
        None if header == "absent" => Some(Answer::Absent),
        None if header == "not-regular" => Some(Answer::NotRegular),
        Some(("too-large", n)) => size(n).map(Answer::TooLarge),
        Some(("file", n)) => (size(n)? == content.len() as u64).then_some(Answer::File(content)),
        _ => None,
    }
}

impl Session {
    /// The whole content of the regular file `path` on the host (through
    /// `sudo -n` for non-root users), `None` when it does not exist. A file
    /// larger than `max_bytes`, or a path that is not a regular file, is an
    /// error naming the path (and the size).
    pub async fn read_file(&self, path: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, SshError> {
        shell::check_remote_path(path)?;
        let span = tracing::info_span!("ssh.read_file", host = %self.host(), path, max_bytes);
        async {
            let _permits = self.permits().await;
            let opts = ExecOptions {
                max_collected: usize::try_from(max_bytes)
                    .unwrap_or(usize::MAX)
                    .saturating_add(HEADER_MAX),
                ..ExecOptions::default()
            };
            let out = self
                .helper_with(&shell::read_file(path, max_bytes), Step::Download, opts)
                .await?;
            // Truncated or a size that does not match: the file grew or
            // shrank between `stat` and `cat`.
            let answer = (!out.truncated).then(|| parse(out.stdout)).flatten();
            match answer {
                Some(Answer::File(content)) => Ok(Some(content)),
                Some(Answer::Absent) => Ok(None),
                Some(Answer::TooLarge(size)) => Err(self.remote_error(
                    Step::Download,
                    format!("{path} is {size} bytes, more than the {max_bytes} allowed"),
                )),
                Some(Answer::NotRegular) => Err(self.remote_error(
                    Step::Download,
                    format!("{path} exists but is not a regular file"),
                )),
                None => Err(self.remote_error(
                    Step::Download,
                    format!("{path} changed while it was read (or an unexpected answer)"),
                )),
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_answer() {
        assert_eq!(parse(b"absent\n".to_vec()), Some(Answer::Absent));
        assert_eq!(parse(b"not-regular\n".to_vec()), Some(Answer::NotRegular));
        assert_eq!(
            parse(b"too-large 99\n".to_vec()),
            Some(Answer::TooLarge(99))
        );
        assert_eq!(
            parse(b"file 6\nab\ncd\n".to_vec()),
            Some(Answer::File(b"ab\ncd\n".to_vec()))
        );
        assert_eq!(parse(b"file 0\n".to_vec()), Some(Answer::File(vec![])));
        // Shorter or longer than announced: changed while read.
        assert_eq!(parse(b"file 7\nab\ncd\n".to_vec()), None);
        assert_eq!(parse(b"file 5\nab\ncd\n".to_vec()), None);
        assert_eq!(parse(b"garbage".to_vec()), None);
        assert_eq!(parse(b"file x\n".to_vec()), None);
    }
}
