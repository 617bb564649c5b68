//! Date and time values for the `Date*` condition operators.
//!
//! AWS accepts the W3C profile of ISO 8601 (`2026-12-01`,
//! `2026-12-01T10:00Z`, `2026-12-01T10:00:00.5+02:00`, ...) or epoch (UNIX)
//! seconds. Values are turned into nanoseconds since the epoch (UTC) so that
//! comparing them is an integer comparison. A date-time without a zone
//! designator is taken as UTC.

/// Parses a policy or request date into nanoseconds since 1970-01-01T00:00:00Z.
pub(crate) fn parse(text: &str) -> Option<i128> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if looks_like_epoch(text) {
        return epoch(text);
    }
    iso8601(text)
}

fn looks_like_epoch(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Epoch seconds, optionally with a fraction: `1700000000`, `1700000000.25`.
fn epoch(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    if whole.is_empty() || whole.len() > 15 {
        return None;
    }
    let seconds: i128 = whole.parse().ok()?;
    let nanos = match frac {
        Some(f) => fraction(f)?,
        None => 0,
    };
    let value = seconds * 1_000_000_000 + nanos;
    Some(if negative { -value } else { value })
}

/// Fractional seconds as nanoseconds (digits beyond the ninth are ignored).
fn fraction(digits: &str) -> Option<i128> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i128 = 0;
    for i in 0..9 {
        let d = digits.as_bytes().get(i).map_or(0, |b| i128::from(b - b'0'));
        nanos = nanos * 10 + d;
    }
    Some(nanos)
}

/// A cursor over ASCII digits and separators.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let slice = self.bytes.get(self.at..self.at + n)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += n;
        Some(
            slice
                .iter()
                .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')),
        )
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.bytes.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

fn iso8601(text: &str) -> Option<i128> {
    let mut c = Cursor {
        bytes: text.as_bytes(),
        at: 0,
    };
    let year = c.digits(4)?;
    let (mut month, mut day) = (1, 1);
    if c.eat(b'-') {
        month = c.digits(2)?;
        if c.eat(b'-') {
            day = c.digits(2)?;
        }
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    let mut nanos: i128 = 0;
    if c.done() {
        return Some(i128::from(seconds) * 1_000_000_000);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let hour = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let minute = c.digits(2)?;
    let mut second = 0;
    if c.eat(b':') {
        second = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.at;
            while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.at += 1;
            }
            nanos = fraction(text.get(start..c.at)?)?;
        }
    }
    let end_of_day = hour == 24 && minute == 0 && second == 0 && nanos == 0;
    if !(hour < 24 || end_of_day) || minute > 59 || second > 60 {
        return None;
    }
    seconds += hour * 3600 + minute * 60 + second;
    match c.peek() {
        None => {}
        Some(b'Z' | b'z') => c.at += 1,
        Some(sign @ (b'+' | b'-')) => {
            c.at += 1;
            let oh = c.digits(2)?;
            let om = if c.eat(b':') {
                c.digits(2)?
            } else if c.done() {
                0
            } else {
                c.digits(2)?
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            // Local time = UTC + offset, so UTC = local - offset.
            seconds += if sign == b'+' { -offset } else { offset };
        }
        Some(_) => return None,
    }
    if !c.done() {
        return None;
    }
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
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
    use super::parse;

    const S: i128 = 1_000_000_000;

    #[test]
    fn formats() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("1970-01-01"), Some(0));
        assert_eq!(parse("1970-01"), Some(0));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("1700000000"), Some(1_700_000_000 * S));
        assert_eq!(parse("2023-11-14T22:13:20Z"), Some(1_700_000_000 * S));
        assert_eq!(
            parse("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000 * S + S / 2)
        );
        assert_eq!(parse("1700000000.5"), Some(1_700_000_000 * S + S / 2));
        assert_eq!(parse("2023-11-15T00:13:20+02:00"), Some(1_700_000_000 * S));
        assert_eq!(parse("2023-11-14T20:13:20-0200"), Some(1_700_000_000 * S));
        assert_eq!(parse("2023-11-14T22:13:20"), Some(1_700_000_000 * S));
        assert_eq!(parse("2023-11-14T22:13Z"), Some((1_700_000_000 - 20) * S));
        assert_eq!(parse("2000-02-29"), Some(951_782_400 * S));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(-S));
        assert_eq!(parse("2026-12-01T24:00:00Z"), parse("2026-12-02"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "tomorrow",
            "2026-13-01",
            "2026-02-29",
            "2026-12-01T",
            "2026-12-01T10",
            "2026-12-01T10:00:00Q",
            "2026-12-01T25:00:00Z",
            "2026-12-01T10:00:00+24:00",
            "2026-12-01T10:00:00.Z",
            "1.2.3",
            "-",
            ".",
            "99999999999999999999",
            "2026-1-01",
            "2026-12-01T10:00:00Z trailing",
            "２０２６-12-01",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
