use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A goal for a metric (design.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Target {
    /// The figure should be at least this.
    AtLeast(f64),
    /// The figure should be at most this.
    AtMost(f64),
}

impl Target {
    /// Whether `value` meets the goal.
    pub fn met(self, value: f64) -> bool {
        match self {
            Target::AtLeast(t) => value >= t,
            Target::AtMost(t) => value <= t,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::AtLeast(t) => write!(f, ">= {}", crate::report::human(*t)),
            Target::AtMost(t) => write!(f, "<= {}", crate::report::human(*t)),
        }
    }
}

/// One measured figure.
///
/// Names are literals or built from a workload's name; they are owned once they have come back
/// from the child process that ran the workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The metric's name, as in design.md §7 (`append_batch_rec_s`).
    pub name: Cow<'static, str>,
    /// The figure.
    pub value: f64,
    /// Its unit, for the table.
    pub unit: Cow<'static, str>,
    /// The goal, if it has one.
    pub target: Option<Target>,
    /// The metric it is to be read beside (its same-run baseline), if any.
    pub baseline: Option<Cow<'static, str>>,
}

impl Metric {
    /// A figure with no goal.
    pub fn new(name: impl Into<Cow<'static, str>>, value: f64, unit: &'static str) -> Self {
        Metric {
            name: name.into(),
            value,
            unit: Cow::Borrowed(unit),
            target: None,
            baseline: None,
        }
    }

    /// With a goal.
    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// Read beside `baseline`.
    pub fn beside(mut self, baseline: impl Into<Cow<'static, str>>) -> Self {
        self.baseline = Some(baseline.into());
        self
    }
}
