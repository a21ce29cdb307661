//! The one place that knows how a value is written into each kind of file
//! kubeseed renders: systemd units, TOML, YAML and JSON. Renderers never
//! splice a caller's value into a file any other way.
//!
//! systemd is the format without a serializer, so it gets the most care:
//! `ExecStart=` splits on whitespace, honours single and double quotes,
//! C-style backslash escapes, `%` specifiers and `$VAR` expansion
//! (systemd.service(5), "Command lines"; systemd.unit(5), "Specifiers"). A
//! line break cannot be expressed in a unit value at all, so it is refused
//! rather than escaped; so are the other control characters, which no flag
//! of any component has a use for.
//!
//! The load balancer's configurations (HAProxy, nginx, keepalived) quote
//! nothing: [`load_balancer`](super::load_balancer) admits names and paths
//! only from small character sets and addresses only as parsed IPs or DNS
//! names, and refuses anything else; its units use [`systemd_exec_arg`].

use serde::Serialize;

/// Why `value` cannot go into a unit file, if it cannot.
fn refuse_control(value: &str) -> Result<(), String> {
    match value.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(format!("it contains {}", describe(c))),
    }
}

fn describe(c: char) -> String {
    match c {
        '\n' => "a line break (\\n)".into(),
        '\r' => "a carriage return (\\r)".into(),
        '\0' => "a NUL byte".into(),
        '\t' => "a tab".into(),
        other => format!("the control character U+{:04X}", u32::from(other)),
    }
}

/// One `ExecStart=` argument, written so systemd hands the program exactly
/// `arg`: `%` becomes `%%` (no specifier expansion), `$` becomes `$$` (no
/// environment expansion), backslashes are doubled, and an argument with
/// whitespace, quotes, `;` or nothing at all is wrapped in double quotes
/// (inner `"` escaped). Control characters are refused; the error names the
/// character, never the value (it may be a credential).
pub fn systemd_exec_arg(arg: &str) -> Result<String, String> {
    refuse_control(arg)?;
    let needs_quotes = arg.is_empty()
        || arg
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | ';'));
    let mut out = String::with_capacity(arg.len() + 2);
    if needs_quotes {
        out.push('"');
    }
    for c in arg.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            other => out.push(other),
        }
    }
    if needs_quotes {
        out.push('"');
    }
    Ok(out)
}

/// A value of a unit setting that is not a command line (`Description=`,
/// `Documentation=`): `%` is doubled, control characters refused.
pub fn systemd_setting(value: &str) -> Result<String, String> {
    refuse_control(value)?;
    Ok(value.replace('%', "%%"))
}

/// A TOML basic string, quotes included: `"`, `\` and control characters
/// escaped as the TOML 1.0 specification requires.
pub fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// A TOML array of basic strings on one line.
pub fn toml_string_array<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = values.into_iter().map(toml_string).collect();
    format!("[{}]", items.join(", "))
}

/// A YAML document from a typed value, by serde-saphyr: the serializer
/// decides quoting, so a value such as `"true"`, `"0755"` or `"a: b"`
/// stays a string.
pub fn yaml<T: Serialize>(value: &T) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|e| e.to_string())
}

/// A JSON document from a typed value, pretty-printed, ending in a newline.
pub fn json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_arguments_pass_unchanged() {
        for arg in [
            "--etcd-servers=https://10.0.0.1:2379,https://10.0.0.2:2379",
            "--controllers=*,bootstrapsigner,tokencleaner",
            "--node-labels=topology.kubernetes.io/zone=a,kubeseed.io/pool=x",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        ] {
            assert_eq!(systemd_exec_arg(arg).unwrap(), arg);
        }
    }

    #[test]
    fn specifiers_and_variables_are_literal() {
        assert_eq!(systemd_exec_arg("--x=100%").unwrap(), "--x=100%%");
        assert_eq!(systemd_exec_arg("--x=%n").unwrap(), "--x=%%n");
        assert_eq!(systemd_exec_arg("--x=$HOME").unwrap(), "--x=$$HOME");
        assert_eq!(systemd_exec_arg("--x=${A}").unwrap(), "--x=$${A}");
    }

    #[test]
    fn backslashes_are_doubled() {
        assert_eq!(systemd_exec_arg(r"--x=a\b").unwrap(), r"--x=a\\b");
        assert_eq!(systemd_exec_arg(r"--x=a\").unwrap(), r"--x=a\\");
        // `\n` as two characters must stay two characters, not become a newline.
        assert_eq!(systemd_exec_arg(r"--x=\n").unwrap(), r"--x=\\n");
    }

    #[test]
    fn whitespace_and_quotes_are_quoted() {
        assert_eq!(systemd_exec_arg("--x=a b").unwrap(), "\"--x=a b\"");
        assert_eq!(systemd_exec_arg("--x=it's").unwrap(), "\"--x=it's\"");
        assert_eq!(
            systemd_exec_arg("--x=say \"hi\"").unwrap(),
            r#""--x=say \"hi\"""#
        );
        assert_eq!(systemd_exec_arg("--x=a;b").unwrap(), "\"--x=a;b\"");
        assert_eq!(systemd_exec_arg("").unwrap(), "\"\"");
        assert_eq!(
            systemd_exec_arg("--x=50% of $A \\ \"q\"").unwrap(),
            r#""--x=50%% of $$A \\ \"q\"""#
        );
    }

    #[test]
    fn line_breaks_and_control_characters_are_refused() {
        for (arg, what) in [
            ("--x=a\nb", "line break"),
            ("--x=a\rb", "carriage return"),
            ("--x=a\0b", "NUL"),
            ("--x=a\tb", "tab"),
            ("--x=a\u{7f}b", "U+007F"),
            ("--x=a\u{85}b", "U+0085"),
        ] {
            let err = systemd_exec_arg(arg).unwrap_err();
            assert!(err.contains(what), "{arg:?}: {err}");
        }
        assert!(systemd_setting("a\nb").is_err());
        assert_eq!(systemd_setting("50% done").unwrap(), "50%% done");
    }

    #[test]
    fn toml_strings_escape_what_toml_requires() {
        assert_eq!(toml_string("plain"), "\"plain\"");
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_string("a\nb\u{1}"), r#""a\nb\u0001""#);
        assert_eq!(toml_string_array(["/a", "/b"]), r#"["/a", "/b"]"#);
    }

    #[test]
    fn yaml_keeps_ambiguous_strings_strings() {
        #[derive(Serialize)]
        struct Doc {
            a: &'static str,
            b: &'static str,
            c: &'static str,
            d: &'static str,
        }
        let text = yaml(&Doc {
            a: "true",
            b: "0755",
            c: "a: b",
            d: "line\nbreak",
        })
        .unwrap();
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct Back {
            a: String,
            b: String,
            c: String,
            d: String,
        }
        let back: Back = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            back,
            Back {
                a: "true".into(),
                b: "0755".into(),
                c: "a: b".into(),
                d: "line\nbreak".into()
            },
            "{text}"
        );
        // And another parser reads it the same way.
        let other: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(other["a"].as_str(), Some("true"), "{text}");
        assert_eq!(other["b"].as_str(), Some("0755"), "{text}");
    }
}
