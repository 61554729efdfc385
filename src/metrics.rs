//! The one Prometheus text-format writer (`GET /metrics`, exposition format 0.0.4).
//!
//! Every part that exports figures (HTTP, OSC, stream, real-time priorities) writes
//! through this, so `# HELP`/`# TYPE` lines, the `monmix_` prefix and label escaping
//! are done in one place.

use std::fmt::{Display, Write};

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        }
    }
}

/// Builds one exposition. Names are given without the `monmix_` prefix.
#[derive(Debug, Default)]
pub struct PromText {
    out: String,
}

impl PromText {
    pub fn new() -> Self {
        PromText {
            out: String::with_capacity(8192),
        }
    }

    /// `# HELP` and `# TYPE` of a family; follow with [`PromText::sample`]s.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP monmix_{name} {help}");
        let _ = writeln!(self.out, "# TYPE monmix_{name} {}", kind.as_str());
    }

    /// One sample line: `monmix_{name}{labels} value`. Label values are escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        let _ = write!(self.out, "monmix_{name}");
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A summary: the given quantiles (in seconds or any unit), its sum and count.
    pub fn summary(
        &mut self,
        name: &str,
        help: &str,
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) {
        self.family(name, Kind::Summary, help);
        for (q, v) in quantiles {
            let _ = writeln!(self.out, "monmix_{name}{{quantile=\"{q}\"}} {v:.6}");
        }
        let _ = writeln!(self.out, "monmix_{name}_sum {sum:.6}");
        let _ = writeln!(self.out, "monmix_{name}_count {count}");
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines() {
        let mut p = PromText::new();
        p.single("up", Kind::Gauge, "Is it up.", 1);
        p.family("dropped_total", Kind::Counter, "Drops, by reason.");
        p.sample("dropped_total", &[("reason", "a\"b\\c\nd")], 3);
        p.summary(
            "t_seconds",
            "Time.",
            &[(0.5, 0.001), (0.99, 0.002)],
            0.3,
            200,
        );
        let s = p.finish();
        assert_eq!(
            s,
            "# HELP monmix_up Is it up.\n# TYPE monmix_up gauge\nmonmix_up 1\n\
             # HELP monmix_dropped_total Drops, by reason.\n# TYPE monmix_dropped_total counter\n\
             monmix_dropped_total{reason=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP monmix_t_seconds Time.\n# TYPE monmix_t_seconds summary\n\
             monmix_t_seconds{quantile=\"0.5\"} 0.001000\nmonmix_t_seconds{quantile=\"0.99\"} 0.002000\n\
             monmix_t_seconds_sum 0.300000\nmonmix_t_seconds_count 200\n"
        );
    }
}
