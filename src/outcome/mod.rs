//! What a workflow is worth to the task: the task outcomes of the sessions that ran it whole
//! against those of the sessions that did not, their difference, and a 95 % interval of that
//! difference. A difference is a lift or a drop only when its interval excludes zero.
//!
//! Outcomes are kept as integer millionths, so that their sums add up exactly over the parts of
//! a split log (see [`crate::exchange`]): Spark gives the answer one machine gives.

pub mod paths;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::events::EventLog;
use crate::exchange::{self, Exchange};

/// Outcomes are summed in millionths.
const UNIT: f64 = 1e6;
/// The normal quantile of a two-sided 95 % interval.
const Z: f64 = 1.959_963_984_540_054;
/// The normal quantile of a two-sided 99.9 % interval: for scans that test many chains at once.
pub const Z_SCAN: f64 = 3.290_526_731_491_926;

/// The count, sum and sum of squares of some sessions' outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moments {
    pub n: u64,
    sum: i64,
    squares: i128,
}

impl Moments {
    pub fn push(&mut self, v: f64) {
        let u = (v * UNIT).round() as i64;
        self.n += 1;
        self.sum += u;
        self.squares += i128::from(u) * i128::from(u);
    }

    /// The mean outcome: for outcomes of 1 and 0, the rate of solved tasks.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / UNIT / self.n as f64)
    }

    /// The sample variance, from two sessions on.
    fn variance(&self) -> Option<f64> {
        let n = self.n as f64;
        let (sum, squares) = (self.sum as f64 / UNIT, self.squares as f64 / UNIT / UNIT);
        (self.n > 1).then(|| ((squares - sum * sum / n) / (n - 1.0)).max(0.0))
    }

    fn minus(self, other: Moments) -> Moments {
        Moments {
            n: self.n - other.n,
            sum: self.sum - other.sum,
            squares: self.squares - other.squares,
        }
    }
}

impl exchange::Sum for Moments {
    fn add(&mut self, other: Moments) {
        self.n += other.n;
        self.sum += other.sum;
        self.squares += other.squares;
    }
}

/// Whether a difference of outcomes is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The sessions that ran the workflow solve the task more often; the interval excludes zero.
    Lift,
    /// They solve it less often; the interval excludes zero.
    Drop,
    /// The interval holds zero, or there are too few sessions to say.
    Unclear,
}

/// The known outcomes of a whole log (every part), counted once: what each workflow's sessions
/// are compared against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    all: Moments,
    /// Every known outcome is 1 or 0: the means are rates.
    binary: bool,
}

impl Totals {
    /// The totals of `log` over every part; `None` when the log has no outcomes.
    pub fn of(log: &EventLog, ex: &dyn Exchange) -> Option<Totals> {
        let outcomes = log.outcomes.as_ref()?;
        let mut all = Moments::default();
        let mut not_binary = 0usize;
        for &v in outcomes.iter().filter(|v| !v.is_nan()) {
            all.push(v);
            not_binary += usize::from(v != 0.0 && v != 1.0);
        }
        let (all, not_binary) = exchange::sum(ex, (all, not_binary));
        Some(Totals {
            all,
            binary: not_binary == 0,
        })
    }

    /// Some sessions' outcomes (of every part) against those of all the others.
    pub fn compare(&self, with: Moments) -> Comparison {
        Comparison {
            with,
            without: self.all.minus(with),
            binary: self.binary,
        }
    }

    /// `sessions` (this part's, each once) against the rest of the log, over every part.
    pub fn compare_sessions(
        &self,
        log: &EventLog,
        sessions: &[usize],
        ex: &dyn Exchange,
    ) -> Comparison {
        let outcomes = log.outcomes.as_deref().unwrap_or_default();
        let mut with = Moments::default();
        for v in sessions.iter().filter_map(|&s| outcomes.get(s)) {
            if !v.is_nan() {
                with.push(*v);
            }
        }
        self.compare(exchange::sum(ex, with))
    }
}

/// The outcomes of the sessions that ran a workflow whole against the others'.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub with: Moments,
    pub without: Moments,
    /// Every known outcome of the log is 1 or 0: the means are rates.
    pub binary: bool,
}

impl Comparison {
    /// The difference of the means (with − without), and its 95 % interval: Newcombe's hybrid
    /// score interval for rates (Wilson intervals of each rate combined, which keeps its
    /// coverage with few sessions and rates near 0 or 1), Welch's normal interval for rewards.
    pub fn difference(&self) -> Option<(f64, f64, f64)> {
        self.difference_at(Z)
    }

    /// [`Comparison::difference`] with the interval of the normal quantile `z`.
    pub fn difference_at(&self, z: f64) -> Option<(f64, f64, f64)> {
        let (a, b) = (self.with.mean()?, self.without.mean()?);
        let d = a - b;
        let (low, high) = match self.binary {
            true => {
                let (la, ua) = wilson(a, self.with.n as f64, z);
                let (lb, ub) = wilson(b, self.without.n as f64, z);
                (
                    d - ((a - la).powi(2) + (ub - b).powi(2)).sqrt(),
                    d + ((ua - a).powi(2) + (b - lb).powi(2)).sqrt(),
                )
            }
            false => {
                let se = (self.with.variance()? / self.with.n as f64
                    + self.without.variance()? / self.without.n as f64)
                    .sqrt();
                (d - z * se, d + z * se)
            }
        };
        Some((d, low, high))
    }

