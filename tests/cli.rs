use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_woodpecker-k8s-agent"))
}

#[test]
fn version_prints_the_crate_version() {
    let out = bin().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("woodpecker-k8s-agent {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_command_is_an_error_naming_it() {
    let out = bin().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command `frobnicate`"));
}
