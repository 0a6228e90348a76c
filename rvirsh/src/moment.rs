//! What snapshots and checkpoints (libvirt's "moments") share in rvirsh: the XML document
//! `*-create-as` builds, the creation-time column, and the listing order. Knows nothing of RPCs;
//! time zones are jiff's.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `virBufferEscapeString`: escapes the five XML specials and drops control characters other
/// than tab, newline and carriage return.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if u32::from(c) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// The document `snapshot-create-as`/`checkpoint-create-as` send (`root` is `domainsnapshot`
/// or `domaincheckpoint`), laid out as virsh lays it out; absent elements are omitted.
pub(crate) fn create_xml(root: &str, name: Option<&str>, description: Option<&str>) -> String {
    let mut xml = format!("<{root}>\n");
    if let Some(name) = name {
        xml.push_str(&format!("  <name>{}</name>\n", xml_escape(name)));
    }
    if let Some(description) = description {
        xml.push_str(&format!("  <description>{}</description>\n", xml_escape(description)));
    }
    xml.push_str(&format!("</{root}>\n"));
    xml
}

/// Sorts moments by name as virsh does (`vshStrcasecmp`: case-insensitive).
pub(crate) fn sort_by_name<T>(items: &mut [T], name: impl Fn(&T) -> &str) {
    items.sort_by(|a, b| {
        let (a, b) = (name(a), name(b));
        a.chars().flat_map(char::to_lowercase).cmp(b.chars().flat_map(char::to_lowercase))
    });
}

/// A creation time as virsh prints it: `%Y-%m-%d %H:%M:%S %z` in local time. The zone is the
/// one glibc's `localtime` uses, as jiff finds it: `TZ` (a zone name, `:name`, a path, a POSIX
/// rule; empty means UTC), else `/etc/localtime`; one it cannot read counts as UTC.
///
/// Differs from libvirt: a `TZ` that names daylight time without saying when it applies and
/// names no zone file either (`ABC5DEF`) counts as UTC, where glibc applies the US rules,
/// because jiff refuses such a rule.
pub(crate) fn creation_time(unix_seconds: i64) -> String {
    format_time(unix_seconds, &TimeZone::system())
}

