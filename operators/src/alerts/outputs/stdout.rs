//! The stdout output: one readable line per notice ([`super::format_line`]).

use std::fmt;
use std::io::Write;
use std::path::Path;

use super::format_line;
use crate::alerts::AlertError;
use crate::alerts::record::AlertRecord;

/// Writes one line per notice to stdout (or any writer, for tests).
pub struct StdoutOutput {
    out: Box<dyn Write + Send>,
}

impl fmt::Debug for StdoutOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdoutOutput").finish_non_exhaustive()
    }
}

impl Default for StdoutOutput {
    fn default() -> Self {
        Self::new()
    }
}

impl StdoutOutput {
    /// Writes to the process's stdout.
    pub fn new() -> Self {
        Self::to_writer(Box::new(std::io::stdout()))
    }

    /// Writes to `out` instead.
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        StdoutOutput { out }
    }

    /// Writes one line per notice and flushes.
    pub fn send(&mut self, alerts: &[AlertRecord]) -> Result<(), AlertError> {
        let io = |e| AlertError::io("write", Path::new("stdout"), e);
        for alert in alerts {
            writeln!(self.out, "{}", format_line(alert)).map_err(io)?;
        }
        self.out.flush().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::alerts::outputs::tests::sample_alert;
    use crate::alerts::record::AlertState;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_line_per_notice() {
        let buf = Shared::default();
        let mut out = StdoutOutput::to_writer(Box::new(buf.clone()));
        out.send(&[
            sample_alert(AlertState::Firing),
            sample_alert(AlertState::Resolved),
        ])
        .unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ALERT firing error_burst service=api"));
        assert!(lines[1].starts_with("ALERT resolved error_burst"));
    }
}
