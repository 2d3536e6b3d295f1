//! The README's "Run it" walk-through, run as a new user would: its commands
//! in order, in a fresh directory, each output checked against the output
//! the README shows under it.
//!
//! The walk-through is a sequence of ```` ```sh ```` blocks, each optionally
//! followed by a ```` ```text ```` block: what the commands print. A shown
//! line matches a printed line when they are equal after runs of spaces are
//! squeezed, `…` standing for any text; the shown lines must appear in order
//! (the README may leave printed lines out). `cargo install` lines are
//! skipped (the binaries under test are first on `PATH`), and `spate run`
//! is started in the background and must print its shown lines before the
//! next block runs. A command's output may take until `FRESHNESS` to match:
//! the README promises that pushed events are queryable within seconds.

mod support;

use spate_test_support::repo;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a command may keep printing something else before it prints
/// what the README shows (pushed events become queryable within a second).
const FRESHNESS: Duration = Duration::from_secs(5);

/// One step of the walk-through: commands and what they print.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    commands: Vec<String>,
    shown: Vec<String>,
}

/// The steps of the section `## {section}` of `markdown`.
fn steps(markdown: &str, section: &str) -> Vec<Step> {
    let heading = format!("## {section}\n");
    let start = markdown
        .find(&heading)
        .unwrap_or_else(|| panic!("no section {heading:?} in the README"))
        + heading.len();
    let body = &markdown[start..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = body.lines();
    while let Some(line) = lines.next() {
        let fence = line.trim();
        if fence != "```sh" && fence != "```text" {
            continue;
        }
        let block: Vec<String> = lines
            .by_ref()
            .take_while(|l| l.trim() != "```")
            .map(str::to_string)
            .collect();
        if fence == "```sh" {
            let commands = block
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect();
            steps.push(Step {
                commands,
                shown: Vec::new(),
            });
        } else {
            let step = steps.last_mut().expect("a text block follows a sh block");
            step.shown.extend(block);
        }
    }
    steps
}

/// Runs of whitespace squeezed to one space, trimmed.
fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `printed` matches `shown` (`…` stands for any text).
fn line_matches(shown: &str, printed: &str) -> bool {
    let (shown, printed) = (squeeze(shown), squeeze(printed));
    let mut parts = shown.split('…');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = printed.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        let part = part.trim();
        if i + 1 == parts.len() {
            return rest.trim_end().ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The first shown line that the printed lines do not match, in order.
fn first_unmatched<'a>(shown: &'a [String], printed: &str) -> Option<&'a str> {
    let mut printed = printed.lines();
    shown
        .iter()
        .find(|s| !printed.by_ref().any(|p| line_matches(s, p)))
        .map(String::as_str)
}

/// A shell running `command` in `dir` with the binaries under test first
/// on `PATH`.
fn shell(dir: &Path, command: &str) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_spate")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut shell = Command::new("bash");
    shell
        .args(["-o", "pipefail", "-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("SPATE_LISTEN")
        .env("NO_COLOR", "1");
    shell
}

/// `spate run`, started as the README says, stopped at the end.
struct Background {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Background {
    fn start(dir: &Path, command: &str) -> Self {
        let mut child = shell(dir, &format!("exec {command} 2>&1"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Background {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until what it printed matches `shown`.
    fn expect(&mut self, command: &str, shown: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if first_unmatched(shown, &self.seen.join("\n")).is_none() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "`{command}` did not print what the README shows;\nshown:\n{}\nprinted:\n{}",
                    shown.join("\n"),
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Runs `command`; its output (stdout, then stderr) once it matches `shown`
/// or `FRESHNESS` has passed.
fn run_until_shown(dir: &Path, command: &str, shown: &[String]) -> String {
    let started = Instant::now();
    loop {
        let out = shell(dir, command).output().unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "`{command}` failed:\n{printed}");
        if first_unmatched(shown, &printed).is_none() || started.elapsed() > FRESHNESS {
            return printed;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_readme_walk_through_prints_what_the_readme_shows() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let steps = steps(&readme, "Run it");
    assert!(steps.len() >= 5, "{steps:?}");
    // A fresh directory, where a user who cloned the repository stands.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("examples"), dir.path().join("examples")).unwrap();
    let mut service: Option<Background> = None;
    let mut ran = 0;
    for step in &steps {
        let commands: Vec<&String> = step
            .commands
            .iter()
            .filter(|c| !c.starts_with("cargo install"))
            .collect();
        if commands.is_empty() {
            continue;
        }
        if let [command] = commands.as_slice()
            && command.starts_with("spate run")
        {
            assert!(service.is_none(), "two `spate run` steps");
            let mut started = Background::start(dir.path(), command);
            started.expect(command, &step.shown);
            service = Some(started);
            ran += 1;
            continue;
        }
        let script = commands
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let printed = run_until_shown(dir.path(), &script, &step.shown);
        if let Some(missing) = first_unmatched(&step.shown, &printed) {
            panic!(
                "`{script}` printed no line like {missing:?}; the README shows:\n{}\nit printed:\n{printed}",
                step.shown.join("\n")
            );
        }
        ran += commands.len();
    }
    assert!(service.is_some(), "the walk-through starts `spate run`");
    assert!(ran >= 6, "only {ran} commands ran");
}

#[test]
fn readme_steps_and_matching() {
    let markdown = "# x\n## Run it\ntext\n```sh\ncargo install a\n# note\nspate run\n```\n```text\nlistening on …\n```\n```sh\nspate demo\n```\n## Next\n```sh\nnot me\n```\n";
    assert_eq!(
        steps(markdown, "Run it"),
        vec![
            Step {
                commands: vec!["cargo install a".into(), "spate run".into()],
                shown: vec!["listening on …".into()],
            },
            Step {
                commands: vec!["spate demo".into()],
                shown: vec![],
            },
        ]
    );
    assert!(line_matches(
        "spate: listening on http://127.0.0.1:8470 (…)",
        "spate: listening on http://127.0.0.1:8470 (POST /v1/logs)"
    ));
    assert!(line_matches(
        "…  ERROR  payments  card processor timeout…",
        "2026-12-05T10:40:39.469Z  ERROR     payments  card processor timeout after 10000 ms"
    ));
    assert!(!line_matches("a … c", "a b d"));
    assert!(line_matches("n", "n"));
    assert!(!line_matches("n", "n 1"));
    let shown = vec!["b".to_string(), "d".to_string()];
    assert_eq!(first_unmatched(&shown, "a\nb\nc\nd"), None);
    assert_eq!(first_unmatched(&shown, "d\nb"), Some("d"));
}
