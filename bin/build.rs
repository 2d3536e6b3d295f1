//! Records the git commit the binary is built from, for `spate_build_info`:
//! `SPATE_BUILD_COMMIT` when set (release pipelines building from a tarball),
//! else `git rev-parse --short=12 HEAD`, else `unknown` (no git, not a
//! checkout).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SPATE_BUILD_COMMIT");
    let commit = match std::env::var("SPATE_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            // Rebuild when HEAD moves: HEAD itself, and the branch it names.
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
                println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
                if let (Some(reference), Some(common)) = (
                    git(&["symbolic-ref", "-q", "HEAD"]),
                    git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
                        .map(PathBuf::from),
                ) {
                    let path = common.join(&reference);
                    if path.exists() {
                        println!("cargo:rerun-if-changed={}", path.display());
                    }
                    let packed = common.join("packed-refs");
                    if packed.exists() {
                        println!("cargo:rerun-if-changed={}", packed.display());
                    }
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=SPATE_BUILD_COMMIT={commit}");
    // Identical code folding in the linker (LLD, Rust's default linker on
    // x86_64 Linux): merges the byte-identical copies of generic functions that
    // each crate instantiates for itself (-5 % of the binary). `safe` folds
    // only functions whose address is never taken, so no function pointer
    // comparison (in the C dependencies either) changes meaning. Optimised
    // builds only: tests link faster without it.
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rustc-link-arg-bin=spate=-Wl,--icf=safe");
    }
}
