//! Writing answers: JSON bodies with their code, and `Warning` headers. A leaf every part of
//! the API server (the handlers, the Status errors, discovery, the fault layer) writes through.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// The body of every response: whole (most verbs) or streamed (watch).
pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A JSON response.
pub(crate) fn json_response(code: u16, body: &Value) -> http::Response<ResponseBody> {
    json_bytes_response(code, Bytes::from(json_bytes(body)))
}

/// `value` as JSON text: the bytes `serde_json::to_vec` writes (this module's tests compare
/// them), with strings that need no escape copied whole instead of byte by byte.
pub(crate) fn json_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_json(&mut out, value);
    out
}

/// [`json_bytes`] of an object, with where its `metadata.managedFields` value lies in the text
/// (`None`: it has none).
pub(crate) fn json_bytes_marking_managed_fields(
    value: &Value,
) -> (Vec<u8>, Option<std::ops::Range<usize>>) {
    let mut out = Vec::with_capacity(256);
    let mut span = None;
    let Value::Object(map) = value else {
        write_json(&mut out, value);
        return (out, span);
    };
    write_object(&mut out, map, |out, key, item| match item {
        Value::Object(meta) if key == "metadata" => {
            write_object(out, meta, |out, key, item| {
                let start = out.len();
                write_json(out, item);
                if key == "managedFields" {
                    span = Some(start..out.len());
                }
            });
        }
        _ => write_json(out, item),
    });
    (out, span)
}

/// Appends `map` as a JSON object, each value written by `item` (given the key).
fn write_object(
    out: &mut Vec<u8>,
    map: &serde_json::Map<String, Value>,
    mut item: impl FnMut(&mut Vec<u8>, &str, &Value),
) {
    out.push(b'{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, key);
        out.push(b':');
        item(out, key, value);
    }
    out.push(b'}');
}

/// Appends `value` as JSON text (see [`json_bytes`]).
pub(crate) fn write_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // serde_json's own number writing (writing into a Vec cannot fail).
        Value::Number(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::String(s) => write_json_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map, |out, _, item| write_json(out, item)),
    }
}

/// Appends `text` as a JSON string.
pub(crate) fn write_json_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        // serde_json's escaping (writing into a Vec cannot fail).
        let _ = serde_json::to_writer(&mut *out, text);
        return;
    }
    // The word-wise check never misses a byte the table escapes.
    debug_assert!(!text.bytes().any(|b| ESCAPED[usize::from(b)]), "{text:?}");
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// The bytes JSON escapes: control characters, the quote and the backslash.
const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Whether a string has a byte JSON escapes (a control character, a quote or a backslash),
/// eight bytes at a time: a string of 8 bytes or more as whole words and a last word that
/// overlaps the one before it, one of 4 to 7 bytes as two overlapping halves of one word,
/// a shorter one byte by byte.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Some byte of `x` below `n` (n <= 128); never a false negative.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS != 0;
    let escapes =
        |x: u64| below(x, 0x20) || below(x ^ (ONES * 0x22), 1) || below(x ^ (ONES * 0x5c), 1);
    let len = bytes.len();
    if len < 4 {
        return bytes.iter().any(|&b| ESCAPED[usize::from(b)]);
    }
    if len < 8 {
        let half = |at: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&bytes[at..at + 4]);
            u64::from(u32::from_le_bytes(word))
        };
        return escapes(half(0) | (half(len - 4) << 32));
    }
    let word = |chunk: &[u8]| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        u64::from_le_bytes(word)
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        if escapes(word(chunk)) {
            return true;
        }
    }
    // The last bytes, in the word that ends the string (it overlaps the one before).
    !chunks.remainder().is_empty() && escapes(word(&bytes[len - 8..]))
}

/// A JSON response whose body is already serialised.
pub(crate) fn json_bytes_response(code: u16, body: Bytes) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(Full::new(body).boxed());
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A plain-text response (the real server's `404 page not found`, the overload filter's text).
pub(crate) fn text_response(code: u16, text: Bytes) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(Full::new(text).boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
}

/// Adds `Warning: 299 - "..."` headers.
pub(crate) fn add_warnings(response: &mut http::Response<ResponseBody>, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - {}", Value::String(w.clone()));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append(http::header::WARNING, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn value() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            "[a-z]{0,20}",
            "\\PC{0,12}",
            any::<String>(),
            Just("tab\there \"quoted\" back\\slash\u{1f}\u{7f}é".to_string()),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            text.clone().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(text.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn json_text_is_what_serde_json_writes(v in value()) {
            prop_assert_eq!(json_bytes(&v), serde_json::to_vec(&v).expect("serialises"));
        }

        /// The marking writer writes the same text, and the span it marks is the text of
        /// `metadata.managedFields` (there when that is, and only then).
        #[test]
        fn the_marked_span_is_the_managed_fields_text(
            v in value(),
            managed in value(),
            keys in prop::collection::vec("[a-z]{1,14}", 0..4),
            place in 0..3u8,
        ) {
            let mut object = serde_json::Map::new();
            let mut meta = serde_json::Map::new();
            for key in &keys {
                meta.insert(key.clone(), v.clone());
                object.insert(key.clone(), v.clone());
            }
            match place {
                0 => {
                    meta.insert("managedFields".into(), managed.clone());
                }
                1 => {
                    object.insert("managedFields".into(), managed.clone());
                }
                _ => {}
            }
            object.insert("metadata".into(), Value::Object(meta));
            let object = Value::Object(object);
            let (text, span) = json_bytes_marking_managed_fields(&object);
            prop_assert_eq!(&text, &json_bytes(&object));
            let expected = (place == 0).then(|| json_bytes(&managed));
            prop_assert_eq!(span.map(|s| text[s].to_vec()), expected);
        }
    }

    #[test]
    fn every_escaped_byte_is_found_wherever_it_sits() {
        // 3: byte by byte; 5 and 7: two halves of a word; 8: one word; 17: two words and a tail.
        for (byte, len) in (0u8..=0x7f).flat_map(|b| [3, 5, 7, 8, 17].map(|len| (b, len))) {
            for at in 0..len {
                let mut text = "x".repeat(len);
                text.replace_range(at..at + 1, &char::from(byte).to_string());
                let v = Value::String(text);
                assert_eq!(json_bytes(&v), serde_json::to_vec(&v).expect("serialises"));
            }
        }
    }
}
