//! How the core writes times and counts into text meant for people and models: one format for
//! every time (RFC 3339, UTC, milliseconds, `Z`) and nouns that agree with their numbers.

use chrono::{DateTime, SecondsFormat, Utc};

/// `at` as RFC 3339 in UTC with milliseconds and `Z`, e.g. `2026-03-02T09:00:00.000Z`: the
/// format of every time in results and messages, so a caller can compare and parse them all
/// the same way.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `n` and `noun`, the noun in the plural unless `n` is one: `1 task`, `2 tasks`,
/// `3 inboxes`. Nouns ending in `s`, `x`, `ch` or `sh` take `es`; a consonant and `y` take
/// `ies`.
pub fn counted(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        return format!("1 {noun}");
    }
    format!("{n} {}", plural(noun))
}

/// `x` points, with as few decimals as it needs: `1 point`, `6 points`, `2.5 points`.
pub fn points(x: f64) -> String {
    let rounded = (x * 100.0).round() / 100.0;
    if rounded.fract() == 0.0 && rounded >= 0.0 {
        return counted(rounded as u64, "point");
    }
    let number = format!("{rounded:.2}");
    format!("{} points", number.trim_end_matches('0'))
}

/// `n` and `noun` with the verb "to be" agreeing: `1 task is`, `2 tasks are`.
pub(crate) fn counted_are(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    let verb = if n == 1 { "is" } else { "are" };
    format!("{} {verb}", counted(n, noun))
}

/// The most bytes `text` takes in a tool result: its UTF-8 bytes, with each control character
/// counted as the six bytes of its escape (`\u0000`). A bound for budgets that must hold
/// whatever the text.
pub fn text_weight(text: &str) -> usize {
    text.chars()
        .map(|c| {
            if c.is_control() && c.is_ascii() {
                6
            } else {
                c.len_utf8()
            }
        })
        .sum()
}

fn plural(noun: &str) -> String {
    let consonant_y = noun.ends_with('y')
        && !noun[..noun.len() - 1].ends_with(|c: char| "aeiou".contains(c))
        && noun.len() > 1;
    if consonant_y {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if ["s", "x", "ch", "sh"].iter().any(|end| noun.ends_with(end)) {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

/// The names among `known` closest to `name`, best first, at most three: those within a small
/// edit distance (a typo), or sharing a prefix, compared without case. Used to suggest what a
/// caller probably meant when it names something that does not exist.
pub(crate) fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let wanted = name.to_lowercase();
    let allowed = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let distance = edit_distance(&wanted, &lower);
            let prefix =
                wanted.len() >= 3 && (lower.starts_with(&wanted) || wanted.starts_with(&lower));
            (distance <= allowed || prefix).then_some((distance, candidate))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, candidate)| candidate.to_owned())
        .collect()
}

/// The optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// two neighbours, each costing one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Names are short (64 characters at most), so a full table is cheap.
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[i - 1][j] + 1)
                .min(table[i][j - 1] + 1)
                .min(table[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

/// `names` as a list for a message: `` `a`, `b` or `c` ``.
pub(crate) fn either(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_nouns() {
        let cases = [
            (0, "task", "0 tasks"),
            (1, "task", "1 task"),
            (2, "task", "2 tasks"),
            (1, "inbox", "1 inbox"),
            (3, "inbox", "3 inboxes"),
            (2, "day", "2 days"),
            (2, "dependency", "2 dependencies"),
            (2, "match", "2 matches"),
            (1, "point", "1 point"),
        ];
        for (n, noun, expected) in cases {
            assert_eq!(counted(n as u64, noun), expected);
        }
    }

    #[test]
    fn the_closest_names_are_typos_and_prefixes_of_the_one_asked_for() {
        let known = ["ana", "annie", "bob", "backend-1", "backend-2", "frontend"];
        let cases: [(&str, &[&str]); 6] = [
            ("anna", &["ana", "annie"]),
            ("ANA", &["ana"]),
            ("bakcend-1", &["backend-1", "backend-2"]),
            ("back", &["backend-1", "backend-2"]),
            ("frontedn", &["frontend"]),
            ("zed", &[]),
        ];
        for (name, expected) in cases {
            assert_eq!(closest(name, known), expected, "{name}");
        }
        assert_eq!(
            either(&["a".into(), "b".into(), "c".into()]),
            "`a`, `b` or `c`"
        );
    }

    #[test]
    fn points_agree_with_their_noun_and_drop_needless_decimals() {
        let cases = [
            (1.0, "1 point"),
            (6.0, "6 points"),
            (0.5, "0.5 points"),
            (12.25, "12.25 points"),
            (0.0, "0 points"),
        ];
        for (x, expected) in cases {
            assert_eq!(points(x), expected);
        }
    }

    #[test]
    fn times_are_utc_with_milliseconds_and_z() {
        let at = DateTime::parse_from_rfc3339("2026-03-02T10:00:00+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(at), "2026-03-02T09:00:00.000Z");
    }
}
