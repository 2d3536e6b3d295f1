//! The repository's shape, checked: no import cycles between source files in
//! any crate, and nothing outside `engine/` names the channel library.
//!
//! A file *depends on* the file that defines what it names: `use` paths and
//! inline `crate::`/`super::`/`self::` paths (or a child module's name) are
//! resolved to the module file, then, when that file only re-exports the
//! item (`pub use`), followed to the file that defines it. A `pub use` is a
//! module's facade, not a dependency of its own. Test code (`tests.rs`,
//! `*_tests.rs`, `#[cfg(test)] mod`) is left out.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use spate_test_support::repo;

/// Every crate of the workspace with a `src/` directory.
fn crates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file() && p.join("src").is_dir())
        .collect();
    out.sort();
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without test modules, comments and string contents.
fn strip(text: &str) -> String {
    static TEST_MOD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{").unwrap()
    });
    static COMMENTS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"//[^\n]*").unwrap());
    static STRINGS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap());
    let text = match TEST_MOD.find(text) {
        Some(m) => &text[..m.start()],
        None => text,
    };
    STRINGS
        .replace_all(&COMMENTS.replace_all(text, ""), "\"\"")
        .into_owned()
}

/// A use tree as (path, alias) pairs: `a::{b, c::{d as e}}` →
/// `a::b`, `a::c::d as e`.
fn expand(tree: &str) -> Vec<(String, Option<String>)> {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let Some(close) = tree.rfind('}') else {
            return Vec::new();
        };
        let prefix = &tree[..open];
        let mut parts = Vec::new();
        let (mut depth, mut current) = (0, String::new());
        for c in tree[open + 1..close].chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth == 0 {
                parts.push(std::mem::take(&mut current));
            } else {
                current.push(c);
            }
        }
        parts.push(current);
        let mut out = Vec::new();
        for part in parts.iter().filter(|p| !p.trim().is_empty()) {
            for (path, alias) in expand(part) {
                if path == "self" {
                    let module = prefix.trim_end_matches(':').to_string();
                    let name = module.rsplit("::").next().unwrap_or_default().to_string();
                    out.push((module, alias.or(Some(name))));
                } else {
                    out.push((format!("{prefix}{path}"), alias));
                }
            }
        }
        return out;
    }
    match tree.split_once(" as ") {
        Some((path, alias)) => vec![(path.trim().to_string(), Some(alias.trim().to_string()))],
        None => vec![(tree.to_string(), None)],
    }
}

struct FileInfo {
    text: String,
    items: BTreeSet<String>,
    /// (re-exported, path, alias)
    uses: Vec<(bool, String, Option<String>)>,
}

struct Crate {
    src: PathBuf,
    by_module: HashMap<Vec<String>, PathBuf>,
    files: BTreeMap<PathBuf, FileInfo>,
}

impl Crate {
    fn load(dir: &Path) -> Self {
        let src = dir.join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let item = Regex::new(
            r"(?m)^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:unsafe\s+)?(?:const\s+)?(?:struct|enum|fn|trait|type|const|static|union)\s+(\w+)",
        )
        .unwrap();
        let macro_def = Regex::new(r"macro_rules!\s*(\w+)").unwrap();
        let use_stmt = Regex::new(r"(?m)^\s*(pub(?:\([\w ]+\))?\s+)?use\s+([^;]+);").unwrap();
        let mut by_module = HashMap::new();
        let mut files = BTreeMap::new();
        for path in paths {
            let module = module_of(&src, &path);
            by_module.entry(module).or_insert_with(|| path.clone());
            let text = strip(&std::fs::read_to_string(&path).unwrap());
            let items = item
                .captures_iter(&text)
                .chain(macro_def.captures_iter(&text))
                .map(|c| c[1].to_string())
                .collect();
            let mut uses = Vec::new();
            for c in use_stmt.captures_iter(&text) {
                for (p, alias) in expand(&c[2]) {
                    uses.push((c.get(1).is_some(), p.replace(' ', ""), alias));
                }
            }
            let text = use_stmt.replace_all(&text, "").into_owned();
            files.insert(path, FileInfo { text, items, uses });
        }
        Crate {
            src,
            by_module,
            files,
        }
    }

