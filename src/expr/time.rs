//! CEL timestamps and durations: parsing, formatting and calendar fields (UTC and fixed
//! offsets). No time-zone database is bundled: IANA zone names are a run-time error.

/// Smallest valid timestamp (0001-01-01T00:00:00Z) in Unix seconds.
pub const MIN_TS: i64 = -62_135_596_800;
/// Largest valid timestamp (9999-12-31T23:59:59Z) in Unix seconds.
pub const MAX_TS: i64 = 253_402_300_799;
/// CEL's duration bound: ±315,576,000,000 s, in nanoseconds.
pub const MAX_DURATION_NANOS: i128 = 315_576_000_000 * 1_000_000_000 + 999_999_999;

/// A point in time: Unix seconds plus nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second (0..1e9).
    pub nanos: u32,
}

/// A signed span of time in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    /// Nanoseconds.
    pub nanos: i128,
}

impl Timestamp {
    /// Total nanoseconds since the epoch.
    #[must_use]
    pub fn total_nanos(self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// From total nanoseconds, if within CEL's range.
    #[must_use]
    pub fn from_nanos(n: i128) -> Option<Self> {
        let secs = i64::try_from(n.div_euclid(1_000_000_000)).ok()?;
        let nanos = u32::try_from(n.rem_euclid(1_000_000_000)).ok()?;
        (MIN_TS..=MAX_TS)
            .contains(&secs)
            .then_some(Self { secs, nanos })
    }
}

impl Duration {
    /// A duration if within CEL's range.
    #[must_use]
    pub fn checked(nanos: i128) -> Option<Self> {
        (nanos >= i128::from(i64::MIN)
            && nanos <= i128::from(i64::MAX)
            && nanos.abs() <= MAX_DURATION_NANOS)
            .then_some(Self { nanos })
    }
}

/// Days since 1970-01-01 of a civil date.
#[must_use]
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of days since 1970-01-01.
#[must_use]
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The days of month `m` (1–12) of year `y` (proleptic Gregorian).
fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an RFC 3339 timestamp (`2009-02-13T23:31:30Z`, fractions, offsets).
#[must_use]
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    timestamp_or_problem(s).ok()
}

/// Why a text is not a timestamp: the reason of the one parser
/// ([`timestamp_or_problem`]), which context validation and the run-time error of
/// `timestamp()` both give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampProblem {
    /// Not of the form at all.
    #[error("not an RFC 3339 timestamp (`2024-01-31T09:30:00Z`)")]
    Form,
    /// The month.
    #[error("the month is not 01 to 12")]
    Month,
    /// The day.
    #[error("the day is not in its month")]
    Day,
    /// The hour.
    #[error("the hour is over 23")]
    Hour,
    /// The minute.
    #[error("the minute is over 59")]
    Minute,
    /// The second.
    #[error("the second is over 59 (there are no leap seconds)")]
    Second,
    /// The offset.
    #[error("the offset is not under 24:00")]
    Offset,
    /// Before year 1 or after year 9999.
    #[error("out of range (0001-01-01 to 9999-12-31 UTC)")]
    Range,
}

/// Parses an RFC 3339 timestamp, or says what is wrong with it: the one parser of
/// context values and `timestamp()` conversions. As Go's `time.Parse` (CEL-go), the day
/// is within its month (leap years counted), there is no leap second, and an offset is
/// under a day.
///
/// # Errors
/// What is wrong, in words.
pub fn timestamp_or_problem(s: &str) -> Result<Timestamp, TimestampProblem> {
    const FORM: TimestampProblem = TimestampProblem::Form;
    let b = s.as_bytes();
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(FORM);
    }
    // Go's RFC 3339 layout (cel-go) spells the `T` and the `Z` in capitals only
    if b.get(10) != Some(&b'T') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return Err(FORM);
    }
    let field = |r: std::ops::Range<usize>| s.get(r).and_then(num).ok_or(FORM);
    let y = i64::from(field(0..4)?);
    let mo = field(5..7)?;
    let d = field(8..10)?;
    let h = field(11..13)?;
    let mi = field(14..16)?;
    let se = field(17..19)?;
    if !(1..=12).contains(&mo) {
        return Err(TimestampProblem::Month);
    }
    if d == 0 || d > days_in_month(y, mo) {
        return Err(TimestampProblem::Day);
    }
    if h > 23 {
        return Err(TimestampProblem::Hour);
    }
    if mi > 59 {
        return Err(TimestampProblem::Minute);
    }
    if se > 59 {
        return Err(TimestampProblem::Second);
    }
    let mut rest = s.get(19..).ok_or(FORM)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() || digits.len() > 9 {
            return Err(FORM);
        }
        nanos = num(&format!("{digits:0<9}")).ok_or(FORM)?;
        rest = frac.get(digits.len()..).ok_or(FORM)?;
    }
    let offset: i64 = if rest == "Z" {
        0
    } else {
        let sign = match rest.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(FORM),
        };
        if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
            return Err(FORM);
        }
        let oh = i64::from(rest.get(1..3).and_then(num).ok_or(FORM)?);
        let om = i64::from(rest.get(4..6).and_then(num).ok_or(FORM)?);
        if oh > 23 || om > 59 {
            return Err(TimestampProblem::Offset);
        }
        sign * (oh * 3600 + om * 60)
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se) - offset;
    if (MIN_TS..=MAX_TS).contains(&secs) {
        Ok(Timestamp { secs, nanos })
    } else {
        Err(TimestampProblem::Range)
    }
}