    pub fn effect(&self) -> Effect {
        self.effect_at(Z)
    }

    /// A mean as people read it: a rate in percent (`56.2%`), a reward as it is (`0.41`);
    /// `-` when there is none.
    pub fn shown(&self, mean: Option<f64>) -> String {
        match (mean, self.binary) {
            (None, _) => "-".into(),
            (Some(v), true) => format!("{:.1}%", v * 100.0),
            (Some(v), false) => format!("{v:.2}"),
        }
    }

    /// [`Comparison::effect`] with the interval of the normal quantile `z`.
    pub fn effect_at(&self, z: f64) -> Effect {
        match self.difference_at(z) {
            Some((_, low, _)) if low > 0.0 => Effect::Lift,
            Some((_, _, high)) if high < 0.0 => Effect::Drop,
            _ => Effect::Unclear,
        }
    }

    /// The fields `--json` and the templates carry: `outcome_rate` (a mean reward when the
    /// outcomes are rewards), `outcome_rate_without`, `outcome_difference` with its
    /// `outcome_interval`, `outcome_effect`, and the sessions each rate is of.
    pub fn fields(&self) -> Map<String, Value> {
        let round = |v: f64| (v * 1e4).round() / 1e4;
        let mut out = Map::new();
        let kind = if self.binary { "rate" } else { "mean_reward" };
        out.insert("outcome_kind".into(), json!(kind));
        out.insert("outcome_rate".into(), json!(self.with.mean().map(round)));
        out.insert(
            "outcome_rate_without".into(),
            json!(self.without.mean().map(round)),
        );
        out.insert("outcome_sessions".into(), json!(self.with.n));
        out.insert("outcome_sessions_without".into(), json!(self.without.n));
        let difference = self.difference();
        out.insert(
            "outcome_difference".into(),
            json!(difference.map(|(d, ..)| round(d))),
        );
        out.insert(
            "outcome_interval".into(),
            json!(difference.map(|(_, l, h)| [round(l), round(h)])),
        );
        out.insert("outcome_effect".into(), json!(self.effect()));
        out
    }
}

/// Wilson's score interval of a rate `p` of `n` trials, for the normal quantile `z`.
fn wilson(p: f64, n: f64, z: f64) -> (f64, f64) {
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    (centre - half, centre + half)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(values: &[f64]) -> Moments {
        let mut m = Moments::default();
        values.iter().for_each(|&v| m.push(v));
        m
    }

    #[test]
    fn wilson_matches_the_published_example() {
        // Newcombe (1998), Statistics in Medicine 17, table I: 81 of 263 → 0.2553 to 0.3662.
        let (low, high) = wilson(81.0 / 263.0, 263.0, Z);
        assert!(
            (low - 0.2553).abs() < 1e-4 && (high - 0.3662).abs() < 1e-4,
            "{low} {high}"
        );
    }

    #[test]
    fn newcombe_matches_the_published_example() {
        // Newcombe (1998), Statistics in Medicine 17, example (a) of table II: 56/70 against
        // 48/80, difference 0.2000, method 10: 0.0524 to 0.3339.
        let mut ones = vec![1.0; 56];
        ones.extend(vec![0.0; 14]);
        let mut others = vec![1.0; 48];
        others.extend(vec![0.0; 32]);
        let c = Comparison {
            with: moments(&ones),
            without: moments(&others),
            binary: true,
        };
        let (d, low, high) = c.difference().unwrap();
        assert!((d - 0.2).abs() < 1e-9);
        assert!(
            (low - 0.0524).abs() < 1e-4 && (high - 0.3339).abs() < 1e-4,
            "{low} {high}"
        );
        assert_eq!(c.effect(), Effect::Lift);
    }

    #[test]
    fn rewards_get_welchs_interval_and_too_few_sessions_say_nothing() {
        let c = Comparison {
            with: moments(&[0.2, 0.4, 0.3, 0.1]),
            without: moments(&[0.9, 0.8, 0.7, 1.0, 0.6]),
            binary: false,
        };
        let (d, low, high) = c.difference().unwrap();
        // Means 0.25 and 0.8, variances 1/60 and 1/40.
        let se = (1.0 / 60.0 / 4.0 + 1.0 / 40.0 / 5.0_f64).sqrt();
        assert!((d + 0.55).abs() < 1e-9);
        assert!((low - (d - Z * se)).abs() < 1e-9 && (high - (d + Z * se)).abs() < 1e-9);
        assert_eq!(c.effect(), Effect::Drop);
        let one = Comparison {
            with: moments(&[0.5]),
            ..c
        };
        assert_eq!((one.difference(), one.effect()), (None, Effect::Unclear));
    }
}
