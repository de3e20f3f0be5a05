//! The times X sends, as ISO 8601 (what Tracardi and its workflows read): Unix milliseconds and
//! v1.1's `Mon May 19 14:01:46 +0000 2025`.

use crate::store::Millis;

pub fn iso_from_millis(millis: Millis) -> String {
    crate::callback::rfc3339(millis)
}

/// v1.1's `created_at` (`%a %b %d %H:%M:%S %z %Y`) as RFC 3339 UTC; `None` when it is not one.
pub fn iso_from_twitter_date(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, month, day, clock, offset, year] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let mut clock = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let (sign, offset) = match offset.as_bytes().first()? {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        _ => return None,
    };
    if offset.len() != 4 {
        return None;
    }
    let offset: i64 = offset.parse().ok()?;
    let offset_seconds = sign * ((offset / 100) * 3600 + (offset % 100) * 60);
    let seconds =
        days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset_seconds;
    (seconds >= 0).then(|| iso_from_millis(seconds * 1000))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_dates() {
        assert_eq!(
            iso_from_twitter_date("Mon May 19 14:01:46 +0000 2025").as_deref(),
            Some("2025-05-19T14:01:46.000Z")
        );
        assert_eq!(
            iso_from_twitter_date("Mon Mar 26 16:33:26 +0200 2018").as_deref(),
            Some("2018-03-26T14:33:26.000Z")
        );
        assert_eq!(
            iso_from_twitter_date("Thu Feb 29 23:30:00 -0100 2024").as_deref(),
            Some("2024-03-01T00:30:00.000Z")
        );
        for bad in [
            "",
            "yesterday",
            "Mon Foo 19 14:01:46 +0000 2025",
            "Mon May 19 25:01:46 +0000 2025",
            "Mon May 19 14:01:46 0000 2025",
        ] {
            assert_eq!(iso_from_twitter_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn millis_are_utc() {
        assert_eq!(iso_from_millis(1784927565236), "2026-07-24T21:12:45.236Z");
    }
}
