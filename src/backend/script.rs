//! The POSIX script a commands step runs, byte for byte as Woodpecker generates it
//! (`pipeline/backend/common/script_posix.go`), and its base64 `CI_SCRIPT` form. Pure text.
//!
//! Only the POSIX generator exists: our agent is a Linux binary, and Woodpecker picks the
//! generator by the agent's OS, so a Linux agent never emits the PowerShell script either.

use base64::Engine;

/// The container command that decodes and runs `$CI_SCRIPT`.
pub const COMMAND: [&str; 3] = ["/bin/sh", "-c", "echo $CI_SCRIPT | base64 -d | /bin/sh -e"];
/// The `SHELL` env value set beside `CI_SCRIPT`.
pub const SHELL: &str = "/bin/sh";

const PRELUDE: &str = r#"
if [ -n "$CI_NETRC_MACHINE" ]; then
cat <<EOF > $HOME/.netrc
machine $CI_NETRC_MACHINE
login $CI_NETRC_USERNAME
password $CI_NETRC_PASSWORD
EOF
chmod 0600 $HOME/.netrc
fi
unset CI_NETRC_USERNAME
unset CI_NETRC_PASSWORD
unset CI_SCRIPT
"#;

/// POSIX shell quoting (Go's `shellescape.Quote`): `''` for empty, the string itself if it holds
/// only safe characters, otherwise single-quoted with `'` as `'"'"'`.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if s.chars().all(safe) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r#"'"'"'"#))
}

/// The script text: the netrc prelude, `mkdir -p`/`cd` into the working dir (verbatim, no
/// escaping, as Woodpecker), then per command an empty line, `echo + <quoted>` and the command.
pub fn posix_script(working_dir: &str, commands: &[String]) -> String {
    let mut s = String::from(PRELUDE);
    s.push_str(&format!("mkdir -p \"{working_dir}\"\ncd \"{working_dir}\"\n"));
    for c in commands {
        s.push_str(&format!("\necho + {}\n{c}\n", shell_quote(c)));
    }
    s
}

/// `CI_SCRIPT`: standard base64 with padding of the script.
pub fn ci_script(working_dir: &str, commands: &[String]) -> String {
    base64::engine::general_purpose::STANDARD.encode(posix_script(working_dir, commands))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_byte_for_byte() {
        let got = posix_script("/woodpecker/src", &["gradle build".into(), "echo ok".into()]);
        let want = "\nif [ -n \"$CI_NETRC_MACHINE\" ]; then\ncat <<EOF > $HOME/.netrc\nmachine $CI_NETRC_MACHINE\n\
login $CI_NETRC_USERNAME\npassword $CI_NETRC_PASSWORD\nEOF\nchmod 0600 $HOME/.netrc\nfi\n\
unset CI_NETRC_USERNAME\nunset CI_NETRC_PASSWORD\nunset CI_SCRIPT\nmkdir -p \"/woodpecker/src\"\n\
cd \"/woodpecker/src\"\n\necho + 'gradle build'\ngradle build\n\necho + 'echo ok'\necho ok\n";
        assert_eq!(got, want);
    }

    #[test]
    fn ci_script_is_padded_standard_base64_of_the_script() {
        let cmds = vec!["go test ./...".to_string()];
        let encoded = ci_script("/w", &cmds);
        let decoded = base64::engine::general_purpose::STANDARD.decode(&encoded).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), posix_script("/w", &cmds));
        // The script length (209 bytes) is not a multiple of 3, so padding must be present.
        assert_eq!(posix_script("/w", &cmds).len() % 3, 2);
        assert!(encoded.ends_with('='));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("make"), "make");
        assert_eq!(shell_quote("a/b.c:d,e=f+g@h%i_j-k"), "a/b.c:d,e=f+g@h%i_j-k");
        assert_eq!(shell_quote("echo 'hi'"), r#"'echo '"'"'hi'"'"''"#);
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(
            posix_script("/w", &[String::new()]).lines().rev().nth(1),
            Some("echo + ''")
        );
    }
}
