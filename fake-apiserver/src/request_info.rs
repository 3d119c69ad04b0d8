//! What a request asks for, parsed once: the verb, group/version/resource, namespace, name,
//! subresource and query of a request, derived as kube-apiserver's `RequestInfoFactory` does.
//!
//! The control layer parses a request into a [`RequestInfo`] on arrival and puts it in the
//! request's extensions; the request log, the fault rules and the API server's routing all
//! read that one value ([`RequestInfo::of`]), so they cannot disagree. This module also owns
//! the one percent-decoder and the one query parser ([`Query`]).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A Kubernetes API verb, as the real server's authorizer and audit log name it.
///
/// ```
/// use fake_apiserver::control::Verb;
/// assert_eq!("deletecollection".parse::<Verb>(), Ok(Verb::DeleteCollection));
/// assert_eq!(Verb::Watch.as_str(), "watch");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection (or one object by field selector) with `?watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH (any patch type).
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// The lower-case name the real server uses (`get`, `list`, `watch`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the verbs of [`Verb`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown verb {0:?} (expected get, list, watch, create, update, patch, delete or deletecollection)"
)]
pub struct UnknownVerb(pub String);

impl FromStr for Verb {
    type Err = UnknownVerb;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "get" => Verb::Get,
            "list" => Verb::List,
            "watch" => Verb::Watch,
            "create" => Verb::Create,
            "update" => Verb::Update,
            "patch" => Verb::Patch,
            "delete" => Verb::Delete,
            "deletecollection" => Verb::DeleteCollection,
            other => return Err(UnknownVerb(other.to_string())),
        })
    }
}

/// What a request asks for, derived from method, path and query like the real server does.
///
/// Non-resource requests (`/version`, `/api`, `/openapi/v3`, ...) have no verb and no resource.
///
/// ```
/// use fake_apiserver::control::{RequestInfo, Verb};
/// let info = RequestInfo::parse(&http::Method::GET, "/api/v1/namespaces/ns/events", Some("watch=1"));
/// assert_eq!(info.verb, Some(Verb::Watch));
/// assert_eq!(info.resource.as_deref(), Some("events"));
/// assert_eq!(info.namespace.as_deref(), Some("ns"));
///
/// let info = RequestInfo::parse(&http::Method::GET, "/apis/storage.k8s.io/v1/volumeattachments/va1", None);
/// assert_eq!((info.verb, info.group.as_str(), info.name.as_deref()), (Some(Verb::Get), "storage.k8s.io", Some("va1")));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// The verb; `None` for non-resource requests and methods the API does not serve.
    pub verb: Option<Verb>,
    /// API group (`""` for core).
    pub group: String,
    /// API version (`v1`).
    pub version: String,
    /// Resource plural (`events`, `persistentvolumeclaims`).
    pub resource: Option<String>,
    /// Subresource (`status`), if any.
    pub subresource: Option<String>,
    /// Namespace from the path, if any.
    pub namespace: Option<String>,
    /// Object name from the path (or from an exact `metadata.name` field selector on list/watch).
    pub name: Option<String>,
    /// The object name as the path gives it (never from a field selector).
    pub path_name: Option<String>,
    /// The path used the `/watch/` prefix.
    pub watch_path: bool,
    /// The path has segments past `{resource}/{name}/{subresource}` (no route serves it).
    pub extra_segments: bool,
    /// The query, decoded.
    pub query: Query,
}

impl RequestInfo {
    /// The request's info: the one the control layer put in its extensions, or parsed now.
    pub fn of<B>(request: &http::Request<B>) -> Self {
        match request.extensions().get::<RequestInfo>() {
            Some(info) => info.clone(),
            None => Self::parse(
                request.method(),
                request.uri().path(),
                request.uri().query(),
            ),
        }
    }

