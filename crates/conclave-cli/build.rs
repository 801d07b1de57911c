//! Stamps the binary with the git commit it is built from, for `conclave --version`, the start
//! log and the `conclave_build_info` metric. Outside a git checkout (a source tarball, a
//! registry download) the commit is "unknown".

use std::path::Path;
use std::process::Command;

/// What goes into the binary: the workspace's sources. `dirty` means these differ from the commit.
const SOURCES: &[&str] = &["crates", "contracts", "Cargo.toml", "Cargo.lock"];

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Re-stamp when the sources change or HEAD moves (a commit, a checkout, staging).
    for source in SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(source).display());
    }
    if let Some(git_dir) = git(&root, &["rev-parse", "--absolute-git-dir"]) {
        for file in ["HEAD", "index", "packed-refs", "refs"] {
            println!("cargo:rerun-if-changed={git_dir}/{file}");
        }
    }
    let commit = git(&root, &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let mut status = vec!["status", "--porcelain", "--untracked-files=normal", "--"];
    status.extend(SOURCES);
    let dirty = commit != "unknown" && git(&root, &status).is_some_and(|s| !s.is_empty());
    // A generated source file, not `cargo:rustc-env`: incremental rustc kept an `env!` value
    // from an earlier build after the variable changed (the binary named an old commit).
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let stamp = format!("pub const COMMIT: &str = {commit:?};\npub const DIRTY: bool = {dirty};\n");
    std::fs::write(out.join("build_stamp.rs"), stamp).expect("OUT_DIR is writable");
}
