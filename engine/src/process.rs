//! The standard `process_*` metrics, read from `/proc` when the metrics are
//! rendered (Linux; nothing elsewhere).
//!
//! They are written straight into the exposition text rather than recorded
//! through the `metrics` facade, whose counters are integers:
//! `process_cpu_seconds_total` needs fractions of a second.

use std::fmt::Write;

use crate::catalog::{MetricDef, PROCESS};

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on
/// every architecture Linux exports to user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// The process's figures, where they could be read.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ProcessFigures {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    start_time_seconds: Option<f64>,
}

impl ProcessFigures {
    /// Reads the current process's figures from `/proc`.
    pub(crate) fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        let boot = std::fs::read_to_string("/proc/stat").ok();
        let fields = stat.as_deref().map(stat_fields).unwrap_or_default();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let cpu_seconds = match (field(13), field(14)) {
            (Some(user), Some(system)) => Some((user + system) / TICKS_PER_SECOND),
            _ => None,
        };
        let boot_time = boot.as_deref().and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        let start_time_seconds = match (boot_time, field(21)) {
            (Some(boot), Some(ticks)) => Some(boot + ticks / TICKS_PER_SECOND),
            _ => None,
        };
        let status_kib = |key: &str| {
            status.as_deref().and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                    .map(|kib| kib * 1024.0)
            })
        };
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as f64);
        let max_fds = limits.as_deref().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("Max open files"))?;
            line["Max open files".len()..]
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        });
        ProcessFigures {
            cpu_seconds,
            resident_bytes: status_kib("VmRSS:"),
            virtual_bytes: status_kib("VmSize:"),
            open_fds,
            max_fds,
            start_time_seconds,
        }
    }

    /// Appends the figures that could be read, in the text exposition format.
    pub(crate) fn render_into(&self, out: &mut String) {
        let values = [
            self.cpu_seconds,
            self.resident_bytes,
            self.virtual_bytes,
            self.open_fds,
            self.max_fds,
            self.start_time_seconds,
        ];
        for (def, value) in PROCESS.iter().zip(values) {
            if let Some(value) = value {
                write_family(out, def, value);
            }
        }
    }
}

fn write_family(out: &mut String, def: &MetricDef, value: f64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n\n",
        name = def.name,
        help = def.help,
        kind = def.kind.as_str(),
    );
}

/// The fields of `/proc/<pid>/stat` from the state on (index 0 is the pid, 1
/// the command; the command may hold spaces and parentheses, so the fields
/// after it are split after its last `)`).
fn stat_fields(stat: &str) -> Vec<&str> {
    let Some(close) = stat.rfind(')') else {
        return Vec::new();
    };
    let mut fields = vec![stat[..close].split(' ').next().unwrap_or(""), ""];
    fields.extend(stat[close + 1..].split_whitespace());
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_spaces_in_the_command() {
        let stat = "42 (my (odd) cmd) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 1000 123456 789";
        let f = stat_fields(stat);
        assert_eq!(f[0], "42");
        assert_eq!(f[2], "S");
        assert_eq!((f[13], f[14]), ("250", "50"));
        assert_eq!(f[21], "1000");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let figures = ProcessFigures::read();
        assert!(figures.resident_bytes.unwrap() > 0.0);
        assert!(figures.virtual_bytes.unwrap() >= figures.resident_bytes.unwrap());
        assert!(figures.open_fds.unwrap() >= 3.0);
        assert!(figures.max_fds.unwrap() >= figures.open_fds.unwrap());
        assert!(figures.start_time_seconds.unwrap() > 1_600_000_000.0);
        assert!(figures.cpu_seconds.unwrap() >= 0.0);
        let mut text = String::new();
        figures.render_into(&mut text);
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ")
        );
        assert_eq!(text.matches("# HELP ").count(), 6, "{text}");
    }
}
