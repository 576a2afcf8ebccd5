use super::*;
use crate::test_rng::Rng;

const RULES: PassageRules = PassageRules {
    budget: 40,
    overlap: 10,
};

fn texts(text: &str, rules: PassageRules) -> Vec<&str> {
    split(text, rules).iter().map(|p| p.text(text)).collect()
}

#[test]
fn a_character_counts_by_the_tokens_it_can_become() {
    assert_eq!(units(' '), 0);
    assert_eq!(units('\n'), 0);
    assert_eq!(units('\u{3000}'), 0, "an ideographic space is whitespace");
    assert_eq!(units('a'), 1);
    assert_eq!(units('.'), 1);
    assert_eq!(units('\u{e9}'), 1, "é loses its accent");
    assert_eq!(units('\u{8ff}'), 1);
    assert_eq!(units('\u{900}'), 3);
    assert_eq!(
        units('\u{d55c}'),
        3,
        "a Hangul syllable decomposes into three jamo"
    );
    assert_eq!(text_units("ab c\u{d55c}"), 6);
}

#[test]
fn a_models_rules_leave_room_for_its_two_tokens() {
    let rules = PassageRules::for_window(512);
    assert_eq!(
        rules,
        PassageRules {
            budget: 510,
            overlap: 63
        }
    );
    assert_eq!(rules.check(512), Ok(()));
    assert!(PassageRules {
        budget: 511,
        overlap: 10
    }
    .check(512)
    .is_err());
    assert!(PassageRules {
        budget: MIN_BUDGET - 1,
        overlap: 0
    }
    .check(512)
    .is_err());
    assert_eq!(
        PassageRules {
            budget: MIN_BUDGET,
            overlap: 7
        }
        .check(512),
        Ok(())
    );
    assert!(PassageRules {
        budget: 100,
        overlap: 50
    }
    .check(512)
    .is_err());
    assert_eq!(
        PassageRules {
            budget: 100,
            overlap: 49
        }
        .check(512),
        Ok(())
    );
}

#[test]
fn a_text_within_the_budget_is_one_passage_the_whole_text() {
    let text = "  A short note, as it was.\n";
    assert_eq!(
        split(text, RULES),
        vec![Passage {
            index: 0,
            start: 0,
            end: 27
        }]
    );
    let exactly = "x".repeat(RULES.budget);
    assert_eq!(texts(&exactly, RULES), vec![exactly.as_str()]);
    assert_eq!(split(" \n\t ", RULES), vec![]);
    assert_eq!(split("", RULES), vec![]);
}

#[test]
fn a_long_text_is_cut_at_its_paragraphs_first() {
    let text = "The first paragraph has words.\n\nThe second one, too. It goes on.";
    assert_eq!(
        texts(text, RULES),
        vec![
            "The first paragraph has words.",
            "The second one, too. It goes on."
        ]
    );
}

#[test]
fn a_paragraph_is_cut_before_a_later_sentence() {
    let text = "Aaaa bbbb cccc dddd eeee\n\nFfff gggg. Hhhh iiii jjjj kkkk llll";
    assert_eq!(texts(text, RULES)[0], "Aaaa bbbb cccc dddd eeee");
}

#[test]
fn without_a_paragraph_a_text_is_cut_at_a_sentence_then_at_a_space() {
    let text = "One two three four five. Six seven eight nine ten eleven.";
    let passages = texts(text, RULES);
    assert_eq!(passages[0], "One two three four five.");
    assert_eq!(passages.last(), Some(&"Six seven eight nine ten eleven."));
    let words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda";
    let cut = texts(words, RULES);
    assert_eq!(cut[0], "alpha beta gamma delta epsilon zeta eta theta");
    assert!(cut[1].starts_with("eta theta iota"), "{cut:?}");
    assert!(cut.iter().all(|p| !p.starts_with(' ') && !p.ends_with(' ')));
}

#[test]
fn a_line_break_counts_as_a_sentences_end() {
    let text = "a heading of some more words\nthen a line that runs on and on";
    assert_eq!(
        texts(text, RULES),
        vec![
            "a heading of some more words",
            "then a line that runs on and on"
        ]
    );
}

#[test]
fn a_passage_is_not_cut_short_for_a_break_near_its_start() {
    // The paragraph break comes after 5 units, a passage's budget is 40: it is cut at the
    // last space that fits instead, and the heading stays with its text.
    let text = "Intro\n\naaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj";
    let first = texts(text, RULES)[0];
    assert!(first.starts_with("Intro\n\naaaa"), "{first:?}");
    assert!(text_units(first) * 2 >= RULES.budget, "{first:?}");
}

