//! The local time zone as C's `localtime` finds it, for the creation times virsh prints in
//! local time: `TZ` naming a zone file (`Europe/Paris`, `:/path`), or a POSIX rule
//! (`CET-1CEST,M3.5.0,M10.5.0/3`), or, without `TZ`, `/etc/localtime`. Zone files are read as
//! TZif (RFC 8536), whose footer rule covers the times after the last listed transition.
//! Knows nothing of snapshots or formatting; anything unreadable counts as UTC.

use std::path::{Path, PathBuf};

/// Where zone files live unless `TZDIR` says otherwise.
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// Seconds east of UTC of local time at `unix_seconds`, as `localtime` would apply it.
pub(crate) fn utc_offset(unix_seconds: i64) -> i64 {
    let zone = match std::env::var("TZ") {
        Err(_) => Zone::from_file(Path::new("/etc/localtime")),
        Ok(tz) if tz.is_empty() => None,
        Ok(tz) => match tz.strip_prefix(':') {
            Some(name) => Zone::from_file(&zone_path(name)),
            None => Zone::from_file(&zone_path(&tz)).or_else(|| Rule::parse(&tz).map(Zone::Rule)),
        },
    };
    zone.map_or(0, |zone| zone.offset(unix_seconds))
}

fn zone_path(name: &str) -> PathBuf {
    if name.starts_with('/') {
        return PathBuf::from(name);
    }
    let dir = std::env::var_os("TZDIR").filter(|dir| !dir.is_empty());
    dir.map_or_else(|| PathBuf::from(ZONEINFO), PathBuf::from).join(name)
}

/// A time zone: a POSIX rule, or a zone file's transitions with its footer rule.
#[derive(Debug, Clone, PartialEq)]
enum Zone {
    Rule(Rule),
    Table {
        /// (transition instant, offset east from then on), ascending.
        transitions: Vec<(i64, i64)>,
        /// The offset before the first transition.
        initial: i64,
        /// The rule after the last transition, if the file has one.
        footer: Option<Rule>,
    },
}

impl Zone {
    fn from_file(path: &Path) -> Option<Zone> {
        parse_tzif(&std::fs::read(path).ok()?)
    }

    fn offset(&self, t: i64) -> i64 {
        match self {
            Zone::Rule(rule) => rule.offset(t),
            Zone::Table { transitions, initial, footer } => {
                // As tzcode: the footer rule takes over strictly after the last transition.
                if let (Some((last, _)), Some(rule)) = (transitions.last(), footer)
                    && t > *last
                {
                    return rule.offset(t);
                }
                match transitions.partition_point(|(at, _)| *at <= t) {
                    0 => *initial,
                    after => transitions[after - 1].1,
                }
            }
        }
    }
}

/// Reads a TZif file: version 1 data (32-bit times) or, when present, the version 2+ data
/// (64-bit times) and its footer rule.
fn parse_tzif(data: &[u8]) -> Option<Zone> {
    fn counts(header: &[u8]) -> Option<[usize; 6]> {
        if header.get(..4)? != b"TZif" {
            return None;
        }
        let mut counts = [0; 6];
        for (index, count) in counts.iter_mut().enumerate() {
            let start = 20 + index * 4;
            *count = u32::from_be_bytes(header.get(start..start + 4)?.try_into().ok()?) as usize;
        }
        Some(counts)
    }
    let version = *data.get(4)?;
    let [isut, isstd, leap, time, types, chars] = counts(data)?;
    let v1_len = time * 5 + types * 6 + chars + leap * 8 + isstd + isut;
    let (body, time_size, rest) = if version >= b'2' {
        let second = data.get(44 + v1_len..)?;
        let [isut, isstd, leap, time2, types2, chars2] = counts(second)?;
        let len = time2 * 9 + types2 * 6 + chars2 + leap * 12 + isstd + isut;
        (second.get(44..44 + len)?, 8, second.get(44 + len..))
    } else {
        (data.get(44..44 + v1_len)?, 4, None)
    };
    let (time, types) = if version >= b'2' {
        let again = counts(data.get(44 + v1_len..)?)?;
        (again[3], again[4])
    } else {
        (time, types)
    };
    let instant = |index: usize| -> Option<i64> {
        let bytes = body.get(index * time_size..(index + 1) * time_size)?;
        Some(if time_size == 8 {
            i64::from_be_bytes(bytes.try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(bytes.try_into().ok()?))
        })
    };
    let type_offset = |type_index: usize| -> Option<i64> {
        let start = time * time_size + time + type_index * 6;
        Some(i64::from(i32::from_be_bytes(body.get(start..start + 4)?.try_into().ok()?)))
    };
    if types == 0 {
        return None;
    }
    let mut transitions = Vec::with_capacity(time);
    for index in 0..time {
        let type_index = usize::from(*body.get(time * time_size + index)?);
        transitions.push((instant(index)?, type_offset(type_index)?));
    }
    let footer = rest
        .and_then(|rest| rest.strip_prefix(b"\n"))
        .and_then(|rest| rest.split(|byte| *byte == b'\n').next())
        .and_then(|line| std::str::from_utf8(line).ok())
        .filter(|line| !line.is_empty())
        .and_then(Rule::parse);
    Some(Zone::Table { transitions, initial: type_offset(0)?, footer })
}

