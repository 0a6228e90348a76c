//! What snapshots and checkpoints (libvirt's "moments") share in rvirsh: the XML document
//! `*-create-as` builds, the creation-time column, and the listing order. Knows nothing of RPCs.

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

/// A creation time as virsh prints it: `%Y-%m-%d %H:%M:%S %z` in local time (see `zone`).
pub(crate) fn creation_time(unix_seconds: i64) -> String {
    format_time(unix_seconds, super::zone::utc_offset(unix_seconds))
}

/// `unix_seconds` shifted by `offset` seconds east of UTC, formatted.
fn format_time(unix_seconds: i64, offset: i64) -> String {
    let local = unix_seconds + offset;
    let (days, second_of_day) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.abs() / 60;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        minutes / 60,
        minutes % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_like_strftime() {
        assert_eq!(format_time(0, 0), "1970-01-01 00:00:00 +0000");
        assert_eq!(format_time(1_795_747_554, 0), "2026-11-27 02:45:54 +0000");
        assert_eq!(format_time(951_782_400, 0), "2000-02-29 00:00:00 +0000");
        assert_eq!(format_time(0, -5 * 3600 - 1800), "1969-12-31 18:30:00 -0530");
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
