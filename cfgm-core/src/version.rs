//! Version comparison for templates: Debian's ordering, as dpkg has it.
//!
//! `{% if facts.pkgs.openssh_server is version(">=", "1:9.2") %}` and the
//! filter of the same name compare `[epoch:]upstream[-revision]` strings
//! the way `dpkg --compare-versions` does: the epoch as a number, then the
//! upstream version and the revision each in alternating runs of non-digits
//! (compared character by character, `~` before everything, even the end;
//! letters before other characters) and digits (compared as numbers). So
//! `9.10` is newer than `9.9`, `1.0~rc1` older than `1.0`, and `1:1.0` newer
//! than `2.0`. Comparing versions as floats (`9.10 < 9.9`) is the mistake
//! this exists to prevent.
//!
//! Pure: this module knows strings, not packages or hosts.

use minijinja::{Error, ErrorKind, Value};
use std::cmp::Ordering;

/// Compares two Debian version strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

/// `[epoch:]upstream[-revision]`: the epoch (0 when absent or not a
/// number), the upstream version and the revision ("" when absent).
fn split(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((up, rev)) => (epoch, up, rev),
        None => (epoch, rest, ""),
    }
}

/// The weight of a character in a non-digit run: `~` sorts before the
/// end of the run, letters before other characters.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

/// dpkg's `verrevcmp`.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // A run of non-digits.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ca, cb) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }
        // A run of digits, as numbers of any length.
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (si, sj) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (na, nb) = (&a[si..i], &b[sj..j]);
        let by_number = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if by_number != Ordering::Equal {
            return by_number;
        }
    }
    Ordering::Equal
}

/// Whether `a OP b` holds; `op` is one of `<`, `<=`, `==`, `!=`, `>=`, `>`
/// (also `lt` … `gt`, and dpkg's `<<` and `>>`).
pub fn holds(a: &str, op: &str, b: &str) -> Option<bool> {
    let o = compare(a, b);
    Some(match op {
        "<" | "<<" | "lt" => o == Ordering::Less,
        "<=" | "le" => o != Ordering::Greater,
        "==" | "=" | "eq" => o == Ordering::Equal,
        "!=" | "ne" => o != Ordering::Equal,
        ">=" | "ge" => o != Ordering::Less,
        ">" | ">>" | "gt" => o == Ordering::Greater,
        _ => return None,
    })
}

/// A version as a template gives it: a string, or a number written bare.
fn text(v: &Value, what: &str) -> Result<String, Error> {
    if let Some(s) = v.as_str() {
        return Ok(s.to_string());
    }
    if v.is_number() {
        return Ok(v.to_string());
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("version: {what} must be a version string, not {}", v.kind()),
    ))
}

/// The `version` test and filter: `value is version(op, other)`,
/// `value | version(op, other)`.
pub fn template_fn(value: &Value, op: &str, other: &Value) -> Result<bool, Error> {
    let (a, b) = (text(value, "the value")?, text(other, "the other version")?);
    holds(&a, op, &b).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("version: unknown comparison `{op}` (expected one of <, <=, ==, !=, >=, >)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn debian_ordering() {
        for (a, b, want) in [
            ("9.10", "9.9", Greater),
            ("9.9", "9.10", Less),
            ("1.0", "1.0", Equal),
            ("1.00", "1.0", Equal),
            ("1:1.0", "2.0", Greater),
            ("0:2.0", "2.0", Equal),
            ("1:9.2p1-2", "1:9.2", Greater),
            ("1:9.2p1-2", "1:9.6p1-3", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0a", "1.0+", Less),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("2.36.1-8+deb12u1", "2.36.1-8", Greater),
            ("7.6", "10.0", Less),
            ("1.2.3-1ubuntu1", "1.2.3-1", Greater),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn operators() {
        assert_eq!(holds("9.10", ">=", "9.9"), Some(true));
        assert_eq!(holds("9.10", "<", "9.9"), Some(false));
        assert_eq!(holds("1:9.2p1-2", ">>", "9.9"), Some(true));
        assert_eq!(holds("1", "~=", "1"), None);
    }

    #[test]
    fn in_templates() {
        let mut env = minijinja::Environment::new();
        env.add_test("version", template_fn);
        env.add_filter("version", template_fn);
        let r = |s: &str| env.render_str(s, minijinja::context! { v => "1:9.2p1-2" });
        assert_eq!(r(r#"{{ v is version(">=", "1:9.2") }}"#).unwrap(), "True");
        assert_eq!(r(r#"{{ "9.10" is version(">", "9.9") }}"#).unwrap(), "True");
        assert_eq!(r(r#"{{ v | version("<", "9.9") }}"#).unwrap(), "False");
        assert_eq!(r(r#"{{ 9.10 is version(">", 9.9) }}"#).unwrap(), "False");
        assert!(r(r#"{{ v is version("~", "1") }}"#).is_err());
    }
}
