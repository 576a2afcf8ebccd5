//! Passages: a record's text cut into pieces that each fit its model's window, so that no word
//! of a long record goes unread.
//!
//! **Why every passage fits, without the model's tokenizer.** The models here (BGE, and
//! `local-ai`'s `MiniLM`) read text through BERT's uncased tokenizer: it drops whitespace and
//! control characters, lowercases, decomposes (NFD) and drops the combining marks, isolates
//! punctuation and CJK ideographs, then cuts each word into `WordPiece`s of at least one
//! character each (or one `[UNK]`). So a text becomes at most as many tokens as it has
//! non-whitespace characters once decomposed, plus the two the model adds (`[CLS]`, `[SEP]`).
//! No character below U+0900 decomposes into more than one character that survives (the only
//! one that lowercases into two, `İ`, gains a combining mark, which is dropped); none at all
//! into more than three. [`units`] counts each character by that bound (whitespace 0, below
//! U+0900 1, else 3), and a passage holds at most [`PassageRules::budget`] units: at most the
//! window less its two special tokens. `scripts/bench quality` counts the real tokens of every
//! passage of its collections beside it.
//!
//! **How a text is cut** ([`split`]). A text within the budget is one passage, the whole text,
//! as it was embedded before passages. A longer one is cut between words, preferring the
//! strongest break that leaves a passage at least half full: a paragraph (a blank line), then a
//! sentence or a line, then any space; a word longer than a passage is cut inside it. Each
//! passage after the first starts within the last [`PassageRules::overlap`] units of the one
//! before or right after it, at the strongest break there (the earliest of equals), so that a
//! sentence cut by a passage's end is read whole by the next. Passages start and end on non-whitespace, advance (both ends strictly
//! increase) and cover every non-whitespace character; offsets are in characters (Unicode
//! scalar values), end exclusive.

use serde::{Deserialize, Serialize};

/// How a model's texts are cut into passages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassageRules {
    /// The most [`units`] one passage holds.
    pub budget: usize,
    /// How many units, at most, a passage repeats from the end of the one before.
    pub overlap: usize,
}

/// The fewest units a passage may hold: a character counts up to 3.
pub const MIN_BUDGET: usize = 16;

impl PassageRules {
    /// The rules for a model that reads `max_tokens` tokens: its window less the two tokens the
    /// model adds, an eighth of it overlapping.
    pub const fn for_window(max_tokens: usize) -> PassageRules {
        let budget = max_tokens.saturating_sub(2);
        PassageRules {
            budget,
            overlap: budget / 8,
        }
    }

    /// Why these rules cannot cut a text, if they cannot: a budget under [`MIN_BUDGET`] or over
    /// `max_tokens - 2`, or an overlap of half the budget or more.
    pub fn check(&self, max_tokens: usize) -> Result<(), String> {
        let most = max_tokens.saturating_sub(2);
        if self.budget < MIN_BUDGET || self.budget > most {
            return Err(format!(
                "a passage's budget must be {MIN_BUDGET} to {most} (the model reads {max_tokens} tokens, 2 of them its own)"
            ));
        }
        if self.overlap * 2 >= self.budget {
            return Err(format!(
                "the overlap must be under half the budget ({})",
                self.budget / 2
            ));
        }
        Ok(())
    }
}

/// Where a passage sits in its record's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// Its place among the record's passages, from 0.
    pub index: u32,
    /// Its first character.
    pub start: u32,
    /// One past its last character.
    pub end: u32,
}

impl Passage {
    /// The passage's text within `text`, the text it was cut from.
    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        let byte = |chars: u32| {
            text.char_indices()
                .nth(chars as usize)
                .map_or(text.len(), |(i, _)| i)
        };
        &text[byte(self.start)..byte(self.end)]
    }
}

/// An upper bound on the tokens BERT's uncased tokenizer makes of `c` (the module's argument).
pub fn units(c: char) -> usize {
    if c.is_whitespace() {
        0
    } else if u32::from(c) < 0x900 {
        1
    } else {
        3
    }
}

/// The units of `text` ([`units`]).
pub fn text_units(text: &str) -> usize {
    text.chars().map(units).sum()
}

/// How strongly a text may be cut before a piece: the break is a paragraph's end, a sentence's
/// or a line's, a space, or none (inside a word too long for a passage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    InWord,
    Space,
    Sentence,
    Paragraph,
}

/// A word, or a part of one too long for a passage: characters `start..end` of the text.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    /// The break between this piece and the one before.
    before: Break,
}

