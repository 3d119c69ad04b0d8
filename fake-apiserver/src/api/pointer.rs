//! JSON Pointer lookups without allocation: serde_json's `Value::pointer` builds two new
//! strings per path token (to undo `~1`/`~0` escapes), which made pointer lookups a large
//! share of every write's cost here. [`Pointer::ptr`] reads the same paths, borrowing the
//! tokens, and falls back to `Value::pointer` only for a path with an escape.

use serde_json::{Map, Value};

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
        let mut rest = pointer.strip_prefix('/')?;
        // The tokens between the `/`s, found byte by byte (paths are short: a `str::split`
        // searcher costs more than the scan); a path with an escape is left to serde_json.
        let mut target = self;
        loop {
            let end = rest.bytes().position(|b| b == b'/' || b == b'~');
            if end.is_some_and(|end| rest.as_bytes()[end] == b'~') {
                return self.pointer(pointer);
            }
            let token = end.map_or(rest, |end| &rest[..end]);
            target = match target {
                Value::Object(map) => map.get(token)?,
                Value::Array(list) => index(token).and_then(|i| list.get(i))?,
                _ => return None,
            };
            match end {
                Some(end) => rest = &rest[end + 1..],
                None => return Some(target),
            }
        }
    }
}

/// The values of `keys` in `map`, what `keys.map(|key| map.get(key))` gives, found in one
/// walk of the map in key order instead of one search per key (a search compares each key it
/// passes in full; the walk decides most steps by a first byte). `keys` are sorted and
/// distinct; the walk stops at the last of them, so it suits the small maps of an object's
/// top level and its metadata.
pub fn get_sorted<'a, const N: usize>(
    map: &'a Map<String, Value>,
    keys: [&str; N],
) -> [Option<&'a Value>; N] {
    debug_assert!(keys.is_sorted_by(|a, b| a < b), "{keys:?}");
    let mut found = [None; N];
    let mut next = 0;
    if N > 0 {
        for (key, value) in map {
            // Past the keys before this one (absent from the map).
            while next < N && before(keys[next], key) {
                next += 1;
            }
            if next == N {
                break;
            }
            if keys[next] == key {
                found[next] = Some(value);
                next += 1;
                if next == N {
                    break;
                }
            }
        }
    }
    #[cfg(debug_assertions)]
    for (key, value) in keys.iter().zip(found) {
        debug_assert_eq!(value, map.get(*key), "{key}");
    }
    found
}

/// [`get_sorted`] on `value`'s fields; all `None` when it is not an object.
pub fn fields_sorted<'a, const N: usize>(
    value: Option<&'a Value>,
    keys: [&str; N],
) -> [Option<&'a Value>; N] {
    match value {
        Some(Value::Object(map)) => get_sorted(map, keys),
        _ => [None; N],
    }
}

/// The text of a value found (`None` when absent or not a string).
pub fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

/// Whether `a` sorts before `b` (as `a < b`), decided by the first bytes when they differ.
fn before(a: &str, b: &str) -> bool {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x < y,
        _ => a < b,
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

    #[test]
    fn get_sorted_finds_what_get_finds() {
        let v = json!({"": 0, "a": 1, "ab": 2, "b": 3, "ba": 4, "metadata": 5, "z": 6});
        let map = v.as_object().expect("an object");
        let keys = [
            "", "a", "aa", "ab", "b", "bb", "kind", "metadata", "y", "z", "zz",
        ];
        // Every sorted choice of three of them.
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate().skip(i + 1) {
                for c in keys.iter().skip(j + 1) {
                    let found = super::get_sorted(map, [*a, *b, *c]);
                    assert_eq!(
                        found,
                        [map.get(*a), map.get(*b), map.get(*c)],
                        "{a} {b} {c}"
                    );
                }
            }
        }
        assert_eq!(super::fields_sorted(Some(&json!([1])), ["a"]), [None]);
        assert_eq!(super::fields_sorted(None, ["a", "b"]), [None, None]);
    }
}
