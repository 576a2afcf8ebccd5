//! A benchmark's figure against its target, printed so that the figure shown agrees with the
//! verdict: a ratio of 0.8997 against `>= 0.90` shows as 0.89, not as a 0.90 that is "NOT met".

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
        if self.met(value) {
            "met"
        } else {
            "NOT met"
        }
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

#[cfg(test)]
mod tests {
    use super::Bound;

    #[test]
    fn a_figure_just_short_of_its_bound_never_shows_as_the_bound() {
        let floor = Bound::AtLeast(0.90);
        assert_eq!(
            (floor.shown(0.8997, 2), floor.verdict(0.8997)),
            ("0.89".to_owned(), "NOT met")
        );
        assert_eq!(
            (floor.shown(0.9031, 2), floor.verdict(0.9031)),
            ("0.90".to_owned(), "met")
        );
        let ceiling = Bound::AtMost(5.0);
        assert_eq!(
            (ceiling.shown(5.04, 1), ceiling.verdict(5.04)),
            ("5.1".to_owned(), "NOT met")
        );
        assert_eq!(
            (ceiling.shown(4.96, 1), ceiling.verdict(4.96)),
            ("5.0".to_owned(), "met")
        );
        let exact = Bound::AtLeast(0.29);
        assert_eq!(
            (exact.shown(0.29, 2), exact.verdict(0.29)),
            ("0.29".to_owned(), "met")
        );
        let whole = Bound::AtMost(100.0);
        assert_eq!(
            (whole.shown(100.4, 0), whole.verdict(100.4)),
            ("101".to_owned(), "NOT met")
        );
    }
}
