//! `SHA256SUMS`: the bundle's list of every file and its sha256.
//!
//! The format is what `sha256sum` prints and `sha256sum -c` checks:
//! `<64 hex digits><space><space or *><relative path>` per line, `\n`
//! line ends. Stricter than `sha256sum -c` on purpose, because these paths
//! are joined to a directory or a URL: a path must be relative, without `..`,
//! `.` or empty components, without control characters, and listed once. A
//! leading `./` (what `sha256sum $(find . -type f)` prints) is dropped.
//! Escaped names (a line starting with `\`, how GNU marks a name with a
//! backslash or newline), blank lines and `#` comments are refused (GNU
//! `sha256sum -c` skips the last two, but never writes them). The order of
//! lines is kept but not checked (the producer sorts them).

use std::collections::BTreeMap;

use super::digest::Sha256Digest;

/// The manifest's own name in the bundle.
pub const MANIFEST: &str = "SHA256SUMS";

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Relative path inside the bundle, `/`-separated.
    pub path: String,
    /// The sha256 the file must have.
    pub sha256: Sha256Digest,
}

/// The parsed manifest, in file order, indexed by path.
#[derive(Debug, Clone, Default)]
pub(crate) struct Manifest {
    entries: Vec<ManifestEntry>,
    index: BTreeMap<String, usize>,
}

/// A manifest line that was refused: 1-based line number and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineError {
    pub line: usize,
    pub problem: String,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self, LineError> {
        let mut manifest = Manifest::default();
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if body.is_empty() {
            return Err(LineError {
                line: 1,
                problem: "the manifest lists no files".into(),
            });
        }
        for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let err = |problem: String| LineError { line, problem };
            let text =
                std::str::from_utf8(raw).map_err(|_| err("the line is not valid UTF-8".into()))?;
            let entry = parse_line(text).map_err(err)?;
            if entry.path == MANIFEST {
                return Err(err(format!("{MANIFEST} cannot list itself")));
            }
            if let Some(first) = manifest.index.get(&entry.path) {
                return Err(err(format!(
                    "{} is listed twice (first on line {})",
                    entry.path,
                    first + 1
                )));
            }
            manifest
                .index
                .insert(entry.path.clone(), manifest.entries.len());
            manifest.entries.push(entry);
        }
        Ok(manifest)
    }

    pub fn get(&self, path: &str) -> Option<&ManifestEntry> {
        self.index.get(path).map(|i| &self.entries[*i])
    }

    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }
}

fn parse_line(text: &str) -> Result<ManifestEntry, String> {
    const SHAPE: &str = "expected `<64 hex digits>  <relative path>` as `sha256sum` prints it";
    if text.starts_with('\\') {
        return Err(format!(
            "escaped file names (a line starting with `\\`) are not supported; {SHAPE}"
        ));
    }
    let (Some(hex), Some(sep), Some(rest)) = (text.get(..64), text.get(64..65), text.get(65..))
    else {
        return Err(SHAPE.into());
    };
    let sha256 = hex
        .parse::<Sha256Digest>()
        .map_err(|_| format!("{hex:?} is not a sha256 digest; {SHAPE}"))?;
    if sep != " " {
        return Err(SHAPE.into());
    }
    // `sha256sum` marks binary mode with `*`, text mode with a space.
    let path = rest
        .strip_prefix(' ')
        .or_else(|| rest.strip_prefix('*'))
        .ok_or_else(|| SHAPE.to_string())?;
    let path = path.strip_prefix("./").unwrap_or(path);
    check_relative_path(path)?;
    Ok(ManifestEntry {
        path: path.to_string(),
        sha256,
    })
}

/// Whether `path` is a safe relative path inside the bundle (see the
/// module's docs); the problem otherwise.
pub(crate) fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.starts_with('/') {
        return Err(format!(
            "{path:?} is absolute; paths are relative to the bundle"
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{path:?} holds a control character"));
    }
    for component in path.split('/') {
        match component {
            ".." => return Err(format!("{path:?} leaves the bundle (`..`)")),
            "." | "" => {
                return Err(format!(
                    "{path:?} has an empty or `.` component; write it as a plain relative path"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parse(text: &str) -> Result<Manifest, LineError> {
        Manifest::parse(text.as_bytes())
    }

    fn refused_on(text: &str, line: usize, words: &str) {
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, line, "{e:?}");
        assert!(e.problem.contains(words), "{e:?} should say {words:?}");
    }

    #[test]
    fn parses_sha256sum_output_in_order() {
        let m = parse(&format!(
            "{A}  bin/etcd\n{B} *charts/kubeseed/Chart.yaml\n{A}  ./VERSIONS\n"
        ))
        .unwrap();
        let paths: Vec<_> = m.entries().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["bin/etcd", "charts/kubeseed/Chart.yaml", "VERSIONS"]
        );
        assert_eq!(m.get("bin/etcd").unwrap().sha256.to_string(), A);
        assert!(m.get("bin/kubelet").is_none());
    }

    #[test]
    fn accepts_uppercase_hex_and_a_missing_final_newline() {
        let m = parse(&format!("{}  bin/etcd", A.to_uppercase())).unwrap();
        assert_eq!(m.get("bin/etcd").unwrap().sha256.to_string(), A);
    }

    #[test]
    fn refuses_malformed_lines_with_their_number() {
        refused_on(&format!("{A}  bin/a\n{B} bin/b\n"), 2, "expected");
        refused_on(&format!("{A}  bin/a\n\n{B}  bin/b\n"), 2, "expected");
        refused_on(&format!("{A}  bin/a\nnot a line\n"), 2, "expected");
        refused_on(&format!("{}  bin/a\n", &A[..63]), 1, "not a sha256");
        refused_on(&format!("{A}  bin/a\n\\{B}  bin/b\\\\c\n"), 2, "escaped");
        refused_on(&format!("{A}  bin/a\r\n"), 1, "control character");
        refused_on(&format!("# comment\n{A}  bin/a\n"), 1, "expected");
        refused_on("", 1, "no files");
        refused_on(&format!("{A}  bin/a\n{B}  \n"), 2, "empty");
    }

    #[test]
    fn refuses_paths_that_leave_the_bundle() {
        refused_on(&format!("{A}  bin/a\n{B}  /etc/passwd\n"), 2, "absolute");
        refused_on(&format!("{A}  ../x\n"), 1, "leaves the bundle");
        refused_on(&format!("{A}  bin/../../x\n"), 1, "leaves the bundle");
        refused_on(&format!("{A}  bin//x\n"), 1, "empty or `.`");
        refused_on(&format!("{A}  bin/./x\n"), 1, "empty or `.`");
        refused_on(&format!("{A}  bin/\n"), 1, "empty or `.`");
    }

    #[test]
    fn refuses_duplicates_naming_both_lines() {
        refused_on(
            &format!("{A}  bin/a\n{B}  bin/b\n{B}  ./bin/a\n"),
            3,
            "bin/a is listed twice (first on line 1)",
        );
    }

    #[test]
    fn refuses_a_manifest_listing_itself() {
        refused_on(&format!("{A}  SHA256SUMS\n"), 1, "cannot list itself");
    }

    #[test]
    fn refuses_invalid_utf8() {
        let mut bytes = format!("{A}  bin/").into_bytes();
        bytes.extend_from_slice(&[0xff, b'\n']);
        assert_eq!(Manifest::parse(&bytes).unwrap_err().line, 1);
    }
}
