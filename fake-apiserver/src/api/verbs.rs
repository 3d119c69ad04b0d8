//! The verbs: get, list, create, update (PUT), patch, delete and deletecollection, with the
//! real server's order of checks (fidelity doc §1.1, §1.3, §4, §5), plus fixture seeding.

use std::sync::Arc;

use super::pointer::Pointer;
use serde_json::{Map, Value, json};

use super::events::{self, EventApi};
use super::filter::{Filter, meta, view};
use super::resources::{self, ResourceDef, View};
use super::status::{self, ApiError, FieldError};
use super::store::{ChangeType, Key, State, Stored};
use super::{
    ApiServer, Request, ResponseBody, Target, add_warnings, json_response, partial_metadata, table,
    validation, watch,
};

type Response = http::Response<ResponseBody>;

fn event_api(def: &ResourceDef) -> EventApi {
    match def.view {
        View::EventsV1 => EventApi::V1,
        View::Plain => EventApi::Core,
    }
}

fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    map.entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
}

fn now_seconds(server: &ApiServer) -> String {
    let now = server.clock.now();
    jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

/// The ownership writer of a request (`managed.rs`).
fn writer<'a>(target: &'a Target, manager: &'a str, now: &'a str) -> super::managed::Writer<'a> {
    super::managed::Writer {
        manager,
        api_version: target.def.api_version(),
        subresource: target.subresource.as_deref().unwrap_or(""),
        now,
        has_status: target.def.has_status,
    }
}

/// The manager of a non-apply write: `?fieldManager=` or the User-Agent prefix.
fn update_manager(req: &Request) -> String {
    super::managed::update_manager(req.query.get("fieldManager"), req.header("user-agent"))
}

/// Routes a resource request to its verb.
pub(crate) async fn dispatch(
    server: &ApiServer,
    target: Target,
    req: Request,
) -> Result<Response, ApiError> {
    // DeleteOptions carry dryRun in the body (kube-rs puts it there).
    let body_dry_run = if req.method == http::Method::DELETE {
        serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|o| o.get("dryRun").and_then(Value::as_array).cloned())
            .and_then(|d| d.first().and_then(Value::as_str).map(str::to_string))
    } else {
        None
    };
    let dry_run = req
        .query
        .get("dryRun")
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .or(body_dry_run);
    let dry_run = dry_run.as_deref();
    if let Some(value) = dry_run {
        if req.method == http::Method::GET {
            return dispatch_verb(server, target, req).await;
        }
        if value != "All" {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{value}\": supported values: \"All\""
            )));
        }
        return dry_run_dispatch(server, target, req).await;
    }
    dispatch_verb(server, target, req).await
}

/// Runs a write against a scratch copy of the store; the answer carries the resourceVersion
/// the object has now (none for a create), as the real dry run does.
async fn dry_run_dispatch(
    server: &ApiServer,
    target: Target,
    req: Request,
) -> Result<Response, ApiError> {
    use http_body_util::BodyExt;
    let scratch = ApiServer {
        clock: server.clock.clone(),
        store: std::sync::Arc::new(server.store.scratch()),
    };
    let current_rv = target.name.as_ref().and_then(|name| {
        let state = server.store.lock();
        state
            .objects
            .get(&key_of(&target, name))
            .map(|o| meta(o, "resourceVersion").to_string())
    });
    let response = dispatch_verb(&scratch, target, req).await?;
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => {
            return Ok(http::Response::from_parts(
                parts,
                http_body_util::Full::new(bytes).boxed(),
            ));
        }
    };
    let is_object = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != "Status" && k != "Table" && !k.ends_with("List"));
    if is_object && let Some(m) = meta_mut(&mut value) {
        match &current_rv {
            Some(rv) => m.insert("resourceVersion".into(), json!(rv)),
            None => m.remove("resourceVersion"),
        };
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Ok(http::Response::from_parts(
        parts,
        http_body_util::Full::new(bytes::Bytes::from(bytes)).boxed(),
    ))
}

