//! The walls between the rooms. Between crates they are compile errors: `kube` and `sim` are
//! crates of their own (`crates/`), so neither can name anything of the app, and `kube` cannot
//! name `sim`. Inside the app crate, this test fails on an import that points the wrong way
//! (cli -> agent -> pipeline -> backend; the shared bottom modules import no room), and the
//! shipped build (`--no-default-features`) must not compile the simulated cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Each room of `src/` and the rooms it must not import. `cli` may import everything.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("agent", &["cli"]),
    ("pipeline", &["agent", "cli"]),
    ("backend", &["pipeline", "agent", "cli"]),
    ("go", &["backend", "pipeline", "agent", "cli"]),
    ("shutdown.rs", &["backend", "pipeline", "agent", "cli"]),
    ("metrics.rs", &["backend", "pipeline", "agent", "cli"]),
    ("log.rs", &["backend", "pipeline", "agent", "cli"]),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    for entry in std::fs::read_dir(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let p = entry.unwrap().path();
        if p.is_dir() || p.extension().is_some_and(|e| e == "rs") {
            rust_files(&p, out);
        }
    }
}

/// The rooms a line of code names through `crate::`: `crate::agent::x`, `crate::{agent, cli}`.
fn rooms_named(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or("");
            out.extend(
                group
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or("").to_string()),
            );
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.push(name);
        }
    }
    out
}

/// Every import of a forbidden room, as `file:line: room`.
fn violations(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (room, forbidden) in FORBIDDEN {
        let mut files = Vec::new();
        rust_files(&src.join(room), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for named in rooms_named(code) {
                    if forbidden.contains(&named.as_str()) {
                        found.push(format!("{}:{}: {room} imports {named}", file.display(), n + 1));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn no_room_imports_one_above_it() {
    let found = violations(&root().join("src"));
    assert!(found.is_empty(), "imports against the arrows:\n{}", found.join("\n"));
}

#[test]
fn the_check_catches_a_wrong_arrow() {
    // A copy of the tree with one forbidden import planted: backend -> agent.
    let tmp = std::env::temp_dir().join(format!("wp-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("backend")).unwrap();
    std::fs::write(
        tmp.join("backend/x.rs"),
        "use crate::{go, agent::log};\nfn f() { crate::cli::run(); }\n",
    )
    .unwrap();
    for (room, _) in FORBIDDEN.iter().filter(|(r, _)| *r != "backend") {
        let p = tmp.join(room);
        if room.ends_with(".rs") {
            std::fs::write(&p, "").unwrap();
        } else {
            std::fs::create_dir_all(&p).unwrap();
        }
    }
    let found = violations(&tmp);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].ends_with("backend/x.rs:1: backend imports agent"), "{found:?}");
    assert!(found[1].ends_with("backend/x.rs:2: backend imports cli"), "{found:?}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn the_shipped_build_does_not_compile_the_simulated_cluster() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(tree.lines().any(|l| l.starts_with("kube v")), "{tree}");
    assert!(
        !tree.lines().any(|l| l.starts_with("sim v")),
        "sim in the shipped build:\n{tree}"
    );
    // And the default (test and `exec --embedded`) build has it.
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .current_dir(root())
        .output()
        .expect("run cargo tree");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with("sim v"))
    );
}

/// The modules a room makes public: everything else is `pub(crate)` or private, and what the
/// tests, the benches and the other crates use is re-exported at the room's root. (`cli` is the
/// top: its subcommand modules are what `main.rs` dispatches to.)
const PUBLIC_MODULES: &[&str] = &[
    "backend/mod.rs: preflight",
    "pipeline/mod.rs: compile",
    "pipeline/mod.rs: yaml",
    "agent/mod.rs: proto",
    "agent/proto.rs: method",
    "go/mod.rs: duration",
    "go/mod.rs: json",
    "go/mod.rs: strconv",
    "go/mod.rs: zerolog",
];

/// Every `pub mod` under `src/` outside `cli/` and `lib.rs`, as `file: name`.
fn public_modules(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap().to_string_lossy().into_owned();
        if rel.starts_with("cli/") || rel == "lib.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub mod ") {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                found.push(format!("{rel}: {name}"));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn rooms_keep_their_modules_private() {
    let found = public_modules(&root().join("src"));
    let extra: Vec<&String> = found.iter().filter(|m| !PUBLIC_MODULES.contains(&m.as_str())).collect();
    assert!(
        extra.is_empty(),
        "public modules beyond the rooms' narrow surface (make them pub(crate) and re-export \
         what is needed at the room's root):\n{extra:?}"
    );
    // The check itself: a planted public module is found.
    let tmp = std::env::temp_dir().join(format!("wp-pubmod-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("backend")).unwrap();
    std::fs::write(tmp.join("backend/mod.rs"), "pub mod preflight;\npub mod pod;\n").unwrap();
    assert_eq!(
        public_modules(&tmp),
        ["backend/mod.rs: pod", "backend/mod.rs: preflight"]
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}
