//! `spate user add NAME --role viewer|admin`: adds a console user to the
//! data dir (or changes its role and password), the password read from a
//! prompt without echo, or from standard input with `--password-stdin`.
//! `spate user remove NAME` removes one, `spate user list` shows them.
//! Changes are audited; a user removed or changed is signed out.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use spate_operators::event::wall_clock_ms;

use super::audit::AuditRecord;
use super::auth::{check_new_password, hash_password};
use super::store::ConsoleStore;
use super::users::{Role, check_name};
use crate::output::{Format, write_objects};

/// `spate user ...`.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a console user, or change an existing one's role and password.
    Add {
        /// The sign-in name (letters, digits, '.', '_', '-', '@').
        name: String,
        /// What the user may do: viewer (search, alerts) or admin (also
        /// the audit trail and users).
        #[arg(long, value_enum)]
        role: Role,
        /// The data dir of `spate run`.
        #[arg(long, default_value = "./spate-data")]
        data_dir: PathBuf,
        /// Read the password from the first line of standard input (for
        /// scripts) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a console user (their sessions end at their next request).
    Remove {
        /// The sign-in name.
        name: String,
        /// The data dir of `spate run`.
        #[arg(long, default_value = "./spate-data")]
        data_dir: PathBuf,
    },
    /// List the console users.
    List {
        /// The data dir of `spate run`.
        #[arg(long, default_value = "./spate-data")]
        data_dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// Runs `action`, writing what to print to `out`.
pub fn run(action: UserAction, out: &mut dyn Write) -> Result<()> {
    match action {
        UserAction::Add {
            name,
            role,
            data_dir,
            password_stdin,
        } => {
            check_name(&name).map_err(anyhow::Error::msg)?;
            let password = if password_stdin {
                read_stdin_password()?
            } else {
                prompt_password()?
            };
            check_new_password(&password)?;
            let hash = hash_password(&password)?;
            let store = open(&data_dir)?;
            let now = wall_clock_ms();
            let new = store.put_user(&name, role, &hash, now)?;
            store.audit(&AuditRecord {
                ts_ms: now,
                actor: local_actor(),
                client: "cli".into(),
                action: if new { "user_add" } else { "user_change" }.into(),
                outcome: "ok".into(),
                detail: format!("user {name:?} role {}", role.as_str()),
            })?;
            let verb = if new { "added" } else { "updated" };
            writeln!(out, "user {name} {verb} ({})", role.as_str())?;
        }
        UserAction::Remove { name, data_dir } => {
            let store = open(&data_dir)?;
            if !store.remove_user(&name)? {
                bail!("no user {name:?} in {}", data_dir.display());
            }
            store.audit(&AuditRecord {
                ts_ms: wall_clock_ms(),
                actor: local_actor(),
                client: "cli".into(),
                action: "user_remove".into(),
                outcome: "ok".into(),
                detail: format!("user {name:?}"),
            })?;
            writeln!(out, "user {name} removed")?;
        }
        UserAction::List { data_dir, format } => {
            let store = open(&data_dir)?;
            let rows: Vec<serde_json::Value> = store
                .users()?
                .into_iter()
                .map(|(name, role, created)| {
                    serde_json::json!({
                        "name": name,
                        "role": role.as_str(),
                        "created": spate_operators::sinks::hot::query::rfc3339_ms(created),
                    })
                })
                .collect();
            write_objects(out, format, &["name", "role", "created"], &rows)?;
        }
    }
    Ok(())
}

fn open(data_dir: &Path) -> Result<ConsoleStore> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    Ok(ConsoleStore::open_in(data_dir)?)
}

/// Who ran the command, for the audit trail.
fn local_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn read_stdin_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks twice on the terminal, without echo (through `stty`).
fn prompt_password() -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("standard input is not a terminal: pass the password with --password-stdin");
    }
    let first = prompt("Password: ")?;
    let second = prompt("Password again: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

fn prompt(label: &str) -> Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{label}")?;
    stderr.flush()?;
    let hidden = stty("-echo");
    let line = read_stdin_password();
    if hidden {
        stty("echo");
    }
    writeln!(stderr)?;
    if !hidden {
        writeln!(stderr, "(warning: could not turn off echo)")?;
    }
    line
}

/// Runs `stty ARG` on the terminal of standard input; whether it worked.
fn stty(arg: &str) -> bool {
    std::process::Command::new("stty")
        .arg(arg)
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}
