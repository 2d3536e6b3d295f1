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
    // Relative relocations packed (DT_RELR) by the linker: ~290,000 of them
    // would take 24 bytes each in .rela.dyn (7 MB) and be applied one by one at
    // start-up. Needs glibc 2.36 or newer at run time (Debian 12, the image's
    // base). Optimised builds only: tests link as before.
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rustc-link-arg-bin=spate=-Wl,-z,pack-relative-relocs");
    }
}
