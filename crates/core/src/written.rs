//! Inverse text normalization: the spoken words a CTC model writes
//! ("twenty five dollars") as people write them ("$25").
//!
//! Rule-based and conservative: a rule rewrites words only where their
//! written form is not in doubt. "one of them" stays words (numbers under
//! ten stay words unless a unit, a date or a time follows them), "may"
//! becomes "May" only inside a date, "pounds" may be money or weight and
//! keeps its word. Every [`WrittenToken`] knows which spoken words it
//! stands for, so word times carry over: "$25" spans "twenty five dollars".
//!
//! The rules, tried in this order at each word:
//! - digit strings: three or more single digits ("oh" inside) → "739",
//!   phone numbers grouped ("555-0123", "800-555-0199");
//! - dates: "the fifth of may" → "the 5th of May", "may fifth nineteen
//!   forty five" → "May 5th, 1945", "june nineteen forty five" → "June 1945";
//! - times: "five thirty p m" → "5:30 p.m.", "seven o'clock" → "7 o'clock";
//! - years: "nineteen forty five" → "1945", "twenty twenty" → "2020";
//! - money, percentages and measures: "$25", "$3.50", "€5", "12%",
//!   "5 km", "90°F", "3 miles";
//! - decimals and fractions: "3.14", "2.5 million", "3/4";
//! - ordinals: "twenty first" → "21st" (under tenth only in dates);
//! - cardinals: "twenty five" → "25", "two thousand and five" → "2005",
//!   "forty thousand" → "40,000", "three million" → "3 million";
//! - titles and abbreviations: "mister" → "Mr.", "versus" → "vs.".

use std::ops::Range;

/// A written token and the spoken words it stands for (indices into the
/// spoken words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenToken {
    pub text: String,
    pub spoken: Range<usize>,
}

/// The written form of spoken words, token by token.
pub fn written(spoken: &[&str]) -> Vec<WrittenToken> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < spoken.len() {
        let rest = &spoken[i..];
        let single = |rule: fn(&[&str]) -> Option<(String, usize)>| rule(rest).map(|token| vec![token]);
        let found = date(rest).or_else(|| counted_pair(rest)).or_else(|| {
            [time, digit_string, year_alone, quantity, decimal_alone, ordinal_alone, cardinal_alone, abbreviation]
                .into_iter()
                .find_map(single)
        });
        for (text, len) in found.unwrap_or_else(|| vec![(spoken[i].to_string(), 1)]) {
            tokens.push(WrittenToken { text, spoken: i..i + len });
            i += len;
        }
    }
    tokens
}

/// How the punctuation model ([`crate::punctuation`]) writes one spoken
/// word: its form ("London", "NASA") and the mark after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Punctuated {
    pub form: String,
    pub mark: Option<char>,
}

/// A phrase to write as a caller gave it (a hotword: "GitHub", "New York"),
/// word for word.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenForm {
    spoken: Vec<String>,
    written: Vec<String>,
}

impl GivenForm {
    /// None when the phrase's words are not one spoken word each ("3M" is
    /// spoken "three m"): those are left to the rules.
    pub fn new(phrase: &str) -> Option<Self> {
        let written: Vec<String> = phrase
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
            .filter(|w| !w.is_empty())
            .collect();
        let spoken: Vec<String> = written.iter().map(|w| crate::text::normalize(w)).collect();
        (!written.is_empty() && spoken.iter().all(|s| !s.is_empty() && !s.contains(' '))).then_some(Self { spoken, written })
    }
}

/// Marks that end a sentence.
const SENTENCE_MARKS: [char; 3] = ['.', '?', '!'];

/// The written form of a transcript's spoken words: numbers, dates, money
/// and titles by the rules of [`written`], never across a phrase break
/// (`breaks`: the indices of words that start a phrase, after a long pause:
/// digits said a second apart are not one number); phrases the caller gave
/// as given; every other word as the punctuation model writes it. With a
/// model, the marks follow the words it puts them after, a sentence starts
/// with a capital, and the text ends with a sentence mark (a transcript is
/// heard whole, up to a pause).
pub fn write(spoken: &[&str], breaks: &[usize], punctuated: Option<&[Punctuated]>, given: &[GivenForm]) -> Vec<WrittenToken> {
    let mut forms: Vec<Option<&str>> = vec![None; spoken.len()];
    for phrase in given {
        let n = phrase.spoken.len();
        for start in 0..(spoken.len() + 1).saturating_sub(n) {
            if spoken[start..start + n].iter().zip(&phrase.spoken).all(|(a, b)| a == b) {
                for (k, form) in phrase.written.iter().enumerate() {
                    forms[start + k] = Some(form);
                }
            }
        }
    }
    let bounds: Vec<usize> =
        std::iter::once(0).chain(breaks.iter().copied().filter(|&b| 0 < b && b < spoken.len())).chain([spoken.len()]).collect();
    let mut tokens: Vec<WrittenToken> = bounds
        .windows(2)
        .flat_map(|phrase| {
            written(&spoken[phrase[0]..phrase[1]])
                .into_iter()
                .map(move |t| WrittenToken { spoken: t.spoken.start + phrase[0]..t.spoken.end + phrase[0], text: t.text })
        })
        .collect();
    let last = tokens.len().saturating_sub(1);
    let mut sentence_start = true;
    for (n, token) in tokens.iter_mut().enumerate() {
        let first = token.spoken.start;
        let rewritten = token.spoken.len() > 1 || token.text != spoken[first];
        if !rewritten {
            if let Some(form) = forms[first] {
                token.text = form.to_string();
            } else if let Some(punctuated) = punctuated {
                token.text.clone_from(&punctuated[first].form);
            }
        }
        let Some(punctuated) = punctuated else { continue };
        if sentence_start && !token.text.chars().any(char::is_uppercase) {
            token.text = crate::punctuation::capitalized(&token.text);
        }
        let mut mark = punctuated[token.spoken.end - 1].mark;
        if n == last && !mark.is_some_and(|m| SENTENCE_MARKS.contains(&m)) {
            mark = Some('.');
        }
        if let Some(mark) = mark.filter(|&m| !token.text.ends_with(m)) {
            token.text.push(mark);
        }
        sentence_start = mark.is_some_and(|m| SENTENCE_MARKS.contains(&m));
    }
    tokens
}

