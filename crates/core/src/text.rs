//! Text in the model's alphabet: lowercase a–z, apostrophes, single spaces.
//!
//! References for scoring, language-model training text and hotwords all
//! pass through [`normalize`], the Rust twin of training's
//! `hark_train/text.py`, so that what is compared, counted and boosted is
//! spelled the way the model spells.

use num2words::Num2Words;

/// Lowercases, spells out numbers ("1998" → "nineteen ninety-eight",
/// "42" → "forty two"), and turns everything outside a–z and the apostrophe
/// into word breaks; apostrophes at the edges of words are dropped.
pub fn normalize(text: &str) -> String {
    let mut spelled = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut number = String::from(c);
            while let Some(&next) = chars.peek() {
                if next.is_ascii_digit() {
                    number.push(next);
                    chars.next();
                } else if next == ',' {
                    // Thousands separators: "1,000" is one number.
                    let mut ahead = chars.clone();
                    ahead.next();
                    let group: String = ahead.take(3).collect();
                    if group.len() == 3 && group.chars().all(|d| d.is_ascii_digit()) {
                        chars.next();
                    } else {
                        break;
                    }
                } else {
                    break;
                }
            }
            spelled.push(' ');
            spelled.push_str(&spell_number(&number));
            spelled.push(' ');
        } else {
            match c {
                '’' | '‘' => spelled.push('\''),
                '&' => spelled.push_str(" and "),
                _ => spelled.extend(c.to_lowercase()),
            }
        }
    }
    spelled
        .split(|c: char| !(c.is_ascii_lowercase() || c == '\''))
        .map(|word| word.trim_matches('\''))
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A run of digits in words: years 1100–2099 the way they are read, other
/// numbers as cardinals, and digit by digit when too long for a cardinal.
fn spell_number(digits: &str) -> String {
    let cardinal = |n: i64| Num2Words::new(n).to_words().unwrap_or_default();
    match digits.parse::<i64>() {
        Ok(n) if digits.len() == 4 && (1100..2100).contains(&n) && !digits.starts_with('0') => {
            Num2Words::new(n).year().to_words().unwrap_or_else(|_| cardinal(n))
        }
        Ok(n) if digits.len() <= 15 => cardinal(n),
        _ => digits.chars().map(|d| cardinal(i64::from(d.to_digit(10).unwrap_or(0)))).collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuation_and_case_become_word_breaks() {
        assert_eq!(normalize("Printing, in the ONLY sense -- isn't it?"), "printing in the only sense isn't it");
        assert_eq!(normalize("'quoted' words’ and ‘curly’ ones"), "quoted words and curly ones");
        assert_eq!(normalize("salt & pepper"), "salt and pepper");
    }

    #[test]
    fn numbers_are_spelled_out() {
        assert_eq!(normalize("42 apples"), "forty two apples");
        assert_eq!(normalize("in 1998,"), "in nineteen ninety eight");
        assert_eq!(normalize("1,000 ships"), "one thousand ships");
        assert_eq!(normalize("3, 4"), "three four");
    }
}