/// `unix_seconds` in `zone`, formatted as glibc's strftime formats `%Y-%m-%d %H:%M:%S %z`.
fn format_time(unix_seconds: i64, zone: &TimeZone) -> String {
    let Ok(timestamp) = Timestamp::from_second(unix_seconds) else {
        // Differs from libvirt: a time outside jiff's years -9999..=9999 prints as seconds
        // since the epoch, because jiff has no date for it (only a broken daemon sends one).
        return unix_seconds.to_string();
    };
    let offset = zone.to_offset(timestamp);
    let local = offset.to_datetime(timestamp);
    // Not jiff's strftime: glibc's `%Y` counts the sign in its four places (`-001`) and its
    // `%z` drops the seconds of an offset (`+0521` for Madras time, +05:21:10), where jiff's
    // writes `-0001` and `+052110`.
    let seconds_east = offset.seconds();
    let sign = if seconds_east < 0 { '-' } else { '+' };
    let minutes = seconds_east.unsigned_abs() / 60;
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(seconds_east: i32) -> TimeZone {
        TimeZone::fixed(jiff::tz::Offset::from_seconds(seconds_east).expect("a valid offset"))
    }

    #[test]
    fn times_format_like_strftime() {
        assert_eq!(format_time(0, &TimeZone::UTC), "1970-01-01 00:00:00 +0000");
        assert_eq!(format_time(1_795_747_554, &TimeZone::UTC), "2026-11-27 02:45:54 +0000");
        assert_eq!(format_time(951_782_400, &TimeZone::UTC), "2000-02-29 00:00:00 +0000");
        assert_eq!(format_time(0, &fixed(-5 * 3600 - 1800)), "1969-12-31 18:30:00 -0530");
        // glibc's `%Y` and `%z`, checked against `TZ=UTC date -d @-62198755200` and
        // `TZ=Asia/Kolkata date -d @-2208988800`.
        assert_eq!(format_time(-62_198_755_200, &TimeZone::UTC), "-001-01-01 00:00:00 +0000");
        assert_eq!(format_time(-2_208_988_800, &fixed(5 * 3600 + 21 * 60 + 10)), "1900-01-01 05:21:10 +0521");
        assert_eq!(format_time(-2_208_988_800, &fixed(-(25 * 60 + 21))), "1899-12-31 23:34:39 -0025");
        assert_eq!(format_time(i64::MAX, &TimeZone::UTC), i64::MAX.to_string());
    }

    /// Around New York's 2026 changes (03-08 07:00 UTC, 11-01 06:00 UTC) and in 1900, when
    /// India kept Madras time (+05:21:10). The expected lines are what
    /// `TZ=<zone> date -d @<seconds> '+%Y-%m-%d %H:%M:%S %z'` prints (glibc 2.36).
    const SECONDS: [i64; 6] =
        [1_772_953_199, 1_772_953_200, 1_793_512_799, 1_793_512_800, 1_795_747_554, -2_208_988_800];

    #[test]
    fn zone_files_and_posix_rules_give_glibc_times() {
        let new_york = [
            "2026-03-08 01:59:59 -0500",
            "2026-03-08 03:00:00 -0400",
            "2026-11-01 01:59:59 -0400",
            "2026-11-01 01:00:00 -0500",
            "2026-11-26 21:45:54 -0500",
            "1899-12-31 19:00:00 -0500",
        ];
        let kolkata = [
            "2026-03-08 12:29:59 +0530",
            "2026-03-08 12:30:00 +0530",
            "2026-11-01 11:29:59 +0530",
            "2026-11-01 11:30:00 +0530",
            "2026-11-27 08:15:54 +0530",
            "1900-01-01 05:21:10 +0521",
        ];
        let utc = [
            "2026-03-08 06:59:59 +0000",
            "2026-03-08 07:00:00 +0000",
            "2026-11-01 05:59:59 +0000",
            "2026-11-01 06:00:00 +0000",
            "2026-11-27 02:45:54 +0000",
            "1900-01-01 00:00:00 +0000",
        ];
        for (zone, expected) in [
            (TimeZone::get("America/New_York").expect("tzdata installed"), new_york),
            (TimeZone::get("Asia/Kolkata").expect("tzdata installed"), kolkata),
            (TimeZone::get("UTC").expect("tzdata installed"), utc),
            (TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").expect("a valid rule"), new_york),
        ] {
            let got: Vec<String> = SECONDS.iter().map(|seconds| format_time(*seconds, &zone)).collect();
            assert_eq!(got, expected, "{zone:?}");
        }
    }

    /// Set in a child run of this test binary: the seconds whose creation times it prints.
    const CHILD_SECONDS: &str = "RVIRSH_TEST_CREATION_TIMES";

    /// The child half of `creation_time_reads_tz_like_glibc` (which runs this binary again with
    /// `TZ` set, as a test cannot safely set its own process's environment); without
    /// `RVIRSH_TEST_CREATION_TIMES` it checks nothing.
    #[test]
    fn creation_time_child_prints_what_it_is_asked() {
        let Ok(list) = std::env::var(CHILD_SECONDS) else {
            return;
        };
        for seconds in list.split(',') {
            println!("creation-time {}", creation_time(seconds.parse().expect("seconds")));
        }
    }

    /// `creation_time` under each `TZ` (and without one: /etc/localtime) prints what glibc's
    /// `date` prints under the same `TZ`, for times after 1970. (Before 1970 glibc never applies
    /// a POSIX rule's daylight time, a quirk neither jiff nor rvirsh's old parser shared.)
    #[test]
    fn creation_time_reads_tz_like_glibc() {
        let seconds = &SECONDS[..5];
        let list: Vec<String> = seconds.iter().map(i64::to_string).collect();
        let child_test = format!(
            "{}::creation_time_child_prints_what_it_is_asked",
            module_path!().split_once("::").unwrap().1
        );
        for tz in [
            None,
            Some("UTC"),
            Some("America/New_York"),
            Some("Asia/Kolkata"),
            Some("EST5EDT,M3.2.0,M11.1.0"),
            Some("CET-1CEST,M3.5.0,M10.5.0/3"),
            Some(":Europe/Paris"),
            Some("/usr/share/zoneinfo/Australia/Sydney"),
            Some(""),
            Some("Nowhere/Zone"),
        ] {
            let with_tz = |command: &mut std::process::Command| {
                match tz {
                    Some(tz) => command.env("TZ", tz),
                    None => command.env_remove("TZ"),
                };
            };
            let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
            child
                .args(["--exact", &child_test, "--nocapture", "--test-threads=1"])
                .env(CHILD_SECONDS, list.join(","));
            with_tz(&mut child);
            let output = child.output().expect("run the test binary");
            assert!(output.status.success(), "{tz:?}: {output:?}");
            let got: Vec<String> = String::from_utf8_lossy(&output.stdout)
                .lines()
                // Not anchored: libtest's `test NAME ... ` may precede the first line.
                .filter_map(|line| line.split_once("creation-time ").map(|(_, time)| time.to_owned()))
                .collect();
            let expected: Vec<String> = seconds
                .iter()
                .map(|seconds| {
                    let mut date = std::process::Command::new("date");
                    date.arg(format!("--date=@{seconds}")).arg("+%Y-%m-%d %H:%M:%S %z");
                    with_tz(&mut date);
                    let output = date.output().expect("run date");
                    String::from_utf8_lossy(&output.stdout).trim_end().to_owned()
                })
                .collect();
            assert_eq!(got, expected, "TZ={tz:?}");
        }
    }

    #[test]
    fn create_xml_escapes_and_omits() {
        assert_eq!(
            create_xml("domainsnapshot", Some("s<1>"), Some("a & 'b'\u{1}")),
            "<domainsnapshot>\n  <name>s&lt;1&gt;</name>\n  \
             <description>a &amp; &apos;b&apos;</description>\n</domainsnapshot>\n"
        );
        assert_eq!(create_xml("domaincheckpoint", None, None), "<domaincheckpoint>\n</domaincheckpoint>\n");
    }

    #[test]
    fn names_sort_case_insensitively() {
        let mut names = vec!["b", "A", "a1", "C"];
        sort_by_name(&mut names, |name| name);
        assert_eq!(names, ["A", "a1", "b", "C"]);
    }
}
