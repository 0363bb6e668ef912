//! Query strings, read strictly: every parameter is known, typed and bounded, and a bad one is a 400
//! that names it.
//!
//! axum's `Query<T>` rejects with plain text and cannot take a repeated key (`facility=a&facility=b`),
//! so handlers take the raw query and read it through [`Params`].

use std::str::FromStr;

use super::error::ApiError;

/// A whole query string longer than this is refused.
pub const MAX_QUERY_BYTES: usize = 4096;
/// A single value longer than this (in characters) is refused.
pub const MAX_VALUE_CHARS: usize = 200;
/// A key repeated more often than this is refused.
pub const MAX_REPEATS: usize = 30;

/// The decoded `key=value` pairs of one request, in order.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes a query string (absent = empty), refusing oversized input and keys not in `known`. A
    /// key ending in `[]` (the seed's axios style, `facilities[]=…`) counts as the key without it.
    pub fn parse(raw: Option<&str>, known: &[&str]) -> Result<Params, ApiError> {
        let raw = raw.unwrap_or("");
        if raw.len() > MAX_QUERY_BYTES {
            return Err(ApiError::invalid(
                "query",
                format!(
                    "the query string has {} bytes; at most {MAX_QUERY_BYTES}",
                    raw.len()
                ),
            ));
        }
        let mut pairs = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            let key = k.strip_suffix("[]").unwrap_or(&k).to_string();
            if !known.contains(&key.as_str()) {
                return Err(ApiError::invalid(
                    truncate(&key),
                    format!("unknown parameter; known: {}", known.join(", ")),
                ));
            }
            if v.contains('\u{FFFD}') {
                return Err(ApiError::invalid(key, "not valid UTF-8"));
            }
            if v.chars().count() > MAX_VALUE_CHARS {
                return Err(ApiError::invalid(
                    key,
                    format!("longer than {MAX_VALUE_CHARS} characters"),
                ));
            }
            if v.chars().any(char::is_control) {
                return Err(ApiError::invalid(key, "contains control characters"));
            }
            // `?rent_max=` is neither a number nor absent: say so rather than guess (the page never
            // sends empty values; a client that means "no filter" leaves the parameter out).
            if v.trim().is_empty() {
                return Err(ApiError::invalid(
                    key,
                    "empty value; leave the parameter out for no filter",
                ));
            }
            pairs.push((key, v.into_owned()));
        }
        for key in known {
            if pairs.iter().filter(|(k, _)| k == key).count() > MAX_REPEATS {
                return Err(ApiError::invalid(
                    *key,
                    format!("given more than {MAX_REPEATS} times"),
                ));
            }
        }
        Ok(Params { pairs })
    }

    /// The value of a key given at most once (values are never empty: [`Params::parse`] refuses them).
    pub fn one(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::invalid(key, "given more than once"));
        }
        Ok(first)
    }

    /// Every value of a repeatable key; a value may also list several, comma-separated.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// A number within `lo..=hi` (`what` says the unit in the message).
    pub fn number<T>(&self, key: &str, lo: T, hi: T, what: &str) -> Result<Option<T>, ApiError>
    where
        T: FromStr + PartialOrd + Copy + std::fmt::Display,
    {
        let Some(v) = self.one(key)? else {
            return Ok(None);
        };
        match v.parse::<T>() {
            Ok(n) if n >= lo && n <= hi => Ok(Some(n)),
            _ => Err(ApiError::invalid(
                key,
                format!("`{}` is not {what} between {lo} and {hi}", truncate(v)),
            )),
        }
    }

    /// A float within `lo..=hi` (finite).
    pub fn float(&self, key: &str, lo: f64, hi: f64, what: &str) -> Result<Option<f64>, ApiError> {
        let Some(v) = self.one(key)? else {
            return Ok(None);
        };
        match v.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= lo && n <= hi => Ok(Some(n)),
            _ => Err(ApiError::invalid(
                key,
                format!("`{}` is not {what} between {lo} and {hi}", truncate(v)),
            )),
        }
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`); absent is false.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.one(key)? {
            None => Ok(false),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ApiError::invalid(
                    key,
                    format!("`{}` is not true or false", truncate(v)),
                )),
            },
        }
    }
}

/// At most 40 characters of user input, for messages.
pub fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<impl std::fmt::Debug, ApiError>) -> String {
        match r {
            Err(ApiError::InvalidParameter { field, .. }) => field,
            other => panic!("expected a bad parameter, got {other:?}"),
        }
    }

    #[test]
    fn bad_query_strings_name_the_parameter() {
        let known = ["deposit_max", "facility", "verified_only"];
        let p = Params::parse(
            Some("deposit_max=500&facility[]=cafe&facility=subway,mart"),
            &known,
        )
        .expect("valid");
        assert_eq!(
            p.number::<u32>("deposit_max", 0, 1_000_000, "만원")
                .expect("ok"),
            Some(500)
        );
        assert_eq!(p.all("facility"), vec!["cafe", "subway", "mart"]);
        assert!(!p.flag("verified_only").expect("absent"));

        assert_eq!(
            field(Params::parse(Some("depositmax=1"), &known)),
            "depositmax"
        );
        assert_eq!(
            field(Params::parse(Some(&"a".repeat(5000)), &known)),
            "query"
        );
        let long = format!("facility={}", "x".repeat(300));
        assert_eq!(field(Params::parse(Some(&long), &known)), "facility");
        assert_eq!(
            field(Params::parse(Some("facility=%FF%FE"), &known)),
            "facility"
        );
        assert_eq!(
            field(Params::parse(Some("facility=a%00b"), &known)),
            "facility"
        );
        let p =
            Params::parse(Some("deposit_max=1e999&verified_only=maybe"), &known).expect("parses");
        assert_eq!(
            field(p.number::<u32>("deposit_max", 0, 10, "만원")),
            "deposit_max"
        );
        assert_eq!(
            field(p.float("deposit_max", 0.0, 10.0, "m²")),
            "deposit_max"
        );
        assert_eq!(field(p.flag("verified_only")), "verified_only");
        let p = Params::parse(Some("deposit_max=1&deposit_max=2"), &known).expect("parses");
        assert_eq!(field(p.one("deposit_max")), "deposit_max");
    }
}