/// The written form of a spoken text (words separated by spaces).
pub fn written_text(spoken: &str) -> String {
    let words: Vec<&str> = spoken.split_whitespace().collect();
    written(&words).into_iter().map(|t| t.text).collect::<Vec<_>>().join(" ")
}

const UNITS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
const TEENS: [&str; 10] = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"];
const TENS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
const UNIT_ORDINALS: [&str; 9] = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"];
const TEEN_ORDINALS: [&str; 10] =
    ["tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth"];
const TENS_ORDINALS: [&str; 8] = ["twentieth", "thirtieth", "fortieth", "fiftieth", "sixtieth", "seventieth", "eightieth", "ninetieth"];
const SCALES: [(&str, u64); 4] = [("thousand", 1_000), ("million", 1_000_000), ("billion", 1_000_000_000), ("trillion", 1_000_000_000_000)];
const MONTHS: [&str; 12] =
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];
/// Months that are also everyday words ("you may", "to march"): written as
/// a month only inside a date.
const AMBIGUOUS_MONTHS: [&str; 2] = ["may", "march"];

fn position(list: &[&str], word: &str) -> Option<u64> {
    list.iter().position(|w| *w == word).map(|p| p as u64)
}

fn unit(word: &str) -> Option<u64> {
    position(&UNITS, word)
}

fn teen(word: &str) -> Option<u64> {
    position(&TEENS, word).map(|v| v + 10)
}

fn tens(word: &str) -> Option<u64> {
    position(&TENS, word).map(|v| 20 + 10 * v)
}

/// A number under 100 said as one or two words: "seven", "fifteen",
/// "forty", "forty two".
fn under_hundred(words: &[&str]) -> Option<(u64, usize)> {
    let first = *words.first()?;
    if let Some(t) = tens(first) {
        return Some(match words.get(1).and_then(|w| unit(w)).filter(|&u| u > 0) {
            Some(u) => (t + u, 2),
            None => (t, 1),
        });
    }
    unit(first).or_else(|| teen(first)).map(|v| (v, 1))
}

/// A cardinal number: "twenty five", "one hundred and five", "nineteen
/// hundred", "two thousand and five", "three million two hundred
/// thousand". Returns its value, how many words it took, and whether it
/// ended on a scale word with nothing under it ("three million").
fn cardinal(words: &[&str]) -> Option<(u64, usize, bool)> {
    let (mut total, mut at, mut last_scale, mut bare_scale) = (0u64, 0, u64::MAX, false);
    while let Some((group, len)) = group(&words[at..]) {
        // "zero" is a number only on its own.
        if group == 0 && (at > 0 || words.get(len).is_some_and(|w| is_number_word(w))) {
            return None;
        }
        let after = at + len;
        match words.get(after).and_then(|w| SCALES.iter().find(|(s, _)| s == w)) {
            Some(&(_, scale)) if scale < last_scale && group > 0 => {
                total += group * scale;
                last_scale = scale;
                at = after + 1;
                bare_scale = true;
                // "and" joins what follows a scale: "two thousand and five".
                if words.get(at) == Some(&"and") && words.get(at + 1).is_some_and(|w| under_hundred(&[w]).is_some()) {
                    at += 1;
                }
            }
            _ => {
                total += group;
                at = after;
                bare_scale = false;
                break;
            }
        }
    }
    (at > 0).then_some((total, at, bare_scale))
}

/// A number under 1000: "five", "forty two", "one hundred and five",
/// "nineteen hundred", "twenty five hundred".
fn group(words: &[&str]) -> Option<(u64, usize)> {
    let (value, len) = under_hundred(words)?;
    if words.get(len) != Some(&"hundred") || value == 0 {
        return Some((value, len));
    }
    let (mut value, mut at) = (value * 100, len + 1);
    let rest_at = if words.get(at) == Some(&"and") { at + 1 } else { at };
    if let Some((rest, rest_len)) = under_hundred(&words[rest_at.min(words.len())..]).filter(|&(v, _)| v > 0) {
        value += rest;
        at = rest_at + rest_len;
    }
    Some((value, at))
}

fn is_number_word(word: &str) -> bool {
    unit(word).is_some() || teen(word).is_some() || tens(word).is_some() || word == "hundred" || SCALES.iter().any(|(s, _)| *s == word)
}

