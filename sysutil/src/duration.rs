//! The one duration syntax, for every command-line flag and config key.
//!
//! A duration is one or more `<number><unit>` parts, summed: `500ms`,
//! `1.5s`, `2m`, `1h30m`, `7d`, `2w` (units `ms`, `s`, `m`, `h`, `d`, `w`;
//! spaces between parts are allowed). A bare number is seconds (`30`).
//! Values above [`MAX`] are an error, never an overflow.

use std::time::Duration;

/// The longest duration accepted: 100 years (of 365 days).
pub const MAX: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error(
        "invalid duration {0:?} (examples: 500ms, 1.5s, 2m, 1h30m, 7d; units ms, s, m, h, d, w)"
    )]
    Invalid(String),
    #[error("duration {0:?} is too long (at most 100 years)")]
    TooLong(String),
}

const NANOS: [(&str, u128); 6] = [
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
];

/// Parses a duration (see the module documentation).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(s.to_string());
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(invalid());
    }
    let max = MAX.as_nanos();
    // A bare number is seconds.
    let whole = if compact.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        format!("{compact}s")
    } else {
        compact
    };
    let mut total: u128 = 0;
    let mut rest = whole.as_str();
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(unit_len);
        rest = after;
        let unit_ns = NANOS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, ns)| *ns)
            .ok_or_else(invalid)?;
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(invalid());
        }
        // Digits beyond the unit's precision are dropped: no part is finer
        // than a nanosecond.
        let mut ns = 0u128;
        for d in int.bytes() {
            ns = ns * 10 + u128::from(d - b'0');
            if ns > max {
                return Err(DurationError::TooLong(s.to_string()));
            }
        }
        ns = ns
            .checked_mul(unit_ns)
            .ok_or_else(|| DurationError::TooLong(s.to_string()))?;
        let mut scale = unit_ns;
        for d in frac.bytes() {
            scale /= 10;
            ns += u128::from(d - b'0') * scale;
        }
        total = total
            .checked_add(ns)
            .filter(|t| *t <= max)
            .ok_or_else(|| DurationError::TooLong(s.to_string()))?;
    }
    let secs =
        u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::TooLong(s.to_string()))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `#[serde(with = "sysutil::duration")]` for a `Duration` in a config
/// file: a duration string, or a number of seconds (`ack_wait = 45`).
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration such as \"10s\" or \"1h30m\", or a number of seconds")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
            parse_duration(s).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
            parse_duration(&n.to_string()).map_err(E::custom)
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
            parse_duration(&n.to_string()).map_err(E::custom)
        }
        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Duration, E> {
            parse_duration(&n.to_string()).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

/// Writes a duration back in the same syntax: its largest exact units,
/// e.g. `7d`, `1h30m`, `90s` is `1m30s`, `250ms`; `0s` for zero.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, len) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= len {
            out.push_str(&format!("{}{unit}", ms / len));
            ms %= len;
        }
    }
    out
}

/// `#[serde(with = "sysutil::duration")]` also serialises, as [`format`].
pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_same_everywhere() {
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("7d"), Duration::from_secs(7 * 86_400));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2w"), Duration::from_secs(14 * 86_400));
        assert_eq!(ok("30"), Duration::from_secs(30));
        assert_eq!(ok("0.25"), Duration::from_millis(250));
        assert_eq!(ok(" 10s "), Duration::from_secs(10));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("1.5ms"), Duration::from_micros(1500));
        assert_eq!(ok("0.000000001s"), Duration::from_nanos(1));
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            "",
            " ",
            "s",
            "5x",
            "-1s",
            "1.2.3s",
            ".s",
            "10 parsecs",
            "1h30",
            "abc",
            "1e3s",
            "+1s",
            "1sm",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(DurationError::Invalid(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn huge_values_are_errors_not_panics() {
        for huge in [
            "99999999999999999999999999999999999999999999999999d",
            "36501d",
            "18446744073709551616s",
            "5000000000000000000000w",
            "36500d1s",
        ] {
            assert_eq!(
                parse_duration(huge),
                Err(DurationError::TooLong(huge.to_string())),
                "{huge}"
            );
        }
        assert_eq!(ok("36500d"), MAX);
    }

    #[test]
    fn config_values_are_strings_or_seconds() {
        #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
        struct C {
            #[serde(with = "crate::duration")]
            d: Duration,
        }
        let c = |v: serde_json::Value| serde_json::from_value::<C>(serde_json::json!({ "d": v }));
        assert_eq!(c("1h30m".into()).unwrap().d, Duration::from_secs(5400));
        assert_eq!(c(45.into()).unwrap().d, Duration::from_secs(45));
        assert_eq!(c(1.5.into()).unwrap().d, Duration::from_millis(1500));
        assert!(c((-1).into()).is_err());
        assert!(c("7 days".into()).is_err());
        let back = serde_json::to_value(C {
            d: Duration::from_secs(5400),
        })
        .unwrap();
        assert_eq!(back, serde_json::json!({ "d": "1h30m" }));
    }

    #[test]
    fn format_round_trips() {
        for s in ["7d", "1h30m", "1m30s", "250ms", "0s", "1d2h3m4s5ms"] {
            assert_eq!(format(ok(s)), s);
        }
    }
}
