//! The migration timeout of a volume (`docs/lifecycle.md` §Time): read from the volume context key
//! `migrationTimeoutSeconds`, with the default, the clamps and a warning for each correction.
//!
//! ```
//! use csi_events::model::migration_timeout;
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//!
//! let mut context = BTreeMap::new();
//! assert_eq!(migration_timeout(&context), (Duration::from_secs(300), None));
//! context.insert("migrationTimeoutSeconds".to_string(), "10".to_string());
//! let (timeout, warning) = migration_timeout(&context);
//! assert_eq!(timeout, Duration::from_secs(30));
//! assert!(warning.is_some());
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

/// The volume context key holding the timeout in whole seconds.
pub const TIMEOUT_KEY: &str = "migrationTimeoutSeconds";
/// The timeout when the key is missing, empty or unusable: 5 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The shortest timeout: 30 seconds.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest timeout: 1 hour.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The migration timeout from a volume context, and the warning to log when the value had to be
/// replaced or clamped (`None` when it was used as it is, or missing/empty).
///
/// Missing or empty → 300 s silently; not an integer or ≤ 0 → 300 s with a warning; below 30 →
/// 30 s, above 3600 → 3600 s, each with a warning.
pub fn migration_timeout(context: &BTreeMap<String, String>) -> (Duration, Option<String>) {
    let Some(text) = context.get(TIMEOUT_KEY).map(|v| v.trim()) else {
        return (DEFAULT_TIMEOUT, None);
    };
    if text.is_empty() {
        return (DEFAULT_TIMEOUT, None);
    }
    let secs = DEFAULT_TIMEOUT.as_secs();
    // An integer past 64 bits is still an integer (`docs/lifecycle.md`'s table): above the maximum
    // when positive, not positive when negative.
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let parsed = text.parse::<i64>();
    if parsed.is_err() && digits(text.strip_prefix('+').unwrap_or(text)) {
        return (
            MAX_TIMEOUT,
            Some(format!(
                "{TIMEOUT_KEY} {text} is above the maximum: using {} s",
                MAX_TIMEOUT.as_secs()
            )),
        );
    }
    if parsed.is_err() && text.strip_prefix('-').is_some_and(digits) {
        return (
            DEFAULT_TIMEOUT,
            Some(format!(
                "{TIMEOUT_KEY} {text} is not positive: using the default {secs} s; set it to an integer between 30 and 3600"
            )),
        );
    }
    match parsed {
        Err(_) => (
            DEFAULT_TIMEOUT,
            Some(format!(
                "{TIMEOUT_KEY} {text:?} is not a whole number of seconds: using the default {secs} s; set it to an integer between 30 and 3600"
            )),
        ),
        Ok(n) if n <= 0 => (
            DEFAULT_TIMEOUT,
            Some(format!(
                "{TIMEOUT_KEY} {n} is not positive: using the default {secs} s; set it to an integer between 30 and 3600"
            )),
        ),
        Ok(n) if (n as u64) < MIN_TIMEOUT.as_secs() => (
            MIN_TIMEOUT,
            Some(format!(
                "{TIMEOUT_KEY} {n} is below the minimum: using {} s",
                MIN_TIMEOUT.as_secs()
            )),
        ),
        Ok(n) if (n as u64) > MAX_TIMEOUT.as_secs() => (
            MAX_TIMEOUT,
            Some(format!(
                "{TIMEOUT_KEY} {n} is above the maximum: using {} s",
                MAX_TIMEOUT.as_secs()
            )),
        ),
        Ok(n) => (Duration::from_secs(n as u64), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(value: Option<&str>) -> (Duration, Option<String>) {
        let mut context = BTreeMap::new();
        if let Some(value) = value {
            context.insert(TIMEOUT_KEY.to_owned(), value.to_owned());
        }
        migration_timeout(&context)
    }

    #[test]
    fn defaults_clamps_and_warnings() {
        let secs = Duration::from_secs;
        let cases: [(Option<&str>, Duration, bool); 11] = [
            (None, secs(300), false),
            (Some(""), secs(300), false),
            (Some("abc"), secs(300), true),
            (Some("1.5"), secs(300), true),
            (Some("0"), secs(300), true),
            (Some("-5"), secs(300), true),
            (Some("10"), secs(30), true),
            (Some("30"), secs(30), false),
            (Some("600"), secs(600), false),
            (Some("3600"), secs(3600), false),
            (Some("7200"), secs(3600), true),
        ];
        for (value, want, warns) in cases {
            let (timeout, warning) = timeout_of(value);
            assert_eq!(timeout, want, "{value:?}");
            assert_eq!(warning.is_some(), warns, "{value:?}: {warning:?}");
        }
        let (_, warning) = timeout_of(Some("abc"));
        let warning = warning.expect("a warning");
        assert!(
            warning.contains("\"abc\"") && warning.contains("300 s"),
            "{warning}"
        );
    }

    #[test]
    fn huge_numbers_clamp_rather_than_fail() {
        assert_eq!(timeout_of(Some("99999999999999")).0, MAX_TIMEOUT);
        // Past 64 bits it is still an integer above the maximum (`docs/lifecycle.md`'s table).
        assert_eq!(timeout_of(Some("99999999999999999999999")).0, MAX_TIMEOUT);
        assert_eq!(
            timeout_of(Some("-99999999999999999999999")).0,
            DEFAULT_TIMEOUT
        );
    }
}