/// A POSIX `TZ` rule: standard time, and optionally daylight time with its start and end.
#[derive(Debug, Clone, PartialEq)]
struct Rule {
    /// Standard time, seconds east of UTC.
    std: i64,
    /// Daylight time: its offset east and when it starts and ends (local times).
    dst: Option<(i64, Change, Change)>,
}

/// A daylight-time change: a day of the year and a time of that day (may exceed 24 h).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Change {
    day: Day,
    seconds: i64,
}

/// A POSIX day specification.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Day {
    /// `Jn`: day 1..=365, February 29 never counted.
    Julian(i64),
    /// `n`: day 0..=365, February 29 counted.
    Zero(i64),
    /// `Mm.w.d`: weekday d (0 = Sunday) of week w (5 = last) of month m.
    Month(i64, i64, i64),
}

impl Rule {
    fn parse(text: &str) -> Option<Rule> {
        let mut rest = text;
        skip_name(&mut rest)?;
        let std = -parse_offset(&mut rest)?;
        if rest.is_empty() {
            return Some(Rule { std, dst: None });
        }
        skip_name(&mut rest)?;
        let dst_offset =
            if rest.is_empty() || rest.starts_with(',') { std + 3600 } else { -parse_offset(&mut rest)? };
        let (start, end) = if rest.is_empty() {
            // glibc's default when a rule names daylight time without saying when.
            (
                Change { day: Day::Month(3, 2, 0), seconds: 7200 },
                Change { day: Day::Month(11, 1, 0), seconds: 7200 },
            )
        } else {
            rest = rest.strip_prefix(',')?;
            let start = parse_change(&mut rest)?;
            rest = rest.strip_prefix(',')?;
            let end = parse_change(&mut rest)?;
            (start, end)
        };
        rest.is_empty().then_some(Rule { std, dst: Some((dst_offset, start, end)) })
    }

    fn offset(&self, t: i64) -> i64 {
        let Some((dst, start, end)) = self.dst else {
            return self.std;
        };
        let (year, _, _) = super::moment::civil_from_days((t + self.std).div_euclid(86_400));
        let starts = start.local_seconds(year) - self.std;
        let ends = end.local_seconds(year) - dst;
        let in_dst = if starts < ends { starts <= t && t < ends } else { !(ends <= t && t < starts) };
        if in_dst { dst } else { self.std }
    }
}

impl Change {
    /// Seconds since the epoch, in local wall-clock terms, of this change in `year`.
    fn local_seconds(self, year: i64) -> i64 {
        let jan1 = days_from_civil(year, 1, 1);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let day = match self.day {
            Day::Julian(n) => jan1 + n - 1 + i64::from(leap && n >= 60),
            Day::Zero(n) => jan1 + n,
            Day::Month(month, week, weekday) => {
                let first = days_from_civil(year, month, 1);
                // 1970-01-01 was a Thursday (4).
                let first_weekday = (first + 4).rem_euclid(7);
                let mut day = first + (weekday - first_weekday).rem_euclid(7) + (week - 1) * 7;
                let next_month = if month == 12 {
                    days_from_civil(year + 1, 1, 1)
                } else {
                    days_from_civil(year, month + 1, 1)
                };
                while day >= next_month {
                    day -= 7;
                }
                day
            }
        };
        day * 86_400 + self.seconds
    }
}

/// Days since 1970-01-01 of a date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Skips a zone abbreviation: `<...>` or three or more letters.
fn skip_name(rest: &mut &str) -> Option<()> {
    if let Some(quoted) = rest.strip_prefix('<') {
        *rest = &quoted[quoted.find('>')? + 1..];
        return Some(());
    }
    let len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
    if len < 3 {
        return None;
    }
    *rest = &rest[len..];
    Some(())
}

/// `[+-]hh[:mm[:ss]]` as seconds, the sign as written (POSIX offsets count west).
fn parse_offset(rest: &mut &str) -> Option<i64> {
    let negative = rest.starts_with('-');
    if rest.starts_with(['+', '-']) {
        *rest = &rest[1..];
    }
    let mut seconds = 0;
    for (index, unit) in [3600, 60, 1].into_iter().enumerate() {
        if index > 0 {
            match rest.strip_prefix(':') {
                Some(after) => *rest = after,
                None => break,
            }
        }
        let len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if len == 0 || len > 3 {
            return None;
        }
        seconds += rest[..len].parse::<i64>().ok()? * unit;
        *rest = &rest[len..];
    }
    Some(if negative { -seconds } else { seconds })
}