    /// Classifies a request. `query` is the raw query string (without `?`).
    pub fn parse(method: &http::Method, path: &str, query: Option<&str>) -> Self {
        let mut info = RequestInfo {
            query: Query::parse(query.unwrap_or("")),
            ..RequestInfo::default()
        };
        let (decoded, count) = read_segments(path);
        let parts: &[Cow<'_, str>] = &decoded[..count];
        let mut rest: &[Cow<'_, str>] = match parts.first().map(|part| &**part) {
            Some("api") if parts.len() >= 2 => {
                info.version = parts[1].to_string();
                &parts[2..]
            }
            Some("apis") if parts.len() >= 3 => {
                info.group = parts[1].to_string();
                info.version = parts[2].to_string();
                &parts[3..]
            }
            _ => return info,
        };
        if rest.is_empty() {
            // Discovery of a group version: a non-resource request.
            return info;
        }
        let mut verb = match *method {
            http::Method::GET | http::Method::HEAD => Verb::Get,
            http::Method::POST => Verb::Create,
            http::Method::PUT => Verb::Update,
            http::Method::PATCH => Verb::Patch,
            http::Method::DELETE => Verb::Delete,
            _ => {
                // The real server still classifies the resource; the verb is unknown.
                Verb::Get
            }
        };
        let known_method = matches!(
            *method,
            http::Method::GET
                | http::Method::HEAD
                | http::Method::POST
                | http::Method::PUT
                | http::Method::PATCH
                | http::Method::DELETE
        );
        if rest[0] == "watch" {
            if verb == Verb::Get {
                verb = Verb::Watch;
            }
            info.watch_path = true;
            rest = &rest[1..];
        }
        if rest.first().map(|part| &**part) == Some("namespaces") && rest.len() > 1 {
            info.namespace = Some(rest[1].to_string());
            // `/namespaces/{name}/status` and `/finalize` are subresources of the namespace.
            if rest.len() > 2 && rest[2] != "status" && rest[2] != "finalize" {
                rest = &rest[2..];
            }
        }
        if let Some(resource) = rest.first() {
            info.resource = Some(resource.to_string());
        }
        if let Some(name) = rest.get(1) {
            info.name = Some(name.to_string());
        }
        info.extra_segments = rest.len() > 3;
        if let Some(subresource) = rest.get(2) {
            info.subresource = Some(subresource.to_string());
        }
        if info.resource.as_deref() == Some("namespaces") {
            // A namespace object is cluster scoped: `/api/v1/namespaces/ns` names it.
            info.name = info.namespace.clone();
            if rest.len() == 1 {
                info.name = None;
            }
            info.namespace = info.name.clone();
        }
        info.path_name = info.name.clone();
        let params = &info.query.0;
        if info.name.is_none() && verb == Verb::Get {
            let watch = params
                .iter()
                .find(|(key, _)| key == "watch")
                .is_some_and(|(_, value)| query_bool(value));
            verb = if watch { Verb::Watch } else { Verb::List };
        }
        if matches!(verb, Verb::List | Verb::Watch)
            && info.name.is_none()
            && let Some((_, selector)) = params.iter().find(|(key, _)| key == "fieldSelector")
        {
            info.name = exact_name(selector);
        }
        if info.name.is_none() && verb == Verb::Delete {
            verb = Verb::DeleteCollection;
        }
        if known_method {
            info.verb = Some(verb);
        }
        info
    }
}

/// How many segments [`read_segments`] decodes: past them only "more than three after the
/// resource" matters, which they already show.
const READ_SEGMENTS: usize = 10;

/// The first [`READ_SEGMENTS`] non-empty decoded segments of `path` and how many there are:
/// [`path_segments`]' prefix, in an array rather than a list allocated per request. Segments
/// borrow from the path unless they hold an escape.
fn read_segments(path: &str) -> ([Cow<'_, str>; READ_SEGMENTS], usize) {
    let mut decoded: [Cow<'_, str>; READ_SEGMENTS] = Default::default();
    let mut count = 0;
    // Split on the bytes: a path's segments are short, and one byte loop beats a `memchr`
    // call per segment. `/` is ASCII, so every cut is a char boundary.
    let mut start = 0;
    for end in slash_offsets(path).chain(std::iter::once(path.len())) {
        let part = &path[start..end];
        start = end + 1;
        if part.is_empty() {
            continue;
        }
        if count == READ_SEGMENTS {
            break;
        }
        decoded[count] = percent_decode_cow(part);
        count += 1;
    }
    (decoded, count)
}

/// The byte offsets of the `/`s of `path`, in order.
fn slash_offsets(path: &str) -> impl Iterator<Item = usize> + '_ {
    path.bytes()
        .enumerate()
        .filter_map(|(at, byte)| (byte == b'/').then_some(at))
}

/// The name an exact `metadata.name=` / `==` term of a field selector requires, if any.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (key, value) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(key, _)| !key.ends_with('!'))?;
        (key.trim() == "metadata.name" && !value.is_empty() && !value.contains('/'))
            .then(|| value.to_string())
    })
}

/// Splits a query string into decoded pairs; empty pairs (a leading `&`) are skipped.
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    Query::parse(query).0
}

/// The decoded segments of a URL path (Go's `net/url`: `%XX` decoded, `+` kept).
pub fn path_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|part| !part.is_empty())
        .map(percent_decode)
        .collect()
}

/// Query parameters, decoded (`+` is a space, `%XX` escapes; empty pairs such as a leading
/// `&` are skipped), in order.
///
/// ```
/// use fake_apiserver::request_info::Query;
/// let q = Query::parse("&watch&fieldSelector=a%3Db+c");
/// assert!(q.flag("watch"));
/// assert_eq!(q.get("fieldSelector"), Some("a=b c"));
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (without `?`).
    pub fn parse(text: &str) -> Self {
        if text.is_empty() {
            // Most requests have no query.
            return Self::default();
        }
        Self(
            text.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (form_decode(key), form_decode(value))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the boolean parameter `key` is true, by the server's rule
    /// (`runtime.Convert_Slice_string_To_bool`): present and not `0` or `false` (any case).
    /// So `?watch`, `watch=True` and `watch=yes` are all true.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(query_bool)
    }
}