    /// `path` as written in `file`, made absolute (module segments then
    /// item); `None` for paths into other crates.
    fn absolute(&self, file: &Path, path: &str) -> Option<Vec<String>> {
        let mut segs: Vec<String> = path
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let me = module_of(&self.src, file);
        match segs.first().map(String::as_str) {
            None => None,
            Some("crate") => Some(segs.split_off(1)),
            Some("super") | Some("self") => {
                let mut current = me;
                while let Some(first) = segs.first() {
                    match first.as_str() {
                        "super" => {
                            current.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    segs.remove(0);
                }
                current.extend(segs);
                Some(current)
            }
            Some(first) => {
                let mut child = me.clone();
                child.push(first.to_string());
                self.by_module.contains_key(&child).then(|| {
                    let mut full = me;
                    full.extend(segs);
                    full
                })
            }
        }
    }

    /// The file defining what `segs` names, through re-exports.
    fn resolve(&self, segs: &[String], depth: usize) -> Option<PathBuf> {
        if depth > 10 {
            return None;
        }
        let n = (0..=segs.len())
            .rev()
            .find(|&n| self.by_module.contains_key(&segs[..n]))?;
        let file = &self.by_module[&segs[..n]];
        let Some(name) = segs.get(n) else {
            return Some(file.clone());
        };
        let info = &self.files[file];
        if info.items.contains(name) {
            return Some(file.clone());
        }
        for (exported, path, alias) in &info.uses {
            let last = alias
                .clone()
                .unwrap_or_else(|| path.rsplit("::").next().unwrap_or_default().to_string());
            if *exported
                && &last == name
                && let Some(target) = self
                    .absolute(file, path)
                    .and_then(|abs| self.resolve(&abs, depth + 1))
            {
                return Some(target);
            }
        }
        Some(file.clone())
    }

    fn edges(&self) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
        let inline = Regex::new(r"(?:^|[^\w:])((?:crate|super|self)(?:::\w+)+)").unwrap();
        let relative = Regex::new(r"(?:^|[^\w:])(\w+(?:::\w+)+)").unwrap();
        let mut edges = BTreeMap::new();
        for (file, info) in &self.files {
            let name = file.file_name().unwrap().to_string_lossy();
            let mut out = BTreeSet::new();
            if name != "tests.rs" && !name.ends_with("_tests.rs") {
                let mut paths: Vec<String> = info
                    .uses
                    .iter()
                    .filter(|(exported, _, _)| !exported)
                    .map(|(_, p, _)| p.clone())
                    .collect();
                paths.extend(inline.captures_iter(&info.text).map(|c| c[1].to_string()));
                paths.extend(relative.captures_iter(&info.text).map(|c| c[1].to_string()));
                for path in paths {
                    if let Some(target) = self
                        .absolute(file, &path)
                        .and_then(|abs| self.resolve(&abs, 0))
                        && &target != file
                    {
                        out.insert(target);
                    }
                }
            }
            edges.insert(file.clone(), out);
        }
        edges
    }
}

fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut segs: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    segs
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: HashMap<&'a PathBuf, usize>,
        low: HashMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.edges[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.out
}

/// Cycles not taken apart yet; each entry lists the member files, relative
/// to the repository. None are left. The list only shrinks: an entry that no
/// longer is a cycle fails the test too.
const KNOWN_CYCLES: &[&[&str]] = &[];

#[test]
fn no_import_cycles_between_files() {
    let mut found = Vec::new();
    let mut known_seen = Vec::new();
    for dir in crates() {
        let krate = Crate::load(&dir);
        let edges = krate.edges();
        for component in cycles(&edges) {
            let names: Vec<String> = component
                .iter()
                .map(|f| f.strip_prefix(repo()).unwrap().display().to_string())
                .collect();
            let same = |known: &&&[&str]| {
                let mut known: Vec<&str> = known.to_vec();
                known.sort_unstable();
                let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
                names.sort_unstable();
                known == names
            };
            if let Some(known) = KNOWN_CYCLES.iter().find(same) {
                known_seen.push(*known);
                continue;
            }
            let members: BTreeSet<&PathBuf> = component.iter().collect();
            let mut lines = Vec::new();
            for file in &component {
                for target in edges[file].iter().filter(|t| members.contains(t)) {
                    lines.push(format!(
                        "    {} -> {}",
                        file.strip_prefix(repo()).unwrap().display(),
                        target.strip_prefix(repo()).unwrap().display()
                    ));
                }
            }
            found.push(lines.join("\n"));
        }
    }
    assert!(
        found.is_empty(),
        "import cycles between files (move what both sides need into a file of its own):\n{}",
        found.join("\n\n")
    );
    let gone: Vec<_> = KNOWN_CYCLES
        .iter()
        .filter(|k| !known_seen.contains(*k))
        .collect();
    assert!(
        gone.is_empty(),
        "no longer cycles, drop them from KNOWN_CYCLES: {gone:?}"
    );
}

#[test]
fn the_checker_sees_a_cycle_through_a_parent_module() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod a;\npub use a::Facade;\npub struct Root;\n",
    )
    .unwrap();
    // a/mod.rs uses its child, the child uses what a/mod.rs defines: a cycle.
    std::fs::write(
        src.join("a/mod.rs"),
        "mod child;\npub use child::Facade;\npub struct Config;\nfn f() { child::run(); }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/child.rs"),
        "use super::Config;\nuse crate::Root;\npub struct Facade;\npub fn run() {}\n",
    )
    .unwrap();
    let krate = Crate::load(dir.path());
    let edges = krate.edges();
    let found = cycles(&edges);
    assert_eq!(found.len(), 1, "{edges:?}");
    assert_eq!(
        found[0],
        vec![src.join("a/child.rs"), src.join("a/mod.rs")],
        "lib.rs only re-exports: not part of it"
    );
    // Through the facade to the defining file: lib.rs → nothing, child → lib (Root).
    assert!(edges[&src.join("lib.rs")].is_empty());
    assert!(edges[&src.join("a/child.rs")].contains(&src.join("lib.rs")));
}

#[test]
fn nothing_outside_the_engine_names_the_channel_library() {
    let mut offenders = Vec::new();
    for dir in crates() {
        if dir.ends_with("engine") {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            if std::fs::read_to_string(&file).unwrap().contains("kanal") {
                offenders.push(file.display().to_string());
            }
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        if manifest.contains("kanal") {
            offenders.push(dir.join("Cargo.toml").display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "kanal named outside engine/: {offenders:?}"
    );
}
