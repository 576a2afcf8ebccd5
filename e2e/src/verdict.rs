//! A benchmark's figure against its target, printed so that the figure shown agrees with the
//! verdict: a ratio of 0.8997 against `>= 0.90` shows as 0.89, not as a 0.90 that is "NOT met";
//! and the summary line each figure is printed as.

use std::fmt::Display;

/// A target: the figure must reach the bound, or stay within it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

impl Bound {
    pub fn met(self, value: f64) -> bool {
        match self {
            Bound::AtLeast(bound) => value >= bound,
            Bound::AtMost(bound) => value <= bound,
        }
    }

    /// `value` with `decimals` decimals, rounded away from the target's side: down for
    /// [`Bound::AtLeast`], up for [`Bound::AtMost`]. A figure shown on the bound has met it.
    pub fn shown(self, value: f64, decimals: i32) -> String {
        match self {
            Bound::AtLeast(_) => rounded_down(value, decimals),
            Bound::AtMost(_) => rounded_up(value, decimals),
        }
    }

    /// "met" or "NOT met", as the summary lines print it.
    pub fn verdict(self, value: f64) -> &'static str {
        said(self.met(value))
    }
}

/// How a summary line says whether its target is met.
pub fn said(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// The nudge keeps a value that is exactly a printed figure (0.29, whose product with 100 is
/// 28.999999999999996) from losing a digit to binary rounding.
const NUDGE: f64 = 1e-9;

/// `value` with `decimals` decimals, rounded down: how a ratio held to a floor is shown.
pub fn rounded_down(value: f64, decimals: i32) -> String {
    let scale = 10f64.powi(decimals);
    fixed((value * scale + NUDGE).floor() / scale, decimals)
}

/// `value` with `decimals` decimals, rounded up: how a time held to a ceiling is shown.
pub fn rounded_up(value: f64, decimals: i32) -> String {
    let scale = 10f64.powi(decimals);
    fixed((value * scale - NUDGE).ceil() / scale, decimals)
}

fn fixed(value: f64, decimals: i32) -> String {
    format!(
        "{value:.prec$}",
        prec = usize::try_from(decimals).unwrap_or(0)
    )
}

/// Prints a figure as its summary line, `summary|what|figure|target|verdict`: the lines
/// `scripts/bench` collects from every benchmark into one table of targets.
pub fn summary(
    what: impl Display,
    figure: impl Display,
    target: impl Display,
    verdict: impl Display,
) {
    println!("summary|{what}|{figure}|{target}|{verdict}");
}

#[cfg(test)]
mod tests {
    use super::Bound;

    #[test]
    fn a_figure_just_short_of_its_bound_never_shows_as_the_bound() {
        let cases = [
            (Bound::AtLeast(0.90), 0.8997, 2, "0.89", "NOT met"),
            (Bound::AtLeast(0.90), 0.9031, 2, "0.90", "met"),
            (Bound::AtMost(5.0), 5.04, 1, "5.1", "NOT met"),
            (Bound::AtMost(5.0), 4.96, 1, "5.0", "met"),
            // A value that is exactly a printed figure keeps it despite binary rounding.
            (Bound::AtLeast(0.29), 0.29, 2, "0.29", "met"),
            (Bound::AtMost(100.0), 100.4, 0, "101", "NOT met"),
        ];
        for (bound, value, decimals, shown, verdict) in cases {
            assert_eq!(
                (bound.shown(value, decimals).as_str(), bound.verdict(value)),
                (shown, verdict),
                "{value} against {bound:?}"
            );
        }
    }
}
