//! Classification of similarity scores, and the gray-zone split.
//!
//! Every boundary is inclusive from below: a score of exactly 0.90 under the default thresholds is
//! `DUPLICATE`, exactly 0.85 is `CONFIRMS`. Thresholds come from each search service's config.

use serde::{Deserialize, Serialize};

/// What a match means for the text that was searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Classification {
    /// Near-identical content.
    Duplicate,
    /// Strongly supports the same claim.
    Confirms,
    /// Topically related.
    Related,
    /// No significant match.
    New,
}

/// Lower bounds of each classification; a search service may override them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub duplicate: f32,
    pub confirms: f32,
    pub related: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            duplicate: 0.90,
            confirms: 0.85,
            related: 0.75,
        }
    }
}

impl Thresholds {
    pub fn classify(&self, score: f32) -> Classification {
        if score >= self.duplicate {
            Classification::Duplicate
        } else if score >= self.confirms {
            Classification::Confirms
        } else if score >= self.related {
            Classification::Related
        } else {
            Classification::New
        }
    }
}

/// The band of scores that needs a human's review: `min <= score < max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrayZone {
    pub min: f32,
    pub max: f32,
}

impl Default for GrayZone {
    fn default() -> Self {
        GrayZone {
            min: 0.60,
            max: 0.85,
        }
    }
}

/// Where a score falls relative to a gray zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// `score >= max`: confident enough to act on automatically.
    HighConfidence,
    /// `min <= score < max`: needs review.
    GrayZone,
    /// `score < min`: not a match worth showing.
    Below,
}

impl GrayZone {
    /// A zone whose `min` is above its `max` has nothing in it: below `min` is below, and what
    /// is left is at or above `max`.
    pub fn band(&self, score: f32) -> Band {
        if score < self.min {
            Band::Below
        } else if score >= self.max {
            Band::HighConfidence
        } else {
            Band::GrayZone
        }
    }

    /// Splits scored items into the high-confidence and gray-zone lists, keeping their order and
    /// dropping those below the zone.
    pub fn split<T>(&self, items: Vec<T>, score: impl Fn(&T) -> f32) -> (Vec<T>, Vec<T>) {
        let mut high = Vec::new();
        let mut gray = Vec::new();
        for item in items {
            match self.band(score(&item)) {
                Band::HighConfidence => high.push(item),
                Band::GrayZone => gray.push(item),
                Band::Below => {}
            }
        }
        (high, gray)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_inclusive_from_below() {
        let t = Thresholds::default();
        assert_eq!(t.classify(1.0), Classification::Duplicate);
        assert_eq!(t.classify(0.90), Classification::Duplicate);
        assert_eq!(t.classify(0.8999), Classification::Confirms);
        assert_eq!(t.classify(0.85), Classification::Confirms);
        assert_eq!(t.classify(0.8499), Classification::Related);
        assert_eq!(t.classify(0.75), Classification::Related);
        assert_eq!(t.classify(0.7499), Classification::New);
        assert_eq!(t.classify(-1.0), Classification::New);
    }

    #[test]
    fn custom_thresholds_move_the_boundaries() {
        let t = Thresholds {
            duplicate: 0.8,
            confirms: 0.7,
            related: 0.5,
        };
        assert_eq!(t.classify(0.8), Classification::Duplicate);
        assert_eq!(t.classify(0.6), Classification::Related);
    }

    #[test]
    fn classification_serializes_in_capitals() {
        let json = serde_json::to_string(&Classification::Duplicate).unwrap();
        assert_eq!(json, "\"DUPLICATE\"");
    }

    #[test]
    fn gray_zone_split_is_min_inclusive_max_exclusive() {
        let zone = GrayZone::default();
        let scores = vec![0.95, 0.85, 0.8499, 0.60, 0.5999];
        let (high, gray) = zone.split(scores, |s| *s);
        assert_eq!(high, vec![0.95, 0.85]);
        assert_eq!(gray, vec![0.8499, 0.60]);
    }
}