/// Formats as RFC 3339 in UTC, with as many fraction digits as needed (0, 3, 6 or 9).
#[must_use]
pub fn format_timestamp(t: Timestamp) -> String {
    let days = t.secs.div_euclid(86_400);
    let sod = t.secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if t.nanos != 0 {
        let frac = format!("{:09}", t.nanos);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses a Go-style duration: `1h30m`, `-1.5s`, `100ms`, `3600s`.
#[must_use]
pub fn parse_duration(s: &str) -> Option<Duration> {
    duration_or_problem(s).ok()
}

/// The units of a duration, as Go's `time.ParseDuration` (CEL) reads them: the micro
/// sign `µ` (U+00B5) and the Greek letter `μ` (U+03BC) both spell microseconds.
const DURATION_UNITS: [(&str, i128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The unit a duration part starts with: the longest that matches (`ms` before `m`).
fn duration_unit(rest: &str) -> Option<(i128, usize)> {
    DURATION_UNITS
        .iter()
        .filter(|(u, _)| rest.starts_with(u))
        .max_by_key(|(u, _)| u.len())
        .map(|(u, n)| (*n, u.len()))
}

/// Why a text is not a duration: the reason of the one parser
/// ([`duration_or_problem`]), which context validation and the run-time error of
/// `duration()` both give.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationProblem {
    /// Not of the form at all.
    #[error("not a duration (numbers with units h, m, s, ms, us, ns, e.g. `1h30m` or `1.5s`)")]
    Form,
    /// A number without a unit.
    #[error("`{0}` has no unit (h, m, s, ms, us, ns)")]
    NoUnit(String),
    /// A unit Go's durations do not have (`d`, `w`, ...).
    #[error("unit `{0}` is not a duration unit (h, m, s, ms, us, ns){hint}", hint = unit_hint(.0))]
    Unit(String),
    /// Past a 64-bit count of nanoseconds either way.
    #[error("out of range: at most {max} (about 292 years) either way", max = format_duration(LONGEST_PARSED))]
    Range,
}

/// What a unit that is not a duration unit is in hours, where it is a common one.
fn unit_hint(unit: &str) -> &'static str {
    match unit {
        "d" => "; 1 day is 24h",
        "w" => "; 1 week is 168h",
        _ => "",
    }
}

/// The longest duration parsed: a 64-bit count of nanoseconds (Go's, `i64::MAX`),
/// which is tighter than CEL's range.
const LONGEST_PARSED: Duration = Duration {
    nanos: 9_223_372_036_854_775_807,
};
const _: () = assert!(LONGEST_PARSED.nanos < MAX_DURATION_NANOS);

/// Parses a Go-style duration, or says what is wrong with it: the one parser of
/// context values and `duration()` conversions.
///
/// # Errors
/// What is wrong, in words (`unit `d` is not a duration unit …; 1 day is 24h`).
pub fn duration_or_problem(s: &str) -> Result<Duration, DurationProblem> {
    const FORM: DurationProblem = DurationProblem::Form;
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(Duration { nanos: 0 });
    }
    if rest.is_empty() {
        return Err(FORM);
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at_checked(int_len).ok_or(FORM)?;
        rest = after;
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let fl = r.bytes().take_while(u8::is_ascii_digit).count();
            (frac_part, rest) = r.split_at_checked(fl).ok_or(FORM)?;
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(FORM);
        }
        let Some((unit, len)) = duration_unit(rest) else {
            // (quoted as every error quotes a value: `value::quote`)
            let end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let word = rest.get(..end).unwrap_or_default();
            return Err(if word.is_empty() {
                DurationProblem::NoUnit(super::value::quote(int_part).into_owned())
            } else {
                DurationProblem::Unit(super::value::quote(word).into_owned())
            });
        };
        rest = rest.get(len..).ok_or(FORM)?;
        let ip: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| DurationProblem::Range)?
        };
        total = ip
            .checked_mul(unit)
            .and_then(|n| total.checked_add(n))
            .ok_or(DurationProblem::Range)?;
        if !frac_part.is_empty() {
            let digits = frac_part.get(..frac_part.len().min(18)).ok_or(FORM)?;
            let f: i128 = digits.parse().map_err(|_| FORM)?;
            let scale = 10i128.pow(u32::try_from(digits.len()).map_err(|_| FORM)?);
            total = total
                .checked_add(f * unit / scale)
                .ok_or(DurationProblem::Range)?;
        }
    }
    Duration::checked(if neg { -total } else { total }).ok_or(DurationProblem::Range)
}

