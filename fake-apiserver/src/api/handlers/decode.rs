//! Body decoding and field validation: a create/update body by its Content-Type, decoded
//! through the k8s-openapi type, with `fieldValidation` (Ignore, Warn, Strict) applied to the
//! fields that did not survive decoding.

use serde_json::{Value, json};

use crate::api::Request;
use crate::api::events;
use crate::api::resources::{Decoded, ResourceDef, View};
use crate::api::status::ApiError;

/// Decodes a create/update body by its Content-Type.
pub(super) fn decode_body(def: &ResourceDef, req: &Request) -> Result<Value, ApiError> {
    decode_body_skipping(def, req, None).map(|(value, _)| value)
}

/// [`decode_body`], where a JSON body whose `metadata.managedFields` is the text
/// `managed_fields` (the stored object's, as [`Stored::managed_fields_json`] gives it) is
/// read without it: `true` then. Those entries were decoded and normalised when they were
/// stored, so the update can take the stored ones instead of reading them again (often the
/// largest part of an object).
///
/// [`Stored::managed_fields_json`]: crate::api::store::Stored::managed_fields_json
pub(super) fn decode_body_skipping(
    def: &ResourceDef,
    req: &Request,
    managed_fields: Option<&[u8]>,
) -> Result<(Value, bool), ApiError> {
    let mut skipped = false;
    let value: Value = match &*req.content_type() {
        crate::api::protobuf::MEDIA_TYPE => {
            let envelope = crate::api::protobuf::envelope(&req.body).map_err(|e| {
                ApiError::bad_request(format!(
                    "couldn't get version/kind; protobuf decode error: {e}"
                ))
            })?;
            let mut value = (def.protobuf)(&envelope.raw).map_err(|e| {
                ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: {e}",
                    def.kind, def.version, def.kind
                ))
            })?;
            if let Some(map) = value.as_object_mut() {
                map.insert("apiVersion".into(), json!(envelope.api_version));
                map.insert("kind".into(), json!(envelope.kind));
            }
            value
        }
        "" | "application/json" => match plain_json_skipping(&req.body, managed_fields) {
            Some((value, left_out)) => {
                #[cfg(debug_assertions)]
                {
                    let mut full = serde_json::from_slice::<Value>(&req.body).ok();
                    if left_out {
                        let taken = full
                            .as_mut()
                            .and_then(|v| v.get_mut("metadata")?.as_object_mut())
                            .and_then(|m| m.remove("managedFields"));
                        assert_eq!(
                            taken,
                            managed_fields.and_then(|t| serde_json::from_slice(t).ok()),
                            "the managedFields left out are not the stored ones"
                        );
                    }
                    assert_eq!(
                        full.as_ref(),
                        Some(&value),
                        "the plain JSON reader and serde_json disagree"
                    );
                }
                skipped = left_out;
                value
            }
            None => serde_json::from_slice(&req.body).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
            })?,
        },
        "application/yaml" => {
            let text = std::str::from_utf8(&req.body).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; yaml parse error: {e}"))
            })?;
            serde_saphyr::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; yaml parse error: {e}"))
            })?
        }
        _ => return Err(ApiError::unsupported_body_type()),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: json: cannot unmarshal into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }",
        ));
    }
    Ok((value, skipped))
}

/// `bytes` read as `serde_json::from_slice::<Value>` reads them, for the JSON clients send:
/// objects, lists, strings without escapes, non-negative integers, booleans and nulls. `None`
/// for anything else (an escape, a negative or fractional number, a syntax error, ...): then
/// serde_json reads the body (and words the error). Faster for what it reads: an object's
/// fields are collected and its map built in one go (`FromIterator`, which keeps the last of
/// duplicate keys, as inserting them one by one does), not inserted one by one; the text is
/// checked as UTF-8 once, not string by string.
#[cfg(test)]
fn plain_json(bytes: &[u8]) -> Option<Value> {
    plain_json_skipping(bytes, None).map(|(value, _)| value)
}

/// [`plain_json`], leaving out a `metadata.managedFields` whose text is `managed_fields`
/// exactly (`true` then). `None` as well when such a value was left out of an object with
/// more than one `metadata` or `managedFields` (the last would count, as in serde_json).
fn plain_json_skipping(bytes: &[u8], managed_fields: Option<&[u8]>) -> Option<(Value, bool)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut reader = PlainJson {
        text,
        at: 0,
        managed_fields,
        metadata_next: false,
        metadata_keys: 0,
        managed_fields_keys: 0,
        skipped: false,
    };
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.at != text.len()
        || (reader.skipped && (reader.metadata_keys > 1 || reader.managed_fields_keys > 1))
    {
        return None;
    }
    Some((value, reader.skipped))
}

