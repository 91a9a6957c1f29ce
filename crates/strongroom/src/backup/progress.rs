//! A progress line on stderr for long operations, only when stderr is a terminal.

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    label: &'static str,
    total: u64,
    done: u64,
    last: Option<Instant>,
    enabled: bool,
}

impl Progress {
    pub fn new(label: &'static str, total: u64) -> Self {
        Self {
            label,
            total,
            done: 0,
            last: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    pub fn advance(&mut self, n: u64) {
        self.done = self.done.saturating_add(n);
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
            && self.done < self.total
        {
            return;
        }
        self.last = Some(now);
        let pct = (self.done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100);
        let filled = usize::try_from(pct / 4).unwrap_or(25);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{}: [{}{}] {pct:>3}% {:.1}/{:.1} MiB",
            self.label,
            "#".repeat(filled),
            " ".repeat(25 - filled.min(25)),
            self.done as f64 / 1_048_576.0,
            self.total as f64 / 1_048_576.0
        );
        let _ = err.flush();
    }

    pub fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            eprintln!();
        }
    }
}

/// Counts what passes through into a [`Progress`].
pub struct Counted<'a, R> {
    pub inner: R,
    pub progress: &'a mut Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