impl Query {
    /// The error the real server answers (400 BadRequest, Go's `strconv.ParseInt` text) when an
    /// integer option of `verb` is not a decimal `int64`: `limit` and `timeoutSeconds` of a
    /// list, watch or deletecollection (ListOptions), `gracePeriodSeconds` of a delete without
    /// a body (DeleteOptions; a body's options win over the query's). Only the first value of a
    /// repeated parameter is read, as the server's conversion does.
    ///
    /// ```
    /// use fake_apiserver::control::Verb;
    /// use fake_apiserver::request_info::Query;
    /// let query = Query::parse("limit=ten");
    /// assert_eq!(query.integer_error(Some(Verb::List), false).as_deref(),
    ///            Some("strconv.ParseInt: parsing \"ten\": invalid syntax"));
    /// assert_eq!(Query::parse("limit=-5").integer_error(Some(Verb::List), false), None);
    /// ```
    pub fn integer_error(&self, verb: Option<Verb>, has_body: bool) -> Option<String> {
        let names: &[&str] = match verb? {
            Verb::List | Verb::Watch => &["limit", "timeoutSeconds"],
            Verb::DeleteCollection if has_body => &["limit", "timeoutSeconds"],
            Verb::DeleteCollection => &["limit", "timeoutSeconds", "gracePeriodSeconds"],
            Verb::Delete if !has_body => &["gracePeriodSeconds"],
            _ => return None,
        };
        names.iter().find_map(|name| {
            let value = self.get(name)?;
            parse_int64(value).err()
        })
    }
}

/// Go's `strconv.ParseInt(value, 10, 64)`: an optional sign and decimal digits, or its error.
fn parse_int64(value: &str) -> Result<i64, String> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            go_quote(value)
        ));
    }
    value.parse::<i64>().map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(value)
        )
    })
}

/// Go's `strconv.Quote` for the texts a query holds (printable ASCII kept, the rest escaped).
fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The server's reading of a boolean query value: anything but `0` and `false` (any case) is
/// true (`runtime.Convert_Slice_string_To_bool`, and `RequestInfoFactory` for `watch`).
///
/// ```
/// use fake_apiserver::request_info::query_bool;
/// assert!(query_bool("") && query_bool("True") && query_bool("yes") && query_bool("1"));
/// assert!(!query_bool("0") && !query_bool("FALSE"));
/// ```
pub fn query_bool(value: &str) -> bool {
    value != "0" && !value.eq_ignore_ascii_case("false")
}

/// A query-string key or value: `+` is a space, then percent-decoding.
fn form_decode(text: &str) -> String {
    if text.contains('+') {
        percent_decode(&text.replace('+', " "))
    } else {
        percent_decode(text)
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are.
pub fn percent_decode(text: &str) -> String {
    percent_decode_cow(text).into_owned()
}

/// [`percent_decode`], borrowing `text` when it has no `%`.
fn percent_decode_cow(text: &str) -> Cow<'_, str> {
    // A byte loop: the texts are short (path segments, query values).
    if !text.bytes().any(|b| b == b'%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::{READ_SEGMENTS, RequestInfo, path_segments, read_segments};
    use proptest::prelude::*;

    proptest! {
        /// The per-request splitting reads the same segments as the plain `split('/')` one,
        /// for empty segments, trailing slashes, escapes (valid, invalid, cut short),
        /// non-ASCII text and more segments than it reads.
        #[test]
        fn read_segments_is_a_prefix_of_path_segments(
            path in "(/{0,2}([a-z]{0,3}|%2[fF]|%4|%zz|é|ü%C3%A9){0,3}){0,14}/?",
        ) {
            let (decoded, count) = read_segments(&path);
            let all = path_segments(&path);
            prop_assert_eq!(count, all.len().min(READ_SEGMENTS));
            for (read, whole) in decoded[..count].iter().zip(&all) {
                prop_assert_eq!(&**read, whole.as_str());
            }
        }
    }

    #[test]
    fn long_paths_are_classified_by_their_first_segments() {
        let cases = [
            ("/api/v1/namespaces/ns/pods/p/status", false),
            ("/api/v1/namespaces/ns/pods/p/status/x", true),
            ("/apis/g/v1/watch/namespaces/ns/things/t/status", false),
            ("/apis/g/v1/watch/namespaces/ns/things/t/status/x", true),
            (
                "/apis/g/v1/watch/namespaces/ns/things/t/status/x/y/z/w/v",
                true,
            ),
            ("//apis//g/v1/watch/namespaces/ns/things/t/status//", false),
        ];
        for (path, extra) in cases {
            let info = RequestInfo::parse(&http::Method::GET, path, None);
            assert_eq!(info.extra_segments, extra, "{path}");
            assert_eq!(
                info.name.as_deref(),
                Some(if path.contains("/p/") { "p" } else { "t" })
            );
            assert_eq!(info.subresource.as_deref(), Some("status"), "{path}");
            assert_eq!(info.namespace.as_deref(), Some("ns"), "{path}");
        }
    }
}
