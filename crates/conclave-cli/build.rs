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
    // Not `CONCLAVE_*`: cargo also sets these when it runs the binary (tests, `cargo run`), and
    // the node reads `CONCLAVE_*` variables as configuration.
    let commit = git(&root, &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let mut status = vec!["status", "--porcelain", "--untracked-files=normal", "--"];
    status.extend(SOURCES);
    let dirty = commit != "unknown" && git(&root, &status).is_some_and(|s| !s.is_empty());
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={commit}");
    if dirty {
        println!("cargo:rustc-env=BUILD_GIT_DIRTY=1");
    }
}
