//! Finding the files to tail: each glob is walked from its literal prefix
//! directory with `std::fs::read_dir`, and every regular file (or symlink to
//! one) whose whole path matches an include pattern and no exclude pattern is
//! returned.
//!
//! A pattern without `**` is walked only as deep as it has components, so
//! `/var/log/app/*.log` reads one directory. Symlinked directories are not
//! followed (no loops); unreadable or missing directories are skipped (a
//! directory that does not exist yet is normal).

use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::TailError;

/// How deep below a root a `**` pattern is walked at most.
const MAX_RECURSIVE_DEPTH: usize = 32;

/// Where to walk for one pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Root {
    /// The literal directory prefix (empty = the working directory).
    dir: PathBuf,
    /// Directory levels below `dir` holding candidates (1 = `dir` itself).
    depth: usize,
}

/// The compiled `paths` and `exclude` patterns.
#[derive(Debug, Clone)]
pub(super) struct FileMatcher {
    roots: Vec<Root>,
    include: GlobSet,
    exclude: GlobSet,
}

fn is_glob(component: &str) -> bool {
    component.contains(['*', '?', '[', '{'])
}

fn compile(patterns: &[String]) -> Result<GlobSet, TailError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|source| TailError::Glob {
                pattern: pattern.clone(),
                source,
            })?;
        set.add(glob);
    }
    set.build().map_err(|source| TailError::Glob {
        pattern: patterns.join(", "),
        source,
    })
}

/// The literal directory a pattern starts from, and how deep to walk below it.
fn root_of(pattern: &str) -> Root {
    let path = Path::new(pattern);
    let components: Vec<Component<'_>> = path.components().collect();
    let Some(last) = components.len().checked_sub(1) else {
        return Root {
            dir: PathBuf::new(),
            depth: 1,
        };
    };
    // The file name is always matched by the glob; directories before the first
    // component with a metacharacter are literal.
    let literal = components[..last]
        .iter()
        .take_while(|c| !is_glob(&c.as_os_str().to_string_lossy()))
        .count();
    let dir: PathBuf = components[..literal].iter().collect();
    let rest = &components[literal..];
    let depth = if rest.iter().any(|c| c.as_os_str() == "**") {
        MAX_RECURSIVE_DEPTH
    } else {
        rest.len()
    };
    Root { dir, depth }
}

impl FileMatcher {
    /// Compiles the patterns; a bad pattern is an error naming it.
    pub(super) fn new(paths: &[String], exclude: &[String]) -> Result<Self, TailError> {
        let mut roots: Vec<Root> = paths.iter().map(|p| root_of(p)).collect();
        roots.sort_by(|a, b| a.dir.cmp(&b.dir).then(b.depth.cmp(&a.depth)));
        roots.dedup_by(|later, kept| later.dir == kept.dir && later.depth <= kept.depth);
        Ok(FileMatcher {
            roots,
            include: compile(paths)?,
            exclude: compile(exclude)?,
        })
    }

    /// True when `path` is to be tailed.
    pub(super) fn matches(&self, path: &Path) -> bool {
        self.include.is_match(path) && !self.exclude.is_match(path)
    }

    /// The matching files, sorted, without duplicates.
    pub(super) fn scan(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for root in &self.roots {
            self.walk(&root.dir, root.depth, &mut found);
        }
        found.sort();
        found.dedup();
        found
    }

    fn walk(&self, dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
        let io_dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Ok(entries) = std::fs::read_dir(io_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = dir.join(entry.file_name());
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth > 1 {
                    self.walk(&path, depth - 1, found);
                }
            } else if self.matches(&path)
                && (kind.is_file() || std::fs::metadata(&path).is_ok_and(|m| m.is_file()))
            {
                found.push(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x\n").unwrap();
    }

    #[test]
    fn roots_start_at_the_literal_prefix() {
        assert_eq!(
            root_of("/var/log/app/*.log"),
            Root {
                dir: "/var/log/app".into(),
                depth: 1
            }
        );
        assert_eq!(
            root_of("/var/log/*/x.log"),
            Root {
                dir: "/var/log".into(),
                depth: 2
            }
        );
        assert_eq!(
            root_of("/var/log/**/*.log"),
            Root {
                dir: "/var/log".into(),
                depth: MAX_RECURSIVE_DEPTH
            }
        );
        assert_eq!(
            root_of("/var/log/syslog"),
            Root {
                dir: "/var/log".into(),
                depth: 1
            }
        );
        assert_eq!(
            root_of("*.log"),
            Root {
                dir: "".into(),
                depth: 1
            }
        );
    }

    #[test]
    fn scan_matches_globs_and_honours_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in [
            "a.log",
            "b.log",
            "b.log.1",
            "c.txt",
            "old.log",
            "sub/d.log",
            "sub/deep/e.log",
        ] {
            touch(&d.join(name));
        }
        let flat = FileMatcher::new(
            &[format!("{}/*.log", d.display())],
            &[format!("{}/old*", d.display())],
        )
        .unwrap();
        assert_eq!(flat.scan(), vec![d.join("a.log"), d.join("b.log")]);

        let deep = FileMatcher::new(&[format!("{}/**/*.log", d.display())], &[]).unwrap();
        assert_eq!(
            deep.scan(),
            vec![
                d.join("a.log"),
                d.join("b.log"),
                d.join("old.log"),
                d.join("sub/d.log"),
                d.join("sub/deep/e.log"),
            ]
        );

        let set = FileMatcher::new(
            &[
                format!("{}/b.log*", d.display()),
                format!("{}/[a]?log", d.display()),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            set.scan(),
            vec![d.join("a.log"), d.join("b.log"), d.join("b.log.1")]
        );
    }

    #[test]
    fn a_missing_directory_is_no_error() {
        let m = FileMatcher::new(&["/nonexistent/spate/*.log".to_string()], &[]).unwrap();
        assert!(m.scan().is_empty());
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let err = FileMatcher::new(&["/var/log/[a.log".to_string()], &[]).unwrap_err();
        assert!(err.to_string().contains("/var/log/[a.log"), "{err}");
    }
}