#[test]
fn a_word_longer_than_a_passage_is_cut_inside() {
    let word = "z".repeat(100);
    let passages = split(&word, RULES);
    assert_eq!(
        passages
            .iter()
            .map(|p| (p.start, p.end))
            .collect::<Vec<_>>(),
        vec![(0, 40), (40, 80), (80, 100)]
    );
}

#[test]
fn a_long_word_is_cut_before_rather_than_inside() {
    let text = format!("intro words here {}", "z".repeat(60));
    let passages = texts(&text, RULES);
    assert_eq!(passages[0], "intro words here");
    assert_eq!(passages[1..], [&"z".repeat(40), &"z".repeat(20)]);
}

#[test]
fn the_next_passage_repeats_the_last_sentence_that_fits_the_overlap() {
    let text = "Aaaa bbbb cccc dddd eeee. Ffff ggg. Hhhh iiii jjjj kkkk llll mmmm.";
    let passages = texts(text, RULES);
    assert_eq!(passages[0], "Aaaa bbbb cccc dddd eeee. Ffff ggg.");
    assert!(passages[1].starts_with("Ffff ggg. Hhhh"), "{passages:?}");
}

#[test]
fn offsets_count_characters_not_bytes() {
    let text = "\u{e9}t\u{e9} \u{e9}t\u{e9} ".repeat(20);
    for passage in split(&text, RULES) {
        let by_chars: String = text
            .chars()
            .skip(passage.start as usize)
            .take((passage.end - passage.start) as usize)
            .collect();
        assert_eq!(passage.text(&text), by_chars);
    }
}

/// A text of words of many lengths and scripts, with spaces, sentences, lines and paragraphs.
fn random_text(rng: &mut Rng) -> String {
    let letters = [
        'a', 'b', 'z', '\u{e9}', '\u{d55c}', '\u{6f22}', '7', '-', '.',
    ];
    let gaps = [
        " ",
        " ",
        " ",
        "  ",
        "\n",
        "\n\n",
        ". ",
        "! ",
        "\t",
        " \u{3000}",
    ];
    let words = rng.below(120);
    let mut text = String::new();
    if rng.below(4) == 0 {
        text.push_str(" \n");
    }
    for _ in 0..words {
        let long = rng.below(20) == 0;
        let len = if long {
            30 + rng.below(90)
        } else {
            1 + rng.below(9)
        };
        for _ in 0..len {
            text.push(rng.pick(&letters));
        }
        text.push_str(rng.pick(&gaps));
    }
    text
}

#[test]
fn every_passage_fits_advances_and_the_passages_cover_every_word() {
    for seed in 0..3_000 {
        let mut rng = Rng(seed);
        let budget = MIN_BUDGET + rng.below(60);
        let rules = PassageRules {
            budget,
            overlap: rng.below(budget.div_ceil(2)),
        };
        assert_eq!(rules.check(512), Ok(()), "seed {seed}");
        let text = random_text(&mut rng);
        let chars: Vec<char> = text.chars().collect();
        let passages = split(&text, rules);
        assert_eq!(passages, split(&text, rules), "seed {seed}: deterministic");
        let mut covered = vec![false; chars.len()];
        for (i, p) in passages.iter().enumerate() {
            let (start, end) = (p.start as usize, p.end as usize);
            let body = p.text(&text);
            assert_eq!(p.index as usize, i, "seed {seed}");
            assert!(start < end, "seed {seed}: {p:?}");
            assert!(
                text_units(body) <= budget,
                "seed {seed}: {body:?} over {budget}"
            );
            if passages.len() > 1 {
                assert!(!chars[start].is_whitespace(), "seed {seed}: {body:?}");
                assert!(!chars[end - 1].is_whitespace(), "seed {seed}: {body:?}");
            }
            covered[start..end].iter_mut().for_each(|c| *c = true);
            if let Some(next) = passages.get(i + 1) {
                assert!(next.start > p.start && next.end > p.end, "seed {seed}");
                let next_start = next.start as usize;
                assert!(
                    chars[next_start - 1].is_whitespace() || next.start == p.end,
                    "seed {seed}: {next:?} starts inside a word the passage before did not end in"
                );
                let repeated = next.start.min(p.end)..p.end;
                let repeated: String = chars[repeated.start as usize..repeated.end as usize]
                    .iter()
                    .collect();
                assert!(
                    text_units(&repeated) <= rules.overlap,
                    "seed {seed}: {repeated:?} repeats more than {}",
                    rules.overlap
                );
            }
        }
        for (at, c) in chars.iter().enumerate() {
            assert!(
                c.is_whitespace() || covered[at],
                "seed {seed}: character {at} ({c:?}) is in no passage of {passages:?}"
            );
        }
        if text_units(&text) > budget {
            assert!(passages.len() > 1, "seed {seed}");
        }
    }
}
