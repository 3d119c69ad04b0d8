//! Label and field selectors: parsing (apimachinery `labels.Parse`, `fields.ParseSelector`)
//! and matching against stored objects.

use std::collections::BTreeMap;

use super::pointer::Pointer;
use serde_json::Value;

/// One label selector requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelReq {
    /// `key` exists.
    Exists(String),
    /// `!key`.
    NotExists(String),
    /// `key=v`, `key==v`, `key in (a,b)`.
    In(String, Vec<String>),
    /// `key!=v`, `key notin (a,b)`.
    NotIn(String, Vec<String>),
    /// `key>n`.
    Gt(String, i64),
    /// `key<n`.
    Lt(String, i64),
}

/// A parsed label selector (all requirements must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<LabelReq>);

fn split_top_level(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth <= 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn valid_value(v: &str) -> bool {
    v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),!f,g`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for raw in split_top_level(text) {
            let term = raw.trim();
            if term.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '', expected: identifier in \"{text}\""
                ));
            }
            reqs.push(
                parse_label_term(term).map_err(|e| format!("unable to parse requirement: {e}"))?,
            );
        }
        Ok(Self(reqs))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            LabelReq::Exists(k) => labels.contains_key(k),
            LabelReq::NotExists(k) => !labels.contains_key(k),
            LabelReq::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            LabelReq::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            LabelReq::Gt(k, n) => labels
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            LabelReq::Lt(k, n) => labels
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        })
    }
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("found '{rest}', expected: '('"))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if let Some(bad) = values.iter().find(|v| !valid_value(v)) {
        return Err(format!("invalid label value: \"{bad}\""));
    }
    Ok(values)
}

fn parse_label_term(term: &str) -> Result<LabelReq, String> {
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        if !valid_key(key) {
            return Err(format!("found '{key}', expected: identifier"));
        }
        return Ok(LabelReq::NotExists(key.to_string()));
    }
    for (op, is_set) in [(" notin ", true), (" in ", true)] {
        if let Some(i) = term.find(op) {
            let key = term[..i].trim();
            if !valid_key(key) {
                return Err(format!("found '{key}', expected: identifier"));
            }
            let values = parse_set(&term[i + op.len()..])?;
            let _ = is_set;
            return Ok(if op == " in " {
                LabelReq::In(key.to_string(), values)
            } else {
                LabelReq::NotIn(key.to_string(), values)
            });
        }
    }
    for op in ["!=", "==", "=", ">", "<"] {
        if let Some(i) = term.find(op) {
            let key = term[..i].trim();
            let value = term[i + op.len()..].trim();
            if !valid_key(key) {
                return Err(format!("found '{key}', expected: identifier"));
            }
            return match op {
                ">" | "<" => {
                    let n = value.parse::<i64>().map_err(|_| {
                        format!("for 'Gt', 'Lt' operators, the value must be an integer: {value}")
                    })?;
                    Ok(if op == ">" {
                        LabelReq::Gt(key.to_string(), n)
                    } else {
                        LabelReq::Lt(key.to_string(), n)
                    })
                }
                _ => {
                    if !valid_value(value) {
                        return Err(format!("invalid label value: \"{value}\""));
                    }
                    Ok(if op == "!=" {
                        LabelReq::NotIn(key.to_string(), vec![value.to_string()])
                    } else {
                        LabelReq::In(key.to_string(), vec![value.to_string()])
                    })
                }
            };
        }
    }
    if !valid_key(term) {
        return Err(format!("found '{term}', expected: identifier"));
    }
    Ok(LabelReq::Exists(term.to_string()))
}

/// The labels of an object.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.ptr("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// One field selector term: `label=value` (`negated` for `!=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field label as sent.
    pub label: String,
    /// The unescaped value.
    pub value: String,
    /// `!=`.
    pub negated: bool,
}

/// Parses a field selector (`fields.ParseSelector`): comma-separated terms, `=`, `==`, `!=`,
/// escapes `\,`, `\=`, `\\` in values.
pub fn parse_field_selector(text: &str) -> Result<Vec<FieldTerm>, String> {
    let mut terms = Vec::new();
    for raw in split_unescaped_commas(text) {
        if raw.is_empty() {
            continue;
        }
        let (label, op_len, negated, at) = find_operator(&raw)
            .ok_or_else(|| format!("invalid selector: '{text}'; can't understand '{raw}'"))?;
        let value = unescape(&raw[at + op_len..])?;
        terms.push(FieldTerm {
            label,
            value,
            negated,
        });
    }
    Ok(terms)
}

fn split_unescaped_commas(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn find_operator(term: &str) -> Option<(String, usize, bool, usize)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
            // Compare bytes: `i` may sit inside a multi-byte character (never at a match,
            // since the operators are ASCII, so the slice below is on a boundary).
            if bytes[i..].starts_with(op.as_bytes()) {
                return Some((
                    String::from_utf8_lossy(&bytes[..i]).into_owned(),
                    op.len(),
                    negated,
                    i,
                ));
            }
        }
        i += 1;
    }
    None
}

fn unescape(value: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('\\' | ',' | '=')) => out.push(n),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence in '{value}'"
                    ));
                }
            },
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character '{c}' in '{value}'"
                ));
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selectors_parse_with_escapes() {
        let t = parse_field_selector("a=b,c==d,e!=f\\,g,,h=").expect("valid");
        assert_eq!(t.len(), 4);
        assert_eq!(t[2].value, "f,g");
        assert!(t[2].negated);
        assert_eq!(t[3].value, "");
        assert!(parse_field_selector("abc").is_err());
        assert!(parse_field_selector("a=b\\x").is_err());
        let t = parse_field_selector("é=ü,\\é=2").expect("unicode");
        assert_eq!(t[0].label, "é");
        assert_eq!(t[0].value, "ü");
    }

    #[test]
    fn label_selectors_match() {
        let sel =
            LabelSelector::parse("app=web,tier in (a, b),!gone,env!=prod,has").expect("valid");
        let mut labels: BTreeMap<String, String> = [("app", "web"), ("tier", "b"), ("has", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(sel.matches(&labels));
        labels.insert("gone".into(), "x".into());
        assert!(!sel.matches(&labels));
        assert!(LabelSelector::parse("a=(").is_err());
        assert!(LabelSelector::parse("a,,b").is_err());
    }
}