/// The reader of [`plain_json`]: the text and the position in it, and what it knows of the
/// `metadata.managedFields` it may leave out ([`plain_json_skipping`]).
struct PlainJson<'a> {
    text: &'a str,
    at: usize,
    /// The text of a `metadata.managedFields` to leave out.
    managed_fields: Option<&'a [u8]>,
    /// The value read next is the top-level object's `metadata`.
    metadata_next: bool,
    /// How many `metadata` keys the top-level object has, and `managedFields` keys those.
    metadata_keys: u32,
    managed_fields_keys: u32,
    /// A `metadata.managedFields` was left out.
    skipped: bool,
}

impl<'a> PlainJson<'a> {
    /// Nesting deeper than this is left to serde_json (its recursion limit is 128).
    const MAX_DEPTH: usize = 100;

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        self.skip_whitespace();
        let metadata = std::mem::take(&mut self.metadata_next);
        match self.peek()? {
            b'{' => self.object(depth + 1, metadata),
            b'[' => self.list(depth + 1),
            b'"' => self.string().map(|s| Value::String(s.to_owned())),
            b't' => self.word("true", Value::Bool(true)),
            b'f' => self.word("false", Value::Bool(false)),
            b'n' => self.word("null", Value::Null),
            b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    fn word(&mut self, word: &str, value: Value) -> Option<Value> {
        let end = self.at + word.len();
        (self.text.as_bytes().get(self.at..end)? == word.as_bytes()).then(|| {
            self.at = end;
            value
        })
    }

    /// A non-negative integer that fits a `u64`, without a leading zero, not followed by a
    /// fraction or an exponent (serde_json reads those as floats).
    fn integer(&mut self) -> Option<Value> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut end = start;
        let mut n: u64 = 0;
        while let Some(&b @ b'0'..=b'9') = bytes.get(end) {
            n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            end += 1;
        }
        if (bytes[start] == b'0' && end - start > 1)
            || matches!(bytes.get(end), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        self.at = end;
        Some(Value::Number(n.into()))
    }

    /// A string without escapes or control characters (at its opening quote).
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        let rest = self.text.as_bytes().get(start..)?;
        let len = special_byte(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are next to an ASCII quote: on character boundaries.
        self.text.get(start..start + len)
    }

    fn list(&mut self, depth: usize) -> Option<Value> {
        if depth > Self::MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(Value::Array(items));
                }
                _ => return None,
            }
        }
    }

    /// An object (`metadata`: the top-level object's `metadata`).
    fn object(&mut self, depth: usize, metadata: bool) -> Option<Value> {
        if depth > Self::MAX_DEPTH {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(Value::Object(serde_json::Map::new()));
        }
        let mut fields: Vec<(String, Value)> = Vec::with_capacity(16);
        loop {
            self.skip_whitespace();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            if depth == 1 && key == "metadata" {
                self.metadata_keys += 1;
                self.metadata_next = true;
            }
            let skip = if metadata && key == "managedFields" {
                self.managed_fields_keys += 1;
                self.skip_whitespace();
                self.managed_fields.filter(|text| {
                    !text.is_empty() && self.text.as_bytes()[self.at..].starts_with(text)
                })
            } else {
                None
            };
            match skip {
                Some(text) => {
                    self.at += text.len();
                    self.skipped = true;
                }
                None => {
                    let value = self.value(depth)?;
                    fields.push((key.to_owned(), value));
                }
            }
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(Value::Object(fields.into_iter().collect()));
                }
                _ => return None,
            }
        }
    }
}

/// Where the first quote, backslash or control character of `bytes` is: skipped eight bytes
/// at a time while a word has none (the test may see one that is not there, never misses
/// one), then found byte by byte.
fn special_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Some byte of `x` below `n` (n <= 128); never a false negative.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS != 0;
    let mut at = 0;
    while let Some(word) = bytes
        .get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        let x = u64::from_le_bytes(word);
        if below(x, 0x20) || below(x ^ (ONES * 0x22), 1) || below(x ^ (ONES * 0x5c), 1) {
            break;
        }
        at += 8;
    }
    bytes
        .get(at..)?
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

