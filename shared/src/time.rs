//! Timestamps: stored as Unix milliseconds, rendered as RFC 3339 UTC strings.

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_millis(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// Reads a stored instant: Unix milliseconds or seconds as digits, or an RFC 3339 / ISO 8601
/// UTC string (`2026-11-25T13:59:59.999Z`, `2026-11-25 13:59:59`). better-auth's adapters write
/// either, depending on the driver.
pub fn parse_instant_ms(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(n) = value.parse::<i64>() {
        // Ten-digit numbers are seconds until the year 2286; milliseconds have thirteen.
        return Some(if n.abs() < 100_000_000_000 {
            n * 1000
        } else {
            n
        });
    }
    let bytes = value.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = value.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if bytes.len() < 19 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b' ')
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &value[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = first3.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    if !matches!(rest, "" | "Z" | "+00:00") {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// A proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
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
    use super::{parse_instant_ms, rfc3339_millis};

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            rfc3339_millis(1_795_615_199_999),
            "2026-11-25T13:59:59.999Z"
        );
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        // Across the century rules (a century year leaps only every 400 years).
        for (ms, text) in [
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (4_133_980_800_000, "2101-01-01T00:00:00.000Z"),
            (7_263_216_000_000, "2200-03-01T00:00:00.000Z"),
            (10_418_889_600_000, "2300-03-01T00:00:00.000Z"),
            (13_574_563_200_000, "2400-02-29T00:00:00.000Z"),
            (13_601_001_600_000, "2400-12-31T00:00:00.000Z"),
        ] {
            assert_eq!(rfc3339_millis(ms), text);
            assert_eq!(parse_instant_ms(text), Some(ms));
        }
    }

    #[test]
    fn parses_what_it_formats_and_what_better_auth_stores() {
        for ms in [0, 951_782_400_123, 1_795_615_199_999, -1, 4_102_444_800_000] {
            assert_eq!(parse_instant_ms(&rfc3339_millis(ms)), Some(ms));
        }
        assert_eq!(parse_instant_ms("1795615199"), Some(1_795_615_199_000));
        assert_eq!(parse_instant_ms("1795615199999"), Some(1_795_615_199_999));
        assert_eq!(
            parse_instant_ms("2026-11-25 13:59:59"),
            Some(1_795_615_199_000)
        );
        assert_eq!(
            parse_instant_ms("2026-11-25T13:59:59.9Z"),
            Some(1_795_615_199_900)
        );
        assert_eq!(parse_instant_ms("2026-11-25T13:59:59+02:00"), None);
        assert_eq!(parse_instant_ms("2026-13-25T13:59:59Z"), None);
        assert_eq!(parse_instant_ms("yesterday"), None);
        // Eleven digits and more are milliseconds.
        assert_eq!(parse_instant_ms("99999999999"), Some(99_999_999_999_000));
        assert_eq!(parse_instant_ms("100000000000"), Some(100_000_000_000));
        // Each part of the shape, and each field's range, is checked on its own.
        for bad in [
            "2026-11-25",
            "2026/11-25T13:59:59Z",
            "2026-11/25T13:59:59Z",
            "2026-11-25_13:59:59Z",
            "2026-00-25T13:59:59Z",
            "2026-11-00T13:59:59Z",
            "2026-11-32T13:59:59Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T13:60:00Z",
            "2026-11-25T13:59:61Z",
        ] {
            assert_eq!(parse_instant_ms(bad), None, "{bad}");
        }
        // A leap second is a second.
        assert_eq!(
            parse_instant_ms("2026-11-25T13:59:60Z"),
            Some(1_795_615_200_000)
        );
    }
}