/// Digits with a comma between thousands from 10,000 up (1000–9999 stay
/// whole: they read as years as often as amounts).
fn digits(value: u64) -> String {
    let plain = value.to_string();
    if value < 10_000 {
        return plain;
    }
    let mut out = String::new();
    for (i, c) in plain.chars().enumerate() {
        if i > 0 && (plain.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A cardinal as written: digits, or "3 million" for a bare scale.
fn cardinal_written(words: &[&str]) -> Option<(String, usize)> {
    let (value, len, bare_scale) = cardinal(words)?;
    if bare_scale {
        let (scale_word, scale) = SCALES.iter().find(|(s, _)| *s == words[len - 1]).copied()?;
        if scale >= 1_000_000 && value % scale == 0 && value / scale < 1000 {
            return Some((format!("{} {scale_word}", value / scale), len));
        }
    }
    Some((digits(value), len))
}

/// A cardinal or a decimal ("three point one four"), as written, with the
/// words it took.
fn amount(words: &[&str]) -> Option<(String, usize)> {
    let (whole, len) = cardinal_written(words)?;
    if words.get(len) != Some(&"point") {
        return Some((whole, len));
    }
    let decimals: String = words[len + 1..].iter().map_while(|w| unit(w)).map(|d| char::from(b'0' + d as u8)).collect();
    if decimals.is_empty() || whole.contains(' ') {
        return Some((whole, len));
    }
    let at = len + 1 + decimals.len();
    // "two point five million"
    if let Some((scale_word, _)) = words.get(at).and_then(|w| SCALES.iter().find(|(s, _)| s == w)).filter(|(_, s)| *s >= 1_000_000) {
        return Some((format!("{whole}.{decimals} {scale_word}"), at + 1));
    }
    Some((format!("{whole}.{decimals}"), at))
}

/// Three or more single digits in a row ("oh" for zero after the first):
/// a code, an account or a phone number, written as digits, phone numbers
/// grouped as in North America.
fn digit_string(words: &[&str]) -> Option<(String, usize)> {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        match unit(w).or((i > 0 && *w == "oh").then_some(0)) {
            Some(d) => out.push(char::from(b'0' + d as u8)),
            None => break,
        }
    }
    let len = out.len();
    if len < 3 {
        return None;
    }
    let grouped = match len {
        7 => format!("{}-{}", &out[..3], &out[3..]),
        10 => format!("{}-{}-{}", &out[..3], &out[3..6], &out[6..]),
        11 if out.starts_with('1') => format!("1-{}-{}-{}", &out[1..4], &out[4..7], &out[7..]),
        _ => out,
    };
    Some((grouped, len))
}

/// An ordinal: "fifth", "twenty first", "one hundredth". Returns its value
/// and words.
fn ordinal(words: &[&str]) -> Option<(u64, usize)> {
    let first = *words.first()?;
    if let Some(t) = tens(first) {
        if let Some(u) = words.get(1).and_then(|w| position(&UNIT_ORDINALS, w)) {
            return Some((t + u + 1, 2));
        }
    }
    if let Some(v) = position(&UNIT_ORDINALS, first).map(|v| v + 1) {
        return Some((v, 1));
    }
    if let Some(v) = position(&TEEN_ORDINALS, first).map(|v| v + 10).or_else(|| position(&TENS_ORDINALS, first).map(|v| 20 + 10 * v)) {
        return Some((v, 1));
    }
    // "one hundred and first", "two thousand and tenth"
    if let Some((value, len, _)) = cardinal(words).filter(|&(v, _, _)| v >= 100 && v % 100 == 0) {
        let at = len + usize::from(words.get(len) == Some(&"and"));
        if let Some((rest, rest_len)) = ordinal(&words[at..]).filter(|&(v, _)| v < 100) {
            return Some((value + rest, at + rest_len));
        }
    }
    // "one hundredth", "two thousandth"
    let (value, len, _) = cardinal(words)?;
    let scale = match *words.get(len)? {
        "hundredth" => 100,
        "thousandth" => 1_000,
        "millionth" => 1_000_000,
        _ => return None,
    };
    Some((value * scale, len + 1))
}

fn ordinal_written(value: u64) -> String {
    let suffix = match (value % 10, value % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{}{suffix}", digits(value))
}

/// An ordinal of ten or more on its own ("the twenty first century" →
/// "the 21st century"); "first" to "ninth" stay words outside dates.
fn ordinal_alone(words: &[&str]) -> Option<(String, usize)> {
    let (value, len) = ordinal(words)?;
    (value >= 10).then(|| (ordinal_written(value), len))
}

/// A year said in pairs: "nineteen forty five", "eighteen oh five",
/// "nineteen hundred", "twenty twenty". Centuries from the 11th to the
/// 21st; "twenty" only before ten to ninety nine ("twenty one" is a count).
fn year(words: &[&str]) -> Option<(String, usize)> {
    let century = teen(words.first()?).filter(|&c| c >= 11).or_else(|| tens(words[0]).filter(|&t| t == 20))?;
    let second = *words.get(1)?;
    let decade = ["twenties", "thirties", "forties", "fifties", "sixties", "seventies", "eighties", "nineties"];
    let (rest, len) = if second == "hundred" {
        (0, 2)
    } else if let Some(d) = position(&decade, second) {
        // "the nineteen sixties"
        return Some((format!("{}s", century * 100 + 20 + 10 * d), 2));
    } else if second == "oh" {
        (unit(words.get(2)?).filter(|&u| u > 0)?, 3)
    } else {
        let (v, l) = under_hundred(&words[1..])?;
        (v >= 10).then_some((v, l + 1))?
    };
    // "nineteen hundred and five" is a year too, but also a count: left to the cardinal rule.
    Some((format!("{}", century * 100 + rest), len))
}

/// A year on its own, unless a unit or scale follows ("nineteen twenty
/// dollars" is an amount; "nineteen hundred people" a count).
fn year_alone(words: &[&str]) -> Option<(String, usize)> {
    let (text, len) = year(words)?;
    let next = words.get(len).copied().unwrap_or("");
    let counted =
        is_number_word(next) || next == "and" || unit_after(&words[len..]).is_some() || currency(next).is_some() || words[1] == "hundred";
    (!counted).then_some((text, len))
}

fn month(word: &str) -> Option<String> {
    MONTHS.contains(&word).then(|| capitalized(word))
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A day of the month: "fifth" → "5th", "twenty first" → "21st", or a
/// cardinal "five" → "5" (1–31).
fn day(words: &[&str]) -> Option<(String, usize)> {
    if let Some((v, len)) = ordinal(words).filter(|&(v, _)| (1..=31).contains(&v)) {
        return Some((ordinal_written(v), len));
    }
    under_hundred(words).filter(|&(v, _)| (1..=31).contains(&v)).map(|(v, len)| (v.to_string(), len))
}

/// Dates, as written tokens: "the fifth of may [nineteen forty five]",
/// "may fifth[ nineteen forty five]", "june [the] fifth", "june nineteen
/// forty five"; an unambiguous month name on its own is capitalized.
fn date(words: &[&str]) -> Option<Vec<(String, usize)>> {
    let with_year = |mut tokens: Vec<(String, usize)>, at: usize| {
        if let Some(year) = year(&words[at..]) {
            tokens.push(year);
        }
        tokens
    };
    // "the fifth of may"
    if words.first() == Some(&"the") {
        let (day, len) = ordinal(&words[1..]).filter(|&(v, _)| (1..=31).contains(&v))?;
        let at = 1 + len;
        let name = month(words.get(at + 1).filter(|_| words.get(at) == Some(&"of"))?)?;
        let tokens = vec![("the".to_string(), 1), (ordinal_written(day), len), ("of".to_string(), 1), (name, 1)];
        return Some(with_year(tokens, at + 2));
    }
    let name = month(words.first()?)?;
    let rest = &words[1..];
    let with_the = usize::from(rest.first() == Some(&"the") && ordinal(&rest[1..]).is_some());
    if let Some((day, len)) = day(&rest[with_the..]) {
        let at = 1 + with_the + len;
        let mut tokens = vec![(name.clone(), 1)];
        if with_the == 1 {
            tokens.push(("the".to_string(), 1));
        }
        match year(&words[at..]) {
            Some(year) => {
                tokens.extend([(format!("{day},"), len), year]);
                return Some(tokens);
            }
            // A cardinal day right after the month needs a year to be a
            // date ("may five of them" is not).
            None if day.ends_with(|c: char| c.is_alphabetic()) => {
                tokens.push((day, len));
                return Some(tokens);
            }
            None => {}
        }
    }
    if let Some(year) = year(rest) {
        return Some(vec![(name, 1), year]);
    }
    (!AMBIGUOUS_MONTHS.contains(&words[0])).then(|| vec![(name, 1)])
}

/// Times of day: "five thirty p m" → "5:30 p.m.", "ten a m" → "10 a.m.",
/// "seven oh five am" → "7:05 a.m.", "seven o'clock" → "7 o'clock".
fn time(words: &[&str]) -> Option<(String, usize)> {
    let (hour, len) = under_hundred(words).filter(|&(h, _)| (1..=12).contains(&h))?;
    if words.get(len) == Some(&"o'clock") {
        return Some((format!("{hour} o'clock"), len + 1));
    }
    let (minutes, at) = match words.get(len) {
        Some(&"oh") => (unit(words.get(len + 1)?).filter(|&u| u > 0).map(|u| format!(":0{u}")), len + 2),
        _ => match under_hundred(&words[len..]).filter(|&(m, _)| (10..60).contains(&m)) {
            Some((m, l)) => (Some(format!(":{m}")), len + l),
            None => (None, len),
        },
    };
    if words.get(len) == Some(&"oh") && minutes.is_none() {
        return None;
    }
    let (marker, marker_len) = match (words.get(at).copied(), words.get(at + 1).copied()) {
        (Some("a"), Some("m")) => ("a.m.", 2),
        (Some("p"), Some("m")) => ("p.m.", 2),
        (Some("am"), _) => ("a.m.", 1),
        (Some("pm"), _) => ("p.m.", 1),
        _ => return None,
    };
    Some((format!("{hour}{} {marker}", minutes.unwrap_or_default()), at + marker_len))
}

/// Units written after digits: (spoken words, written form, glued to the
/// number). Ordered longest first.
const UNIT_FORMS: [(&[&str], &str, bool); 33] = [
    (&["kilometers", "per", "hour"], "km/h", false),
    (&["kilometres", "per", "hour"], "km/h", false),
    (&["miles", "per", "hour"], "mph", false),
    (&["degrees", "celsius"], "°C", true),
    (&["degrees", "fahrenheit"], "°F", true),
    (&["per", "cent"], "%", true),
    (&["percent"], "%", true),
    (&["degrees"], "°", true),
    (&["degree"], "°", true),
    (&["kilometers"], "km", false),
    (&["kilometres"], "km", false),
    (&["kilometer"], "km", false),
    (&["kilometre"], "km", false),
    (&["meters"], "m", false),
    (&["metres"], "m", false),
    (&["centimeters"], "cm", false),
    (&["centimetres"], "cm", false),
    (&["millimeters"], "mm", false),
    (&["millimetres"], "mm", false),
    (&["kilograms"], "kg", false),
    (&["kilogram"], "kg", false),
    (&["grams"], "g", false),
    (&["milligrams"], "mg", false),
    (&["liters"], "L", false),
    (&["litres"], "L", false),
    (&["milliliters"], "mL", false),
    (&["millilitres"], "mL", false),
    (&["miles"], "miles", false),
    (&["feet"], "feet", false),
    (&["inches"], "inches", false),
    (&["pounds"], "pounds", false),
    (&["ounces"], "ounces", false),
    (&["gallons"], "gallons", false),
];

/// The unit at the start of `words`: its written form, whether it is glued
/// to the number, and its length in words.
fn unit_after(words: &[&str]) -> Option<(&'static str, bool, usize)> {
    UNIT_FORMS.iter().find(|(spoken, _, _)| words.starts_with(spoken)).map(|&(spoken, form, glued)| (form, glued, spoken.len()))
}

/// Currencies written before the amount: (singular, plural, symbol).
const CURRENCIES: [(&str, &str, &str); 2] = [("dollar", "dollars", "$"), ("euro", "euros", "€")];

fn currency(word: &str) -> Option<&'static str> {
    CURRENCIES.iter().find(|(one, many, _)| word == *one || word == *many).map(|(_, _, symbol)| *symbol)
}

/// Money, percentages and measures: an amount (or one said as a year is,
/// "nineteen ninety five dollars") and what follows it.
fn quantity(words: &[&str]) -> Option<(String, usize)> {
    [amount(words), year(words)].into_iter().flatten().find_map(|(number, len)| measured(words, number, len))
}

/// `number`, said in the first `len` words, with the currency or unit that
/// follows it.
fn measured(words: &[&str], number: String, len: usize) -> Option<(String, usize)> {
    let next = words.get(len).copied()?;
    if let Some(symbol) = currency(next) {
        let mut end = len + 1;
        let mut text = format!("{symbol}{number}");
        // "three dollars and fifty cents"
        if words.get(end) == Some(&"and") && !number.contains('.') {
            if let Some((cents, cents_len)) = under_hundred(&words[end + 1..]) {
                if matches!(words.get(end + 1 + cents_len), Some(&"cents") | Some(&"cent")) {
                    text = format!("{text}.{cents:02}");
                    end += 2 + cents_len;
                }
            }
        }
        return Some((text, end));
    }
    let (form, glued, unit_len) = unit_after(&words[len..])?;
    let separator = if glued { "" } else { " " };
    Some((format!("{number}{separator}{form}"), len + unit_len))
}

/// Fractions' denominators, singular and plural.
const DENOMINATORS: [(&str, &str, u64); 8] = [
    ("half", "halves", 2),
    ("third", "thirds", 3),
    ("quarter", "quarters", 4),
    ("fourth", "fourths", 4),
    ("fifth", "fifths", 5),
    ("sixth", "sixths", 6),
    ("eighth", "eighths", 8),
    ("tenth", "tenths", 10),
];

/// A decimal on its own: "three point one four" → "3.14".
fn decimal_alone(words: &[&str]) -> Option<(String, usize)> {
    amount(words).filter(|(text, _)| text.contains('.'))
}

/// A number under ten said right before one of ten or more: "five thirty"
/// may be a time, a count or two numbers, so both stay words.
fn counted_pair(words: &[&str]) -> Option<Vec<(String, usize)>> {
    unit(words.first()?).filter(|&u| u > 0)?;
    let (_, len) = under_hundred(&words[1..]).filter(|&(v, _)| v >= 10)?;
    let followed = words.get(1 + len).copied().unwrap_or("");
    let measured = currency(followed).is_some() || unit_after(&words[1 + len..]).is_some() || is_number_word(followed);
    (!measured && time(words).is_none()).then(|| words[..1 + len].iter().map(|w| (w.to_string(), 1)).collect())
}

/// A cardinal on its own: digits from ten up ("twenty five" → "25"), a
/// fraction ("three quarters" → "3/4"); under ten it stays a word.
fn cardinal_alone(words: &[&str]) -> Option<(String, usize)> {
    let (value, len, _) = cardinal(words)?;
    // "three quarters", "one half"; not "one fifth of may" (a date) nor "one second".
    if (1..10).contains(&value) && len == 1 {
        let next = words.get(1).copied().unwrap_or("");
        let denominator = DENOMINATORS.iter().find(|(one, many, _)| (value == 1 && next == *one) || (value > 1 && next == *many));
        return denominator.filter(|_| next != "second").map(|(_, _, d)| (format!("{value}/{d}"), 2));
    }
    if value < 10 {
        return None;
    }
    // A decimal "twelve point five" is an amount too.
    amount(words)
}

/// Titles and abbreviations written the short way.
const ABBREVIATIONS: [(&[&str], &str); 5] =
    [(&["mister"], "Mr."), (&["missus"], "Mrs."), (&["versus"], "vs."), (&["et", "cetera"], "etc."), (&["etcetera"], "etc.")];

fn abbreviation(words: &[&str]) -> Option<(String, usize)> {
    ABBREVIATIONS.iter().find(|(spoken, _)| words.starts_with(spoken)).map(|(spoken, form)| (form.to_string(), spoken.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spoken → written. Each row is a case of its own: a failure lists
    /// every row that does not hold.
    const CASES: &[(&str, &str)] = &[
        // The example every ITN starts from.
        ("on the fifth of may nineteen forty five mister smith paid twenty five dollars", "on the 5th of May 1945 Mr. smith paid $25"),
        // Cardinals.
        ("ten", "10"),
        ("eleven", "11"),
        ("nineteen", "19"),
        ("twenty", "20"),
        ("twenty one", "21"),
        ("forty two", "42"),
        ("ninety nine", "99"),
        ("one hundred", "100"),
        ("a hundred", "a hundred"),
        ("one hundred and five", "105"),
        ("one hundred five", "105"),
        ("two hundred and thirty four", "234"),
        ("nine hundred ninety nine", "999"),
        ("one thousand", "1000"),
        ("two thousand and five", "2005"),
        ("two thousand five hundred", "2500"),
        ("twenty five hundred", "2500"),
        ("nineteen hundred", "1900"),
        ("four thousand three hundred and twenty one", "4321"),
        ("ten thousand", "10,000"),
        ("forty thousand", "40,000"),
        ("one hundred thousand", "100,000"),
        ("three hundred and fifty thousand", "350,000"),
        ("one million two hundred thousand", "1,200,000"),
        ("three million", "3 million"),
        ("two billion", "2 billion"),
        ("seven hundred million", "700 million"),
        ("one million and one", "1,000,001"),
        ("there were twenty people", "there were 20 people"),
        ("about fifty of them", "about 50 of them"),
        ("sixteen candles", "16 candles"),
        ("page one hundred and twelve", "page 112"),
        ("in thirty seconds", "in 30 seconds"),
        ("twelve angry men", "12 angry men"),
        ("a thousand years", "a thousand years"),
        ("ninety", "90"),
        ("seventy seven", "77"),
        ("in thirteen fourteen", "in 1314"),
        // Numbers under ten stay words.
        ("one of them", "one of them"),
        ("one", "one"),
        ("two", "two"),
        ("nine", "nine"),
        ("zero", "zero"),
        ("the two of us", "the two of us"),
        ("three little pigs", "three little pigs"),
        ("one day", "one day"),
        ("no one knows", "no one knows"),
        ("seven days a week", "seven days a week"),
        ("someone else", "someone else"),
        ("one or two", "one or two"),
        ("five six", "five six"),
        // Digit strings and phone numbers.
        ("seven three nine", "739"),
        ("one two three four", "1234"),
        ("four oh four", "404"),
        ("zero zero seven", "007"),
        ("five five five oh one two three", "555-0123"),
        ("eight oh oh five five five oh one nine nine", "800-555-0199"),
        ("one eight oh oh five five five oh one nine nine", "1-800-555-0199"),
        ("call five five five one two three four now", "call 555-1234 now"),
        ("my pin is four two four two", "my pin is 4242"),
        ("room two oh one", "room 201"),
        ("two three", "two three"),
        ("oh two three", "oh two three"),
        // Years.
        ("nineteen forty five", "1945"),
        ("in nineteen eighty four", "in 1984"),
        ("eighteen twelve", "1812"),
        ("eighteen oh five", "1805"),
        ("nineteen oh one", "1901"),
        ("seventeen seventy six", "1776"),
        ("twenty twenty", "2020"),
        ("twenty twenty four", "2024"),
        ("twenty ten", "2010"),
        ("eleven sixty six", "1166"),
        ("since nineteen ninety nine", "since 1999"),
        ("the nineteen sixties", "the 1960s"),
        ("the twenty twenties", "the 2020s"),
        ("nineteen hundred people", "1900 people"),
        ("twenty one", "21"),
        ("twenty oh five", "2005"),
        // Ordinals.
        ("the tenth", "the 10th"),
        ("the twenty first century", "the 21st century"),
        ("her thirtieth birthday", "her 30th birthday"),
        ("the eleventh hour", "the 11th hour"),
        ("the twelfth night", "the 12th night"),
        ("the thirteenth floor", "the 13th floor"),
        ("twenty second", "22nd"),
        ("thirty third", "33rd"),
        ("forty fourth", "44th"),
        ("one hundredth", "100th"),
        ("the one hundred and first", "the 101st"),
        ("fiftieth", "50th"),
        ("the first time", "the first time"),
        ("my second try", "my second try"),
        ("third place", "third place"),
        ("the fifth element", "the fifth element"),
        ("first of all", "first of all"),
        ("ninth", "ninth"),
        // Dates.
        ("the fifth of may", "the 5th of May"),
        ("the first of january", "the 1st of January"),
        ("the thirty first of december", "the 31st of December"),
        ("the fourth of july seventeen seventy six", "the 4th of July 1776"),
        ("may fifth", "May 5th"),
        ("march third", "March 3rd"),
        ("june the sixth", "June the 6th"),
        ("october twenty first", "October 21st"),
        ("may fifth nineteen forty five", "May 5th, 1945"),
        ("january first twenty twenty", "January 1st, 2020"),
        ("april ten nineteen ninety", "April 10, 1990"),
        ("june nineteen forty four", "June 1944"),
        ("in august nineteen fourteen", "in August 1914"),
        ("december", "December"),
        ("in january", "in January"),
        ("every february", "every February"),
        ("you may go", "you may go"),
        ("it may be", "it may be"),
        ("they march on", "they march on"),
        ("may i", "may i"),
        ("may five of them come", "may five of them come"),
        ("the fifth of them", "the fifth of them"),
        ("the second of may", "the 2nd of May"),
        ("on the ninth of march", "on the 9th of March"),
        // Times.
        ("five thirty p m", "5:30 p.m."),
        ("ten a m", "10 a.m."),
        ("seven oh five am", "7:05 a.m."),
        ("twelve fifteen pm", "12:15 p.m."),
        ("eleven forty five p m", "11:45 p.m."),
        ("one a m", "1 a.m."),
        ("seven o'clock", "7 o'clock"),
        ("at six o'clock sharp", "at 6 o'clock sharp"),
        ("at nine thirty a m tomorrow", "at 9:30 a.m. tomorrow"),
        ("i am", "i am"),
        ("six am", "6 a.m."),
        ("thirteen p m", "13 p m"),
        ("five thirty", "five thirty"),
        ("at five thirty", "at five thirty"),
        ("six fifteen dollars", "six $15"),
        // Money.
        ("twenty five dollars", "$25"),
        ("one dollar", "$1"),
        ("five dollars", "$5"),
        ("a dollar", "a dollar"),
        ("three dollars and fifty cents", "$3.50"),
        ("ten dollars and five cents", "$10.05"),
        ("one hundred dollars", "$100"),
        ("two thousand dollars", "$2000"),
        ("fifty thousand dollars", "$50,000"),
        ("three million dollars", "$3 million"),
        ("two point five million dollars", "$2.5 million"),
        ("nine ninety nine", "nine ninety nine"),
        ("five euros", "€5"),
        ("twenty euros", "€20"),
        ("ten pounds", "10 pounds"),
        ("fifty cents", "50 cents"),
        ("the dollar fell", "the dollar fell"),
        ("nineteen twenty dollars", "$1920"),
        ("nineteen ninety five dollars", "$1995"),
        // Percentages.
        ("twelve percent", "12%"),
        ("five percent", "5%"),
        ("one hundred percent", "100%"),
        ("three point five percent", "3.5%"),
        ("fifty per cent", "50%"),
        ("zero percent", "0%"),
        // Measures.
        ("five kilometers", "5 km"),
        ("ten kilometres", "10 km"),
        ("one kilometer", "1 km"),
        ("a hundred meters", "a hundred meters"),
        ("two hundred meters", "200 m"),
        ("three centimeters", "3 cm"),
        ("seven millimeters", "7 mm"),
        ("sixty kilograms", "60 kg"),
        ("five hundred grams", "500 g"),
        ("two liters", "2 L"),
        ("two hundred and fifty milliliters", "250 mL"),
        ("fifty kilometers per hour", "50 km/h"),
        ("sixty miles per hour", "60 mph"),
        ("three miles", "3 miles"),
        ("six feet", "6 feet"),
        ("ninety degrees", "90°"),
        ("twenty degrees celsius", "20°C"),
        ("seventy degrees fahrenheit", "70°F"),
        ("one degree", "1°"),
        ("twelve inches", "12 inches"),
        ("four gallons", "4 gallons"),
        ("ten milligrams", "10 mg"),
        ("miles away", "miles away"),
        // Decimals and fractions.
        ("three point one four", "3.14"),
        ("zero point five", "0.5"),
        ("twelve point five", "12.5"),
        ("one point two million", "1.2 million"),
        ("the point is", "the point is"),
        ("two point", "two point"),
        ("one half", "1/2"),
        ("three quarters", "3/4"),
        ("two thirds", "2/3"),
        ("one third of the vote", "1/3 of the vote"),
        ("five eighths", "5/8"),
        ("a half", "a half"),
        ("one second", "one second"),
        ("half", "half"),
        // Titles and abbreviations.
        ("mister smith", "Mr. smith"),
        ("missus jones", "Mrs. jones"),
        ("mister and missus brown", "Mr. and Mrs. brown"),
        ("smith versus jones", "smith vs. jones"),
        ("apples pears et cetera", "apples pears etc."),
        ("the mister", "the Mr."),
        ("doctor watson", "doctor watson"),
        // Sentences.
        ("he was born in nineteen twelve", "he was born in 1912"),
        ("i paid forty dollars for two tickets", "i paid $40 for two tickets"),
        ("the train leaves at eight fifteen a m", "the train leaves at 8:15 a.m."),
        ("we walked ten kilometers in three hours", "we walked 10 km in three hours"),
        ("it costs nine dollars and ninety nine cents", "it costs $9.99"),
        ("the meeting is on the third of june", "the meeting is on the 3rd of June"),
        ("there are twenty four hours in a day", "there are 24 hours in a day"),
        ("about ninety percent of people", "about 90% of people"),
        ("chapter twelve", "chapter 12"),
        ("in the year two thousand", "in the year 2000"),
        ("one two three go", "123 go"),
        ("she is thirty five years old", "she is 35 years old"),
        ("the temperature was minus ten degrees", "the temperature was minus 10°"),
        ("flight four oh four", "flight 404"),
        ("a million reasons", "a million reasons"),
        ("one in a million", "one in a million"),
        ("hundreds of people", "hundreds of people"),
        ("thousands", "thousands"),
        ("twenty and thirty", "20 and 30"),
        ("one and only", "one and only"),
        ("", ""),
    ];

    #[test]
    fn spoken_words_are_written_as_people_write_them() {
        assert!(CASES.len() >= 200, "{} cases", CASES.len());
        let failures: Vec<String> = CASES
            .iter()
            .filter_map(|&(spoken, want)| {
                let got = written_text(spoken);
                (got != want).then(|| format!("{spoken:?}: got {got:?}, want {want:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), CASES.len(), failures.join("\n"));
    }

    #[test]
    fn each_written_token_knows_its_spoken_words() {
        let spoken: Vec<&str> = "on the fifth of may nineteen forty five mister smith paid twenty five dollars".split(' ').collect();
        let tokens = written(&spoken);
        let spans: Vec<(&str, Range<usize>)> = tokens.iter().map(|t| (t.text.as_str(), t.spoken.clone())).collect();
        assert_eq!(
            spans,
            [
                ("on", 0..1),
                ("the", 1..2),
                ("5th", 2..3),
                ("of", 3..4),
                ("May", 4..5),
                ("1945", 5..8),
                ("Mr.", 8..9),
                ("smith", 9..10),
                ("paid", 10..11),
                ("$25", 11..14)
            ]
        );
        // Every spoken word belongs to exactly one token, in order.
        assert!(tokens.windows(2).all(|w| w[0].spoken.end == w[1].spoken.start));
        assert_eq!(tokens.last().unwrap().spoken.end, spoken.len());
    }

    fn plain(words: &[&str], marks: &[(usize, char)]) -> Vec<Punctuated> {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| Punctuated { form: w.to_string(), mark: marks.iter().find(|m| m.0 == i).map(|m| m.1) })
            .collect()
    }

    fn text(tokens: &[WrittenToken]) -> String {
        tokens.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn writing_puts_marks_after_tokens_and_capitals_at_sentence_starts() {
        let spoken: Vec<&str> = "on the fifth of may nineteen forty five mister smith paid twenty five dollars did he".split(' ').collect();
        let mut punctuated = plain(&spoken, &[(7, ','), (13, '.')]);
        punctuated[9].form = "Smith".into();
        let tokens = write(&spoken, &[], Some(&punctuated), &[]);
        // The comma after "five" follows "1945"; "did" starts a sentence; the end gets a period.
        assert_eq!(text(&tokens), "On the 5th of May 1945, Mr. Smith paid $25. Did he.");
        assert_eq!(tokens[5].spoken, 5..8);
        // A title's own period is not doubled.
        let tokens = write(&["mister", "smith"], &[], Some(&plain(&["mister", "smith"], &[(0, '.')])), &[]);
        assert_eq!(text(&tokens), "Mr. Smith.");
        // A question keeps its mark; without a model, only the rules write.
        let spoken = ["is", "it", "twenty", "five"];
        assert_eq!(text(&write(&spoken, &[], Some(&plain(&spoken, &[(3, '?')])), &[])), "Is it 25?");
        assert_eq!(text(&write(&spoken, &[], None, &[])), "is it 25");
        // Digits a long pause apart are not one number.
        let digits = ["seven", "three", "nine", "four", "two", "one"];
        assert_eq!(text(&write(&digits, &[], None, &[])), "739421");
        assert_eq!(text(&write(&digits, &[3], None, &[])), "739 421");
        assert_eq!(write(&digits, &[3], None, &[])[1].spoken, 3..6);
        assert_eq!(text(&write(&digits, &[1, 2, 3, 4, 5], None, &[])), "seven three nine four two one");
    }

    #[test]
    fn given_phrases_keep_the_case_they_were_given() {
        let spoken = ["push", "it", "to", "github", "in", "new", "york", "new"];
        let given: Vec<GivenForm> = ["GitHub", "New York", "3M"].iter().filter_map(|p| GivenForm::new(p)).collect();
        assert_eq!(given.len(), 2, "3M is not one spoken word");
        assert_eq!(text(&write(&spoken, &[], None, &given)), "push it to GitHub in New York new");
        // Even where a sentence starts, and over the model's own form.
        let mut punctuated = plain(&spoken, &[(3, '.')]);
        punctuated[5].form = "new".into();
        assert_eq!(text(&write(&spoken, &[], Some(&punctuated), &given)), "Push it to GitHub. In New York new.");
        let spoken = ["iphone", "sales"];
        let given = [GivenForm::new("iPhone").unwrap()];
        assert_eq!(text(&write(&spoken, &[], Some(&plain(&spoken, &[])), &given)), "iPhone sales.");
    }
}
