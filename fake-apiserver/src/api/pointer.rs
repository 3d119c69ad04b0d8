//! JSON Pointer lookups without allocation: serde_json's `Value::pointer` builds two new
//! strings per path token (to undo `~1`/`~0` escapes), which made pointer lookups a large
//! share of every write's cost here. [`Pointer::ptr`] reads the same paths, borrowing the
//! tokens, and falls back to `Value::pointer` only for a path with an escape.

use serde_json::Value;

/// `ptr`: the value at a JSON Pointer (RFC 6901), as `Value::pointer` finds it: for
/// `{"spec": {"ports": [{"port": 80}]}}`, `ptr("/spec/ports/0/port")` is `80` (this module's
/// test compares the two on every kind of path).
pub trait Pointer {
    /// The value at `pointer`, or `None`; identical to `Value::pointer`.
    fn ptr(&self, pointer: &str) -> Option<&Value>;
}

impl Pointer for Value {
    fn ptr(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        // The tokens found by one pass over the bytes (the paths are short: a byte loop costs
        // less than `contains` and `split`, which each set up a search).
        let bytes = rest.as_bytes();
        let mut target = self;
        let mut start = 0;
        for i in 0..=bytes.len() {
            match bytes.get(i) {
                Some(b'~') => return self.pointer(pointer),
                Some(b'/') | None => {
                    // Splitting at an ASCII byte keeps both sides valid UTF-8.
                    let token = &rest[start..i];
                    target = match target {
                        Value::Object(map) => map.get(token),
                        Value::Array(list) => index(token).and_then(|i| list.get(i)),
                        _ => None,
                    }?;
                    start = i + 1;
                }
                Some(_) => {}
            }
        }
        Some(target)
    }
}

/// A list index as serde_json reads one: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::Pointer;
    use serde_json::json;

    #[test]
    fn finds_what_value_pointer_finds() {
        let v = json!({
            "a": {"b": [10, {"c": "x"}], "": 1, "d/e": 2, "f~g": 3, "h": null},
            "list": [0, 1, 2],
        });
        for pointer in [
            "",
            "/",
            "/a",
            "/a/b",
            "/a/b/0",
            "/a/b/1/c",
            "/a/b/01",
            "/a/b/+1",
            "/a/b/2",
            "/a/",
            "/a/d~1e",
            "/a/f~0g",
            "/a/h",
            "/a/h/x",
            "/list/2",
            "/list/-1",
            "a",
            "/missing/x",
            "/a/b/1/c/d",
            "/list/0/0",
        ] {
            assert_eq!(v.ptr(pointer), v.pointer(pointer), "{pointer}");
        }
    }
}