/// A write body turned into the stored form, with unknown-field warnings.
pub(super) struct Prepared {
    pub obj: Value,
    pub warnings: Vec<String>,
}

/// Takes `metadata.managedFields` out of a write body when it is exactly the stored
/// object's (decoded and normalised when it was stored), so it skips the decoding round trip
/// of [`prepare_body`] (often the largest part of an object); [`put_back_managed_fields`]
/// returns it afterwards. `None`, and `body` untouched, otherwise.
pub(super) fn take_unchanged_managed_fields(body: &mut Value, stored: &Value) -> Option<Value> {
    let stored = stored.get("metadata")?.get("managedFields")?;
    let meta = body.get_mut("metadata")?.as_object_mut()?;
    if meta.get("managedFields")? != stored {
        return None;
    }
    meta.remove("managedFields")
}

/// Puts back what [`take_unchanged_managed_fields`] took out.
pub(super) fn put_back_managed_fields(obj: &mut Value, kept: Option<Value>) {
    if let Some(managed) = kept
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("managedFields".into(), managed);
    }
}

/// Checks kind/apiVersion, converts an events.k8s.io body, decodes it through the k8s-openapi
/// type and applies `fieldValidation`.
pub(super) fn prepare_body(
    def: &ResourceDef,
    body: Value,
    req: &Request,
) -> Result<Prepared, ApiError> {
    if let Some(v) = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        && !def.api_version_is(v)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    if let Some(k) = body
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        && k != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            def.kind
        )));
    }
    let mut body = body;
    if let Some(map) = body.as_object_mut() {
        // A core-form body that names this row's apiVersion and kind keeps them: decoding
        // through the row's type (whose apiVersion and kind they are) writes them back the
        // same, so taking them out and writing them again would only copy them.
        let keeps = |key: &str, same: &dyn Fn(&str) -> bool| {
            def.view != View::EventsV1 && map.get(key).and_then(Value::as_str).is_some_and(same)
        };
        let keep_api_version = keeps("apiVersion", &|v| def.api_version_is(v));
        let keep_kind = keeps("kind", &|k| k == def.kind);
        if !keep_api_version {
            map.remove("apiVersion");
        }
        if !keep_kind {
            map.remove("kind");
        }
    }
    let (core_body, mut unknown) = match def.view {
        View::EventsV1 => events::v1_to_core(body),
        View::Plain | View::CoreEvent => (body, Vec::new()),
    };
    let Decoded {
        obj,
        unknown: mut diff,
    } = (def.normalize)(core_body).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            def.kind, def.version, def.kind
        ))
    })?;
    if def.view == View::EventsV1 {
        diff = diff
            .into_iter()
            .map(|p| {
                for (core, v1) in crate::api::events::RENAMES {
                    if p == *core || p.starts_with(&format!("{core}.")) {
                        return format!("{v1}{}", &p[core.len()..]);
                    }
                }
                p
            })
            .collect();
    }
    unknown.extend(diff);
    let mut warnings = Vec::new();
    match req.query.get("fieldValidation").unwrap_or("Warn") {
        "Strict" if !unknown.is_empty() => {
            let list: Vec<String> = unknown
                .iter()
                .map(|u| format!("unknown field \"{u}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )));
        }
        "Strict" | "Ignore" => {}
        "Warn" | "" => {
            warnings = unknown
                .iter()
                .map(|u| format!("unknown field \"{u}\""))
                .collect()
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got \"{other}\""
            )));
        }
    }
    Ok(Prepared { obj, warnings })
}