async fn dispatch_verb(
    server: &ApiServer,
    target: Target,
    req: Request,
) -> Result<Response, ApiError> {
    use http::Method;
    let has_name = target.name.is_some();
    let cluster_wide = target.def.namespaced && target.namespace.is_none();
    if target.def.strategy == super::strategy::Kind::Review {
        return match (&req.method, has_name) {
            (&Method::POST, false) => access_review(server, &target, &req),
            _ => Err(ApiError::method_not_allowed()),
        };
    }
    match (&req.method, has_name) {
        (&Method::GET, false) if req.query.flag("watch") || target.watch_path => {
            watch::serve(server, &target, &req)
        }
        (&Method::GET, true) if target.watch_path => watch::serve(server, &target, &req),
        (&Method::GET, false) => list(server, &target, &req),
        (&Method::GET, true) => get(server, &target, &req),
        (&Method::POST, false) if !cluster_wide && target.subresource.is_none() => {
            create(server, &target, &req)
        }
        (&Method::PUT, true) => update(server, &target, &req),
        (&Method::PATCH, true) => patch(server, &target, &req),
        (&Method::DELETE, true) if target.subresource.is_none() => delete(server, &target, &req),
        (&Method::DELETE, false)
            if !cluster_wide && target.def.verbs().contains(&"deletecollection") =>
        {
            delete_collection(server, &target, &req)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn key_of(target: &Target, name: &str) -> Key {
    (
        target.def.storage,
        target.namespace.clone().unwrap_or_default(),
        name.to_string(),
    )
}

fn respond(
    def: &ResourceDef,
    req: &Request,
    code: u16,
    stored: &Stored,
    now: jiff::Timestamp,
) -> Response {
    if !req.wants_metadata() && !req.wants_table() && super::filter::view_is_stored(def, stored) {
        // The view would be an identical copy: the stored object's JSON text (serialised once
        // per stored version, whatever the number of reads).
        return super::json_bytes_response(code, stored.json());
    }
    if !req.wants_metadata()
        && !req.wants_table()
        && def.view == View::Plain
        && def.strategy.is_event()
        && let Some(fields) = events::core_view_ref(stored)
    {
        // The core/v1 event view, written without copying the stored event.
        return super::json_response_of(code, &fields);
    }
    let shown = view(def, stored);
    if req.wants_metadata() {
        return json_response(code, &partial_metadata(&shown));
    }
    if req.wants_table() {
        return json_response(
            code,
            &table::table(
                table::Include::from_query(req.query.get("includeObject")),
                def,
                std::slice::from_ref(&shown),
                None,
                now,
            ),
        );
    }
    json_response(code, &shown)
}

fn get(server: &ApiServer, target: &Target, req: &Request) -> Result<Response, ApiError> {
    let name = target.name.as_deref().unwrap_or("");
    let state = server.store.lock();
    let obj = state
        .objects
        .get(&key_of(target, name))
        .ok_or_else(|| ApiError::not_found(target.def, name))?;
    Ok(respond(target.def, req, 200, obj, server.clock.now()))
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}\u{0}")});
    token
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Option<(String, String)> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let value: Value = serde_json::from_slice(&bytes?).ok()?;
    let start = value.get("start")?.as_str()?.strip_suffix('\u{0}')?;
    let (ns, name) = start.split_once('/')?;
    Some((ns.to_string(), name.to_string()))
}

fn list(server: &ApiServer, target: &Target, req: &Request) -> Result<Response, ApiError> {
    let def = target.def;
    let filter = Filter::new(target, req)?;
    let limit = req
        .query
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0);
    let start = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token).ok_or_else(|| {
            ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        })?),
        None => None,
    };
    let state = server.store.lock();
    let mut items = Vec::new();
    let mut next = None;
    let mut remaining = 0i64;
    // etcd orders keys `<namespace>/<name>` by bytes: sort by that string, not the tuple
    // (`a-b/x` comes before `a/x`).
    // Candidates: from the event index when an exact term on an indexed field allows it,
    // else the range of this resource (and namespace) in key order.
    let indexed = super::store::EVENT_INDEX.iter().find_map(|(label, _)| {
        if def.storage != "events" {
            return None;
        }
        filter
            .exact(label)
            .and_then(|value| state.indexed(label, value))
    });
    let mut keyed: Vec<(String, &Value)> = match indexed {
        Some(keys) => keys
            .iter()
            .filter_map(|key| state.objects.get(key).map(|obj| (key, obj.value())))
            .map(|((_, ns, name), obj)| (format!("{ns}/{name}"), obj))
            .collect(),
        None => {
            let ns = filter.namespace().unwrap_or("").to_string();
            state
                .objects
                .range((def.storage, ns.clone(), String::new())..)
                .take_while(|((storage, key_ns, _), _)| {
                    *storage == def.storage && (ns.is_empty() || *key_ns == ns)
                })
                .map(|((_, ns, name), obj)| (format!("{ns}/{name}"), obj.value()))
                .collect()
        }
    };
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let start_key = start.as_ref().map(|(ns, name)| format!("{ns}/{name}"));
    for (key, obj) in keyed {
        if start_key
            .as_ref()
            .is_some_and(|s| key.as_str() <= s.as_str())
        {
            continue;
        }
        if !filter.matches(def, obj) {
            continue;
        }
        if limit.is_some_and(|l| items.len() as i64 >= l) {
            if next.is_none()
                && let Some(last) = items.last()
            {
                next = Some(encode_continue(
                    state.rv,
                    meta(last, "namespace"),
                    meta(last, "name"),
                ));
            }
            remaining += 1;
            continue;
        }
        items.push(view(def, obj));
    }
    let rv = state.rv;
    drop(state);
    let now = server.clock.now();
    let shown: Vec<Value> = items;
    if req.wants_table() {
        return Ok(json_response(
            200,
            &table::table(
                table::Include::from_query(req.query.get("includeObject")),
                def,
                &shown,
                Some((rv, next.as_deref())),
                now,
            ),
        ));
    }
    let (list_kind, list_api_version) = if req.wants_metadata() {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (def.list_kind(), def.api_version())
    };
    let items: Vec<Value> = shown
        .into_iter()
        .map(|o| {
            if req.wants_metadata() {
                partial_metadata(&o)
            } else {
                o
            }
        })
        .map(|mut o| {
            if req.wants_metadata() {
                return o;
            }
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    let mut list_meta = Map::new();
    list_meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(token) = next {
        list_meta.insert("continue".into(), json!(token));
        if !filter.has_selectors() {
            list_meta.insert("remainingItemCount".into(), json!(remaining));
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": list_kind, "apiVersion": list_api_version, "metadata": list_meta, "items": items}),
    ))
}

/// Decodes a create/update body by its Content-Type.
fn decode_body(def: &ResourceDef, req: &Request) -> Result<Value, ApiError> {
    let value: Value = match req.content_type().as_str() {
        super::protobuf::MEDIA_TYPE => {
            let envelope = super::protobuf::envelope(&req.body).map_err(|e| {
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
        "" | "application/json" => serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
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
    Ok(value)
}

/// A write body turned into the stored form, with unknown-field warnings.
struct Prepared {
    obj: Value,
    warnings: Vec<String>,
}

/// One step of a field path: a map key or a list index.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The fields of `input` that did not survive decoding into `output`, as dotted paths
/// (`spec.foo`, `spec.containers[0].bar`). The path is written only for a field reported.
fn unknown_fields(input: &Value, output: &Value, out: &mut Vec<String>) {
    fn written(path: &[Step<'_>]) -> String {
        let mut text = String::new();
        for step in path {
            match step {
                Step::Key(k) if text.is_empty() => text.push_str(k),
                Step::Key(k) => {
                    text.push('.');
                    text.push_str(k);
                }
                Step::Index(n) => text.push_str(&format!("[{n}]")),
            }
        }
        text
    }
    fn walk<'a>(input: &'a Value, output: &Value, path: &mut Vec<Step<'a>>, out: &mut Vec<String>) {
        match (input, output) {
            (Value::Object(i), Value::Object(o)) => {
                for (k, v) in i {
                    let omitted_meta = matches!(path.as_slice(), [Step::Key("metadata")])
                        && super::resources::omitted_empty_metadata(k, v);
                    if v.is_null() || omitted_meta {
                        continue;
                    }
                    path.push(Step::Key(k));
                    match o.get(k) {
                        None => out.push(written(path)),
                        Some(ov) => walk(v, ov, path, out),
                    }
                    path.pop();
                }
            }
            (Value::Array(i), Value::Array(o)) => {
                for (n, (iv, ov)) in i.iter().zip(o.iter()).enumerate() {
                    path.push(Step::Index(n));
                    walk(iv, ov, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    walk(input, output, &mut Vec::new(), out);
}

/// Checks kind/apiVersion, converts an events.k8s.io body, decodes it through the k8s-openapi
/// type and applies `fieldValidation`.
fn prepare_body(def: &ResourceDef, body: Value, req: &Request) -> Result<Prepared, ApiError> {
    let api_version = def.api_version();
    if let Some(v) = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        && v != api_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({api_version})"
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
        map.remove("apiVersion");
        map.remove("kind");
    }
    let (core_body, mut unknown) = match def.view {
        View::EventsV1 => events::v1_to_core(body),
        View::Plain => (body, Vec::new()),
    };
    let obj = (def.normalize)(&core_body).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            def.kind, def.version, def.kind
        ))
    })?;
    let mut diff = Vec::new();
    unknown_fields(&core_body, &obj, &mut diff);
    if def.view == View::EventsV1 {
        diff = diff
            .into_iter()
            .map(|p| {
                for (core, v1) in super::events::RENAMES {
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

/// The strategy's validation of a new object plus the generic ObjectMeta check.
fn validate_new(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    let name = meta(obj, "name");
    if def.strategy.is_event() {
        let errs = events::validate_create(obj, event_api(def));
        if !errs.is_empty() {
            return Err(ApiError::invalid("Event", "", name, &errs));
        }
        let errs = validation::object_meta(obj, true, validation::path_segment_rule);
        if !errs.is_empty() {
            return Err(ApiError::invalid("Event", "", name, &errs));
        }
        return Ok(());
    }
    let mut errs = validation::object_meta(obj, def.namespaced, name_rule(def));
    errs.extend(def.strategy.validate(obj));
    if !errs.is_empty() {
        return Err(ApiError::invalid(def.kind, def.group, name, &errs));
    }
    Ok(())
}

fn name_rule(def: &ResourceDef) -> fn(&str, bool) -> Vec<String> {
    def.strategy.name_rule()
}

/// `ValidateObjectMetaUpdate`: no new finalizers on an object being deleted.
fn no_new_finalizers(new: &Value, old: &Value) -> Vec<FieldError> {
    if meta(old, "deletionTimestamp").is_empty() {
        return Vec::new();
    }
    let list = |o: &Value| -> Vec<String> {
        o.ptr("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let old_list = list(old);
    let mut added: Vec<String> = list(new)
        .into_iter()
        .filter(|f| !old_list.contains(f))
        .collect();
    added.sort();
    added.dedup();
    if added.is_empty() {
        return Vec::new();
    }
    let shown: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
    vec![FieldError::forbidden(
        "metadata.finalizers",
        &format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
            shown.join(", ")
        ),
    )]
}

/// The `PersistentVolumeClaimResize` admission plugin: a claim may grow only when bound and
/// its StorageClass allows expansion.
fn admit_claim_resize(
    state: &State,
    target: &Target,
    new: &Value,
    old: &Value,
) -> Result<(), ApiError> {
    if target.def.strategy != super::strategy::Kind::Claim
        || target.subresource.is_some()
        || !super::strategy::claim_grows(new, old)
    {
        return Ok(());
    }
    let name = meta(old, "name");
    let forbidden = |why: &str| {
        ApiError::status(
            403,
            "Forbidden",
            format!("persistentvolumeclaims \"{name}\" is forbidden: {why}"),
            Some(json!({"name": name, "kind": "persistentvolumeclaims"})),
        )
    };
    if old.ptr("/status/phase").and_then(Value::as_str) != Some("Bound") {
        return Err(forbidden(
            "Only bound persistent volume claims can be expanded",
        ));
    }
    let class = match old.ptr("/metadata/annotations/volume.beta.kubernetes.io~1storage-class") {
        Some(Value::String(c)) => c.clone(),
        _ => old
            .ptr("/spec/storageClassName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    };
    let allowed = !class.is_empty()
        && state
            .objects
            .get(&("storageclasses", String::new(), class))
            .and_then(|sc| sc.get("allowVolumeExpansion"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if !allowed {
        return Err(forbidden(
            "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
        ));
    }
    Ok(())
}

/// Wipes what a client may not set, fills namespace, name, uid and creationTimestamp.
fn stamp_new(
    server: &ApiServer,
    state: &mut State,
    def: &ResourceDef,
    obj: &mut Value,
    url_ns: Option<&str>,
) -> Result<(), ApiError> {
    let now = now_seconds(server);
    let uid = state.new_uid();
    let suffix = state.name_suffix();
    let Some(m) = meta_mut(obj) else {
        return Err(ApiError::bad_request("object has no metadata"));
    };
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(key);
    }
    if def.namespaced {
        let body_ns = m
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let url_ns = url_ns.unwrap_or("");
        if body_ns.is_empty() {
            m.insert("namespace".into(), json!(url_ns));
        } else if body_ns != url_ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    } else {
        m.remove("namespace");
    }
    m.insert("creationTimestamp".into(), json!(now));
    m.insert("uid".into(), json!(uid));
    let name = m.get("name").and_then(Value::as_str).unwrap_or("");
    let generate = m
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() && !generate.is_empty() {
        m.insert("name".into(), json!(format!("{generate}{suffix}")));
    }
    Ok(())
}

/// The storage step of a create: namespace exists, no resourceVersion, name free.
fn store_new(
    state: &mut State,
    def: &'static ResourceDef,
    mut obj: Value,
) -> Result<Arc<Stored>, ApiError> {
    let ns = meta(&obj, "namespace").to_string();
    let name = meta(&obj, "name").to_string();
    let namespace = if def.namespaced {
        let key: Key = ("namespaces", String::new(), ns.clone());
        match state.objects.get(&key) {
            Some(namespace) => Some(namespace),
            None => return Err(ApiError::namespace_not_found(&ns)),
        }
    } else {
        None
    };
    if namespace.is_some_and(|namespace| !meta(namespace, "deletionTimestamp").is_empty()) {
        return Err(ApiError::status(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                def.plural
            ),
            Some(json!({"name": name, "kind": def.plural})),
        ));
    }
    if !meta(&obj, "resourceVersion").is_empty() {
        return Err(ApiError::status(
            500,
            "",
            "resourceVersion should not be set on objects to be created",
            None,
        ));
    }
    let key: Key = (def.storage, ns, name.clone());
    if state.objects.contains_key(&key) {
        return Err(ApiError::already_exists(def, &name));
    }
    if let Some(m) = meta_mut(&mut obj) {
        m.remove("resourceVersion");
    }
    let canonical = resources::storage_row(def.storage).unwrap_or(def);
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(canonical.api_version()));
        map.insert("kind".into(), json!(canonical.kind));
    }
    Ok(state.put(key, obj, ChangeType::Added))
}

/// A SelfSubjectAccessReview: the fake authorizes everything (as a cluster-admin would be),
/// so `kubectl auth can-i` answers `yes`. Nothing is stored.
fn access_review(server: &ApiServer, target: &Target, req: &Request) -> Result<Response, ApiError> {
    let def = target.def;
    let body = decode_body(def, req)?;
    let Prepared { mut obj, warnings } = prepare_body(def, body, req)?;
    if obj.ptr("/spec/resourceAttributes").is_none()
        && obj.ptr("/spec/nonResourceAttributes").is_none()
    {
        return Err(ApiError::invalid(
            def.kind,
            def.group,
            "",
            &[FieldError::invalid_json(
                "spec.resourceAttributes",
                &Value::Null,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )],
        ));
    }
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(def.api_version()));
        map.insert("kind".into(), json!(def.kind));
        map.insert(
            "status".into(),
            json!({"allowed": true, "reason": "the fake API server allows every request"}),
        );
        map.entry("metadata").or_insert_with(|| json!({}));
    }
    let mut response = json_response(201, &obj);
    add_warnings(&mut response, &warnings);
    let _ = server;
    Ok(response)
}

fn create(server: &ApiServer, target: &Target, req: &Request) -> Result<Response, ApiError> {
    let def = target.def;
    let body = decode_body(def, req)?;
    let prepared = prepare_body(def, body, req)?;
    create_prepared(server, target, req, prepared, true)
}

/// Stamps, validates and stores a prepared new object; answers 201 with its warnings.
fn create_prepared(
    server: &ApiServer,
    target: &Target,
    req: &Request,
    Prepared { mut obj, warnings }: Prepared,
    record_update: bool,
) -> Result<Response, ApiError> {
    let def = target.def;
    let manager = update_manager(req);
    let now = now_seconds(server);
    let stored = {
        let mut state = server.store.lock();
        stamp_new(
            server,
            &mut state,
            def,
            &mut obj,
            target.namespace.as_deref(),
        )?;
        (def.prepare_create)(&mut obj);
        def.strategy.default_fields(&mut obj);
        // The field manager sees the decoded (defaulted) object, before mutating admission.
        if record_update {
            super::managed::record_update(None, &mut obj, &writer(target, &manager, &now));
        }
        validate_new(def, &obj)?;
        super::controllers::admit_create(def.strategy, &mut obj);
        let stored = store_new(&mut state, def, obj)?;
        if def.strategy == super::strategy::Kind::Node {
            super::controllers::node_lease(&mut state, &stored, &server.clock.now());
        }
        super::controllers::settle(&mut state);
        stored
    };
    server.store.notify();
    let mut response = respond(def, req, 201, &stored, server.clock.now());
    add_warnings(&mut response, &warnings);
    Ok(response)
}

/// Whether two objects are equal apart from `metadata.resourceVersion` (as comparing their
/// [`strip_rv`] copies, without the copies).
fn same_but_rv(a: &Value, b: &Value) -> bool {
    fn meta_of<'a>(
        m: &'a Map<String, Value>,
        empty: &'a Map<String, Value>,
    ) -> Option<&'a Map<String, Value>> {
        match m.get("metadata") {
            None => Some(empty),
            Some(v) => v.as_object(),
        }
    }
    let empty = Map::new();
    let (Some(a_map), Some(b_map)) = (a.as_object(), b.as_object()) else {
        return strip_rv(a) == strip_rv(b);
    };
    let (Some(a_meta), Some(b_meta)) = (meta_of(a_map, &empty), meta_of(b_map, &empty)) else {
        return strip_rv(a) == strip_rv(b);
    };
    let not = |skip: &'static str| move |(k, _): &(&String, &Value)| k.as_str() != skip;
    a_map
        .iter()
        .filter(not("metadata"))
        .eq(b_map.iter().filter(not("metadata")))
        && a_meta
            .iter()
            .filter(not("resourceVersion"))
            .eq(b_meta.iter().filter(not("resourceVersion")))
}

fn strip_rv(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = meta_mut(&mut o) {
        m.remove("resourceVersion");
    }
    o
}

/// The update step shared by PUT and PATCH: preconditions, carried-over fields, validation,
/// no-op detection, finalizer completion. Returns the stored result and the status code.
fn apply_update(
    server: &ApiServer,
    state: &mut State,
    target: &Target,
    mut new: Value,
    existing: Arc<Stored>,
    update_writer: Option<&super::managed::Writer<'_>>,
) -> Result<(Arc<Stored>, u16), ApiError> {
    let def = target.def;
    let name = target.name.clone().unwrap_or_default();
    let sent_rv = meta(&new, "resourceVersion").to_string();
    if !sent_rv.is_empty() && sent_rv != meta(&existing, "resourceVersion") {
        return Err(ApiError::conflict(def, &name));
    }
    // validateCommonFields: the uid may be left out but not changed.
    let mut common = Vec::new();
    let new_uid = meta(&new, "uid").to_string();
    if !new_uid.is_empty() && new_uid != meta(&existing, "uid") {
        common.push(FieldError::invalid(
            "metadata.uid",
            &new_uid,
            "field is immutable",
        ));
    }
    if target.subresource.is_some() {
        let status = new.get("status").cloned();
        let managed = new.ptr("/metadata/managedFields").cloned();
        new = Value::clone(&existing);
        if let Some(map) = new.as_object_mut() {
            match status {
                Some(s) => map.insert("status".into(), s),
                None => map.remove("status"),
            };
        }
        if let Some(m) = meta_mut(&mut new) {
            match managed {
                Some(v) => m.insert("managedFields".into(), v),
                None => m.remove("managedFields"),
            };
        }
    } else if def.has_status {
        let status = existing.get("status").cloned();
        if let Some(map) = new.as_object_mut() {
            match status {
                Some(s) => map.insert("status".into(), s),
                None => map.remove("status"),
            };
        }
    }
    for key in [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let old = existing.get("metadata").and_then(|m| m.get(key)).cloned();
        if let Some(m) = meta_mut(&mut new) {
            match old {
                Some(v) => m.insert(key.into(), v),
                None => m.remove(key),
            };
            m.remove("selfLink");
        }
    }
    let canonical = resources::storage_row(def.storage).unwrap_or(def);
    if let Some(map) = new.as_object_mut() {
        map.insert("apiVersion".into(), json!(canonical.api_version()));
        map.insert("kind".into(), json!(canonical.kind));
    }
    if def.strategy.is_event() {
        common.extend(events::validate_update(&new, &existing, event_api(def)));
        if !common.is_empty() {
            return Err(ApiError::invalid("Event", "", &name, &common));
        }
    } else {
        common.extend(events::meta_update(&new, &existing));
        common.extend(
            def.strategy
                .validate_update(&new, &existing, target.subresource.is_some()),
        );
        common.extend(no_new_finalizers(&new, &existing));
        common.extend(validation::object_meta(
            &new,
            def.namespaced,
            name_rule(def),
        ));
        if !common.is_empty() {
            return Err(ApiError::invalid(def.kind, def.group, &name, &common));
        }
    }
    admit_claim_resize(state, target, &new, &existing)?;
    if let Some(w) = update_writer {
        super::managed::record_update(Some(&existing), &mut new, w);
    }
    let key = key_of(target, &name);
    if same_but_rv(&new, &existing) {
        return Ok((existing, 200));
    }
    let finalizers_done = new
        .ptr("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if finalizers_done && !meta(&new, "deletionTimestamp").is_empty() {
        state
            .objects
            .insert(key.clone(), Arc::new(Stored::new(new)));
        let last = state.remove(&key).unwrap_or_default();
        super::controllers::settle(state);
        return Ok((Arc::new(Stored::new(last)), 200));
    }
    let _ = server;
    let stored = state.put(key, new, ChangeType::Modified);
    super::controllers::settle(state);
    Ok((stored, 200))
}

fn check_name_and_namespace(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
    let url_name = target.name.clone().unwrap_or_default();
    let name = meta(obj, "name").to_string();
    if name != url_name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        )));
    }
    let Some(m) = meta_mut(obj) else {
        return Ok(());
    };
    if target.def.namespaced {
        let url_ns = target.namespace.clone().unwrap_or_default();
        let ns = m
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if ns.is_empty() {
            m.insert("namespace".into(), json!(url_ns));
        } else if ns != url_ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    } else {
        m.remove("namespace");
    }
    Ok(())
}

fn update(server: &ApiServer, target: &Target, req: &Request) -> Result<Response, ApiError> {
    let def = target.def;
    let body = decode_body(def, req)?;
    let Prepared { mut obj, warnings } = prepare_body(def, body, req)?;
    check_name_and_namespace(target, &mut obj)?;
    let name = target.name.clone().unwrap_or_default();
    let manager = update_manager(req);
    let now = now_seconds(server);
    let w = writer(target, &manager, &now);
    let (stored, code) = {
        let mut state = server.store.lock();
        match state.objects.get(&key_of(target, &name)).cloned() {
            Some(existing) => apply_update(server, &mut state, target, obj, existing, Some(&w))?,
            // Events allow create on update (AllowCreateOnUpdate).
            None if def.strategy.is_event() && target.subresource.is_none() => {
                stamp_new(
                    server,
                    &mut state,
                    def,
                    &mut obj,
                    target.namespace.as_deref(),
                )?;
                validate_new(def, &obj)?;
                if let Some(m) = meta_mut(&mut obj) {
                    m.remove("resourceVersion");
                }
                super::managed::record_update(None, &mut obj, &w);
                (store_new(&mut state, def, obj)?, 201)
            }
            None => return Err(ApiError::not_found(def, &name)),
        }
    };
    server.store.notify();
    let mut response = respond(def, req, code, &stored, server.clock.now());
    add_warnings(&mut response, &warnings);
    Ok(response)
}

fn patch(server: &ApiServer, target: &Target, req: &Request) -> Result<Response, ApiError> {
    let def = target.def;
    let kind = match req.content_type().as_str() {
        "application/json-patch+json" => super::patch::PatchType::Json,
        "application/merge-patch+json" => super::patch::PatchType::Merge,
        "application/strategic-merge-patch+json" => super::patch::PatchType::Strategic,
        "application/apply-patch+yaml" => super::patch::PatchType::Apply,
        _ => return Err(ApiError::unsupported_patch_type()),
    };
    let patch_doc: Value = match kind {
        super::patch::PatchType::Apply => {
            if req.query.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    &[FieldError::required(
                        "fieldManager",
                        "is required for apply patch",
                    )],
                ));
            }
            let text = std::str::from_utf8(&req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        }
        _ => serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    let name = target.name.clone().unwrap_or_default();
    let is_apply = kind == super::patch::PatchType::Apply;
    let manager = if is_apply {
        req.query.get("fieldManager").unwrap_or("").to_string()
    } else {
        update_manager(req)
    };
    let now = now_seconds(server);
    let w = writer(target, &manager, &now);
    let force = req.query.flag("force");
    // ValidatePatchOptions: `force` only goes with an apply.
    if !is_apply && req.query.get("force").is_some() {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[FieldError::forbidden(
                "force",
                "may not be specified for non-apply patch",
            )],
        ));
    }
    let (stored, code, warnings) = {
        let mut state = server.store.lock();
        let key = key_of(target, &name);
        let existing = state.objects.get(&key).cloned();
        let Some(existing) = existing else {
            if is_apply && target.subresource.is_none() {
                drop(state);
                if !patch_doc.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: json: cannot unmarshal into Go value of type map[string]interface {}",
                    ));
                }
                let owned = super::managed::apply(&json!({}), &patch_doc, force, &w)?;
                return apply_create(server, target, req, owned);
            }
            return Err(ApiError::not_found(def, &name));
        };
        let current = view(def, &existing);
        let patched = if is_apply {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: json: cannot unmarshal into Go value of type map[string]interface {}",
                ));
            }
            super::managed::apply(&current, &patch_doc, force, &w)?
        } else {
            super::patch::apply(kind, def, &current, &patch_doc)?
        };
        let patched_text = patched.to_string();
        let Prepared { mut obj, warnings } =
            prepare_body(def, patched, req).map_err(|e| strict_patch_error(e, &patched_text))?;
        check_name_and_namespace(target, &mut obj)?;
        let update_writer = (!is_apply).then_some(&w);
        let (stored, code) =
            apply_update(server, &mut state, target, obj, existing, update_writer)?;
        (stored, code, warnings)
    };
    server.store.notify();
    let mut response = respond(def, req, code, &stored, server.clock.now());
    add_warnings(&mut response, &warnings);
    Ok(response)
}

