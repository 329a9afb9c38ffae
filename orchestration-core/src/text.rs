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
    fn times_are_utc_with_milliseconds_and_z() {
        let at = DateTime::parse_from_rfc3339("2026-03-02T10:00:00+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(at), "2026-03-02T09:00:00.000Z");
    }
}