/// Formats as CEL does: seconds with as many fraction digits as needed (`1.5s`).
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let neg = d.nanos < 0;
    let n = d.nanos.unsigned_abs();
    let secs = n / 1_000_000_000;
    let frac = n % 1_000_000_000;
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push_str(&secs.to_string());
    if frac != 0 {
        s.push('.');
        s.push_str(format!("{frac:09}").trim_end_matches('0'));
    }
    s.push('s');
    s
}

/// Offset in seconds for a zone argument: `UTC`, `""` (as Go's `LoadLocation("")`),
/// `+05:30`, `-08:00`, `05:30`. Other spellings of UTC (`utc`, `Z`) are refused, as by
/// cel-go: they are no zone names.
#[must_use]
pub fn zone_offset(tz: &str) -> Option<i64> {
    if tz.is_empty() || tz == "UTC" {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, tz.get(1..)?),
        b'-' => (-1, tz.get(1..)?),
        b'0'..=b'9' => (1, tz),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    Some(sign * (i64::from(num(h)?) * 3600 + i64::from(num(m)?) * 60))
}

/// Calendar fields of a timestamp at an offset.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Year.
    pub year: i64,
    /// Month, 0-based.
    pub month0: i64,
    /// Day of month, 1-based.
    pub day: i64,
    /// Day of year, 0-based.
    pub day_of_year0: i64,
    /// Day of week, 0 = Sunday.
    pub weekday: i64,
    /// Hours.
    pub hours: i64,
    /// Minutes.
    pub minutes: i64,
    /// Seconds.
    pub seconds: i64,
    /// Milliseconds.
    pub millis: i64,
}

/// Splits a timestamp into calendar fields at `offset` seconds east of UTC.
#[must_use]
pub fn fields(t: Timestamp, offset: i64) -> Fields {
    let local = t.secs + offset;
    let days = local.div_euclid(86_400);
    let sod = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    Fields {
        year: y,
        month0: i64::from(m) - 1,
        day: i64::from(d),
        day_of_year0: days - days_from_civil(y, 1, 1),
        weekday: (days + 4).rem_euclid(7),
        hours: sod / 3600,
        minutes: (sod / 60) % 60,
        seconds: sod % 60,
        millis: i64::from(t.nanos / 1_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = parse_timestamp("2009-02-13T23:31:30Z").unwrap();
        assert_eq!(t.secs, 1_234_567_890);
        assert_eq!(format_timestamp(t), "2009-02-13T23:31:30Z");
        let t = parse_timestamp("0001-01-01T00:00:00Z").unwrap();
        assert_eq!(t.secs, MIN_TS);
        assert_eq!(
            parse_timestamp("2009-02-13T23:31:30+01:00").unwrap().secs,
            1_234_564_290
        );
        let d = parse_duration("1h30m").unwrap();
        assert_eq!(d.nanos, 5_400_000_000_000);
        assert_eq!(
            format_duration(parse_duration("123.321456789s").unwrap()),
            "123.321456789s"
        );
        assert_eq!(format_duration(parse_duration("-1.5s").unwrap()), "-1.5s");
        assert!(parse_duration("1x").is_none());
        // days within the month (leap years), no leap second, offsets under a day
        for bad in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-01T23:59:60Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00-00:60",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
        for good in [
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "2024-12-31T23:59:59Z",
            "2024-01-01T00:00:00+23:59",
        ] {
            assert!(parse_timestamp(good).is_some(), "{good}");
        }
        assert_eq!(
            fields(parse_timestamp("2009-02-13T23:31:30Z").unwrap(), 0).weekday,
            5
        );
    }
}