/// The body's `metadata.namespace` against the request's, as create and update both check
/// it: a namespaced kind takes the URL's when the body has none and refuses a different one;
/// a cluster-scoped kind has none.
pub(super) fn reconcile_namespace(
    meta: &mut serde_json::Map<String, Value>,
    namespaced: bool,
    url_ns: &str,
) -> Result<(), ApiError> {
    if !namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    match meta.get("namespace").and_then(Value::as_str).unwrap_or("") {
        "" => {
            meta.insert("namespace".into(), json!(url_ns));
            Ok(())
        }
        body_ns if body_ns == url_ns => Ok(()),
        _ => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::plain_json;
    use serde_json::Value;

    /// What the plain reader reads is what serde_json reads; what it leaves is left whole.
    #[test]
    fn the_plain_reader_reads_what_serde_json_reads() {
        let read = [
            r#"{"a":1,"b":{"c":"d","e":[1,2,{}]},"f":true,"g":null,"h":false}"#,
            " { \"z\" : [ ] , \"a\" : { } }\n",
            r#"{"a":1,"a":2,"b":"x","a":3}"#,
            "{\"n\":0,\"m\":18446744073709551615,\"s\":\"é ü \u{7f}\"}",
            r#"[1,"2",[3]]"#,
            r#""text""#,
            "7",
        ];
        for text in read {
            let expected: Value = serde_json::from_str(text).expect("valid JSON");
            assert_eq!(plain_json(text.as_bytes()), Some(expected), "{text}");
        }
        let left = [
            "",
            "{",
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":"\n"}"#,
            r#"{"a":"\u007f"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":-1}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":01}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":tru}"#,
            r#"{a:1}"#,
        ];
        for text in left {
            assert_eq!(plain_json(text.as_bytes()), None, "{text}");
        }
        assert_eq!(plain_json(b"{\"a\":\"\xff\"}"), None);
        // Strings of every length, with the quote, an escape or a control byte anywhere.
        for len in 0..20 {
            for at in 0..len {
                for byte in [b'"', b'\\', 0x01, 0x1f] {
                    let mut text = vec![b'x'; len];
                    text[at] = byte;
                    assert_eq!(super::special_byte(&text), Some(at), "{len} {at} {byte}");
                }
            }
            assert_eq!(super::special_byte(&vec![b'x'; len]), None);
        }
        let deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
        assert_eq!(plain_json(deep.as_bytes()), None);
    }

    /// A `metadata.managedFields` of exactly the given text is left out, and nothing else:
    /// not elsewhere, not another text, not where a later key would count instead.
    #[test]
    fn the_stored_managed_fields_text_is_left_out_of_metadata_only() {
        use super::plain_json_skipping;
        let managed = br#"[{"manager":"m"}]"#;
        let read = |text: &str| plain_json_skipping(text.as_bytes(), Some(managed));
        let left_out = |text: &str, rest: &str| {
            let expected: Value = serde_json::from_str(rest).expect("valid JSON");
            assert_eq!(read(text), Some((expected, true)), "{text}");
        };
        left_out(
            r#"{"metadata":{"a":1,"managedFields":[{"manager":"m"}],"z":2},"spec":{}}"#,
            r#"{"metadata":{"a":1,"z":2},"spec":{}}"#,
        );
        left_out(
            r#"{ "metadata" : { "managedFields" : [{"manager":"m"}] } }"#,
            r#"{"metadata":{}}"#,
        );
        let kept = |text: &str| {
            let expected: Value = serde_json::from_str(text).expect("valid JSON");
            assert_eq!(read(text), Some((expected, false)), "{text}");
        };
        // Another text, the same value written otherwise, or somewhere else than metadata.
        kept(r#"{"metadata":{"managedFields":[{"manager":"n"}]}}"#);
        kept(r#"{"metadata":{"managedFields":[ {"manager":"m"}]}}"#);
        kept(r#"{"managedFields":[{"manager":"m"}],"metadata":{}}"#);
        kept(r#"{"spec":{"metadata":{"managedFields":[{"manager":"m"}]}}}"#);
        kept(r#"{"metadata":{"labels":{"managedFields":"x"}}}"#);
        // A text that only starts the same.
        assert_eq!(
            read(r#"{"metadata":{"managedFields":[{"manager":"m"}]x}}"#),
            None
        );
        // A later `metadata` or `managedFields` would count: read whole instead.
        for text in [
            r#"{"metadata":{"managedFields":[{"manager":"m"}],"managedFields":[]}}"#,
            r#"{"metadata":{"managedFields":[]},"metadata":{"managedFields":[{"manager":"m"}]}}"#,
            r#"{"metadata":{"managedFields":[{"manager":"m"}]},"metadata":{}}"#,
        ] {
            assert_eq!(read(text), None, "{text}");
            assert!(serde_json::from_str::<Value>(text).is_ok());
        }
        // Nothing to leave out: read as the plain reader reads.
        let text = r#"{"metadata":{"managedFields":[{"manager":"m"}]}}"#;
        assert_eq!(
            plain_json_skipping(text.as_bytes(), None),
            plain_json(text.as_bytes()).map(|v| (v, false))
        );
    }
}