/// Under `fieldValidation=Strict` a patched object with unknown fields is a 422 on "patch"
/// (`NewInvalid(GroupKind{}, "", ...)`), not the 400 of a create.
fn strict_patch_error(error: ApiError, patched: &str) -> ApiError {
    let message = error
        .body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("");
    if error.code == 400 && message.starts_with("strict decoding error") {
        return ApiError::invalid(
            "",
            "",
            "",
            &[FieldError::invalid("patch", patched, message)],
        );
    }
    error
}

fn apply_create(
    server: &ApiServer,
    target: &Target,
    req: &Request,
    doc: Value,
) -> Result<Response, ApiError> {
    let def = target.def;
    let mut prepared = prepare_body(def, doc, req)?;
    check_name_and_namespace(target, &mut prepared.obj)?;
    create_prepared(server, target, req, prepared, false)
}

/// Deletes one object in `state`; returns the status code and body object.
fn delete_one(
    server: &ApiServer,
    state: &mut State,
    def: &'static ResourceDef,
    key: Key,
    options: &Value,
) -> Result<(Value, bool), ApiError> {
    let name = key.2.clone();
    let existing = state
        .objects
        .get(&key)
        .map(|o| Value::clone(o))
        .ok_or_else(|| ApiError::not_found(def, &name))?;
    if let Some(uid) = options.ptr("/preconditions/uid").and_then(Value::as_str) {
        let actual = meta(&existing, "uid");
        if uid != actual {
            return Err(ApiError::conflict_with(
                def,
                &name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = options
        .ptr("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        let actual = meta(&existing, "resourceVersion");
        if rv != actual {
            return Err(ApiError::conflict_with(
                def,
                &name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    let has_finalizers = existing
        .ptr("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if def.strategy.is_namespace() {
        if matches!(name.as_str(), "default" | "kube-system" | "kube-public") {
            return Err(ApiError::status(
                403,
                "Forbidden",
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
                Some(json!({"name": name, "kind": "namespaces"})),
            ));
        }
        if !meta(&existing, "deletionTimestamp").is_empty() {
            return Ok((existing, true));
        }
        // As the real server: the namespace turns Terminating (new content is refused), and
        // the namespace controller deletes what it holds, then the namespace, a little later.
        let mut marked = existing;
        if let Some(m) = meta_mut(&mut marked) {
            m.insert("deletionTimestamp".into(), json!(now_seconds(server)));
        }
        if let Some(map) = marked.as_object_mut() {
            map.insert("status".into(), json!({"phase": "Terminating"}));
        }
        let stored =
            Arc::unwrap_or_clone(state.put(key, marked, ChangeType::Modified)).into_value();
        let (server, namespace) = (server.clone(), name.clone());
        tokio::spawn(async move {
            server.clock.sleep(NAMESPACE_CLEANUP_DELAY).await;
            finish_namespace_deletion(&server, &namespace);
        });
        return Ok((stored, true));
    }
    if has_finalizers {
        if meta(&existing, "deletionTimestamp").is_empty() {
            let mut marked = existing;
            if let Some(m) = meta_mut(&mut marked) {
                m.insert("deletionTimestamp".into(), json!(now_seconds(server)));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            let stored = state.put(key, marked, ChangeType::Modified);
            return Ok((Arc::unwrap_or_clone(stored).into_value(), true));
        }
        return Ok((existing, true));
    }
    let last = state.remove(&key).unwrap_or(existing);
    Ok((last, def.returns_deleted))
}

/// How long after its deletion a namespace and its contents are gone (the namespace
/// controller's work), on the server's clock.
pub const NAMESPACE_CLEANUP_DELAY: std::time::Duration = std::time::Duration::from_secs(5);

/// The namespace controller's step: deletes everything in `namespace`, then the namespace.
fn finish_namespace_deletion(server: &ApiServer, namespace: &str) {
    {
        let mut state = server.store.lock();
        let inside: Vec<Key> = state
            .objects
            .keys()
            .filter(|k| k.0 != "namespaces" && k.1 == namespace)
            .cloned()
            .collect();
        for key in inside {
            state.remove(&key);
        }
        state.remove(&("namespaces", String::new(), namespace.to_owned()));
        super::controllers::settle(&mut state);
    }
    server.store.notify();
}

fn delete_options(req: &Request) -> Result<Value, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

fn delete(server: &ApiServer, target: &Target, req: &Request) -> Result<Response, ApiError> {
    let def = target.def;
    let options = delete_options(req)?;
    let name = target.name.clone().unwrap_or_default();
    let (obj, as_object) = {
        let mut state = server.store.lock();
        let deleted = delete_one(server, &mut state, def, key_of(target, &name), &options)?;
        super::controllers::settle(&mut state);
        deleted
    };
    server.store.notify();
    if as_object {
        return Ok(json_response(200, &view(def, &obj)));
    }
    Ok(json_response(
        200,
        &status::success_status(def, &name, meta(&obj, "uid")),
    ))
}

fn delete_collection(
    server: &ApiServer,
    target: &Target,
    req: &Request,
) -> Result<Response, ApiError> {
    let def = target.def;
    let options = delete_options(req)?;
    let filter = Filter::new(target, req)?;
    let mut deleted = Vec::new();
    let rv = {
        let mut state = server.store.lock();
        let keys: Vec<Key> = state
            .objects
            .iter()
            .filter(|(k, o)| k.0 == def.storage && filter.matches(def, o))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let (obj, _) = delete_one(server, &mut state, def, key, &options)?;
            let mut shown = view(def, &obj);
            if let Some(m) = shown.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            deleted.push(shown);
        }
        super::controllers::settle(&mut state);
        state.rv
    };
    server.store.notify();
    Ok(json_response(
        200,
        &json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
    ))
}

/// Stores a fixture object as given (see [`ApiServer::seed`]).
pub(crate) fn seed(server: &ApiServer, object: Value) -> Result<Value, String> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let def = resources::by_kind(api_version, kind).ok_or_else(|| {
        format!("no served resource has apiVersion {api_version:?} and kind {kind:?}")
    })?;
    let mut body = object.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    let body = match def.view {
        View::EventsV1 => events::v1_to_core(body).0,
        View::Plain => body,
    };
    let mut obj = (def.normalize)(&body).map_err(|e| {
        format!("{kind} in version {api_version:?} cannot be handled as a {kind}: {e}")
    })?;
    let mut state = server.store.lock();
    let uid = state.new_uid();
    let now = now_seconds(server);
    let Some(m) = meta_mut(&mut obj) else {
        return Err("object has no metadata".into());
    };
    let name = m
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return Err(format!("{kind} has no metadata.name"));
    }
    // A fixture naming a namespace the cluster already has (say `default`) is fine as it is.
    if def.strategy.is_namespace() {
        let key: Key = ("namespaces", String::new(), name.clone());
        if let Some(existing) = state.objects.get(&key) {
            return Ok(Value::clone(existing));
        }
    }
    if def.namespaced {
        if m.get("namespace")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            m.insert("namespace".into(), json!("default"));
        }
    } else {
        m.remove("namespace");
    }
    m.entry("uid").or_insert(json!(uid));
    m.entry("creationTimestamp").or_insert(json!(now));
    m.remove("resourceVersion");
    if def.strategy.is_namespace() {
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.entry("kubernetes.io/metadata.name")
                .or_insert(json!(name));
        }
        if obj.get("status").is_none()
            && let Some(map) = obj.as_object_mut()
        {
            map.insert("status".into(), json!({"phase": "Active"}));
        }
        if obj.ptr("/spec/finalizers").is_none()
            && let Some(map) = obj.as_object_mut()
        {
            map.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        }
    }
    let stored = store_new(&mut state, def, obj).map_err(|e| e.to_string())?;
    if def.strategy == super::strategy::Kind::Node {
        super::controllers::node_lease(&mut state, &stored, &server.clock.now());
    }
    Ok(Value::clone(&stored))
}

#[cfg(test)]
mod tests {
    use super::{same_but_rv, strip_rv, unknown_fields};
    use serde_json::json;

    #[test]
    fn unknown_fields_are_written_as_dotted_paths_with_list_indices() {
        let input = json!({"a": 1, "x": {"y": 2, "z": null, "w": 3}, "l": [{"k": 1, "extra": 2}, {"k": 2}], "gone": {"deep": 1}});
        let output = json!({"a": 1, "x": {"y": 2}, "l": [{"k": 1}, {"k": 2}]});
        let mut out = Vec::new();
        unknown_fields(&input, &output, &mut out);
        assert_eq!(out, ["gone", "l[0].extra", "x.w"]);
    }

    #[test]
    fn same_but_rv_agrees_with_comparing_stripped_copies() {
        let objects = [
            json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a", "resourceVersion": "2"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 2}}),
            json!({"metadata": {"name": "b", "resourceVersion": "1"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a", "labels": {}}, "spec": {"x": 1}}),
            json!({"metadata": {"resourceVersion": "3"}}),
            json!({"metadata": {}}),
            json!({}),
            json!({"spec": {"x": 1}}),
            json!({"metadata": null}),
            json!({"metadata": null, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a", "resourceVersion": "1"}}),
            json!([1, 2]),
            json!("text"),
        ];
        for a in &objects {
            for b in &objects {
                assert_eq!(same_but_rv(a, b), strip_rv(a) == strip_rv(b), "{a} vs {b}");
            }
        }
    }
}