/// The passages of `text` under `rules` (the module's rules); none for a text of whitespace.
/// `rules` must pass [`PassageRules::check`].
pub fn split(text: &str, rules: PassageRules) -> Vec<Passage> {
    let chars: Vec<char> = text.chars().collect();
    let total: usize = chars.iter().copied().map(units).sum();
    if total == 0 {
        return Vec::new();
    }
    if total <= rules.budget {
        return vec![passage(0, 0, chars.len())];
    }
    let pieces = pieces(&chars, rules.budget);
    // `sum[i]`: the units of the pieces before piece `i`; whitespace counts none.
    let mut sum = Vec::with_capacity(pieces.len() + 1);
    sum.push(0);
    for piece in &pieces {
        let units: usize = chars[piece.start..piece.end]
            .iter()
            .copied()
            .map(units)
            .sum();
        sum.push(sum.last().copied().unwrap_or(0) + units);
    }
    let span = |from: usize, to: usize| sum[to + 1] - sum[from];
    let last_piece = pieces.len() - 1;
    let mut passages = Vec::new();
    // The passage being cut spans pieces `first..=cut`; `fresh` is its first piece that the
    // passage before did not hold, so that each passage ends past the one before.
    let mut first = 0;
    let mut fresh = 0;
    loop {
        let mut last = fresh;
        while last < last_piece && span(first, last + 1) <= rules.budget {
            last += 1;
        }
        let cut = if last == last_piece {
            last
        } else {
            // The strongest break after a passage at least half full (the latest of equals).
            let at_break = |c: &usize| (pieces[c + 1].before, *c);
            (fresh..=last)
                .filter(|&c| span(first, c) * 2 >= rules.budget)
                .max_by_key(at_break)
                .or_else(|| (fresh..=last).max_by_key(at_break))
                .unwrap_or(last)
        };
        let index = u32::try_from(passages.len()).unwrap_or(u32::MAX);
        passages.push(passage(index, pieces[first].start, pieces[cut].end));
        if cut == last_piece {
            return passages;
        }
        // The next starts at the strongest break from the overlap to right after this passage
        // (the earliest of equals: the most overlap), so that it begins a sentence where one
        // begins nearby, and still fits the piece after this passage. No part of a word after
        // its first starts a passage but right after a cut inside the word: the parts before
        // its last hold more than `budget - 3` units, too many for an overlap under half the
        // budget, and its last part loses to the break after it.
        fresh = cut + 1;
        first = (first + 1..=fresh)
            .filter(|&k| {
                (k == fresh || span(k, cut) <= rules.overlap) && span(k, fresh) <= rules.budget
            })
            .max_by_key(|&k| (pieces[k].before, std::cmp::Reverse(k)))
            .unwrap_or(fresh);
    }
}

fn passage(index: u32, start: usize, end: usize) -> Passage {
    let at = |chars: usize| u32::try_from(chars).unwrap_or(u32::MAX);
    Passage {
        index,
        start: at(start),
        end: at(end),
    }
}

/// The words of `chars`, each cut into parts of at most `budget` units, with the break before
/// each.
fn pieces(chars: &[char], budget: usize) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut i = 0;
    loop {
        let gap_start = i;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i == chars.len() {
            break;
        }
        let newlines = chars[gap_start..i].iter().filter(|&&c| c == '\n').count();
        let before = match pieces.last() {
            Some(_) if newlines >= 2 => Break::Paragraph,
            Some(_) if newlines == 1 => Break::Sentence,
            Some(previous) if ends_sentence(&chars[previous.start..previous.end]) => {
                Break::Sentence
            }
            // The first piece's break is never read: no passage is cut before it.
            _ => Break::Space,
        };
        let word_start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        // Where each part of the word starts: a new part where the next character would take
        // the part over the budget.
        let mut starts = vec![word_start];
        let mut units_so_far = 0;
        for (at, &c) in chars.iter().enumerate().take(i).skip(word_start) {
            let u = units(c);
            if units_so_far + u > budget {
                starts.push(at);
                units_so_far = 0;
            }
            units_so_far += u;
        }
        for (part, &start) in starts.iter().enumerate() {
            pieces.push(Piece {
                start,
                end: starts.get(part + 1).copied().unwrap_or(i),
                before: if part == 0 { before } else { Break::InWord },
            });
        }
    }
    pieces
}

/// Whether a word ends a sentence: its last character, past closing quotes and brackets, is
/// `.`, `!`, `?` or `…`.
fn ends_sentence(word: &[char]) -> bool {
    word.iter()
        .rev()
        .find(|c| !matches!(c, '"' | '\'' | ')' | ']' | '»' | '”' | '’'))
        .is_some_and(|c| matches!(c, '.' | '!' | '?' | '…' | '。'))
}

#[cfg(test)]
#[path = "passages_tests.rs"]
mod tests;