/// A change: a day specification and an optional `/time` (default 02:00).
fn parse_change(rest: &mut &str) -> Option<Change> {
    let number = |rest: &mut &str| -> Option<i64> {
        let len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let value = rest.get(..len).filter(|digits| !digits.is_empty())?.parse().ok()?;
        *rest = &rest[len..];
        Some(value)
    };
    let day = if let Some(after) = rest.strip_prefix('J') {
        *rest = after;
        Day::Julian(number(rest).filter(|n| (1..=365).contains(n))?)
    } else if let Some(after) = rest.strip_prefix('M') {
        *rest = after;
        let month = number(rest).filter(|m| (1..=12).contains(m))?;
        *rest = rest.strip_prefix('.')?;
        let week = number(rest).filter(|w| (1..=5).contains(w))?;
        *rest = rest.strip_prefix('.')?;
        let weekday = number(rest).filter(|d| (0..=6).contains(d))?;
        Day::Month(month, week, weekday)
    } else {
        Day::Zero(number(rest).filter(|n| (0..=365).contains(n))?)
    };
    let seconds = match rest.strip_prefix('/') {
        Some(after) => {
            *rest = after;
            parse_offset(rest)?
        }
        None => 7200,
    };
    Some(Change { day, seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(rule: &str, t: i64) -> i64 {
        Rule::parse(rule).expect("rule parses").offset(t)
    }

    #[test]
    fn fixed_rules() {
        assert_eq!(offset("UTC0", 0), 0);
        assert_eq!(offset("JST-9", 0), 9 * 3600);
        assert_eq!(offset("EST5", 0), -5 * 3600);
        assert_eq!(offset("<+0530>-5:30", 0), 5 * 3600 + 1800);
        assert_eq!(Rule::parse("UTC"), None);
        assert_eq!(Rule::parse("Europe/Paris"), None);
    }

    #[test]
    fn daylight_rules_switch_at_the_right_instants() {
        let paris = "CET-1CEST,M3.5.0,M10.5.0/3";
        // 2026-03-29 01:00 UTC: clocks go from 02:00 CET to 03:00 CEST.
        let spring = days_from_civil(2026, 3, 29) * 86_400 + 3600;
        assert_eq!(offset(paris, spring - 1), 3600);
        assert_eq!(offset(paris, spring), 7200);
        // 2026-10-25 01:00 UTC: back from 03:00 CEST to 02:00 CET.
        let autumn = days_from_civil(2026, 10, 25) * 86_400 + 3600;
        assert_eq!(offset(paris, autumn - 1), 7200);
        assert_eq!(offset(paris, autumn), 3600);
        // Southern hemisphere: daylight time spans the new year.
        let sydney = "AEST-10AEDT,M10.1.0,M4.1.0/3";
        assert_eq!(offset(sydney, days_from_civil(2026, 1, 15) * 86_400), 11 * 3600);
        assert_eq!(offset(sydney, days_from_civil(2026, 7, 15) * 86_400), 10 * 3600);
        // No rule given: glibc's US default.
        assert_eq!(offset("EST5EDT", days_from_civil(2026, 7, 1) * 86_400), -4 * 3600);
        assert_eq!(offset("EST5EDT", days_from_civil(2026, 12, 1) * 86_400), -5 * 3600);
    }

    #[test]
    fn zone_files_use_transitions_then_their_footer() {
        // A version 2 file: one transition at t = 1000 to type 1 (+3600), footer "XXX-2".
        let mut file = Vec::new();
        let header = |file: &mut Vec<u8>, time: u32, types: u32, chars: u32| {
            file.extend_from_slice(b"TZif2");
            file.extend_from_slice(&[0; 15]);
            for count in [0, 0, 0, time, types, chars] {
                file.extend_from_slice(&u32::to_be_bytes(count));
            }
        };
        header(&mut file, 0, 1, 4);
        file.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        file.extend_from_slice(b"UTC\0");
        header(&mut file, 1, 2, 8);
        file.extend_from_slice(&1000i64.to_be_bytes());
        file.push(1);
        file.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        file.extend_from_slice(&[0, 0, 0x0e, 0x10, 0, 4]);
        file.extend_from_slice(b"UTC\0ONE\0");
        file.extend_from_slice(b"\nXXX-2\n");
        let zone = parse_tzif(&file).expect("valid TZif");
        assert_eq!(zone.offset(999), 0);
        assert_eq!(zone.offset(1000), 3600);
        assert_eq!(zone.offset(1001), 7200);
        let Zone::Table { transitions, .. } = &zone else { panic!("a table") };
        assert_eq!(transitions, &[(1000, 3600)]);
    }
}
