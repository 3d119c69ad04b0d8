//! Routing a resource request to its verb, and dry run (`?dryRun=All`): the write runs
//! against a scratch copy of the store (`pkg/endpoints/handlers/rest.go`).

use serde_json::{Value, json};

use super::{Response, key_of, meta_mut};
use super::{create, delete, get, patch, update};
use crate::api::filter::meta;
use crate::api::status::ApiError;
use crate::api::{ApiServer, Request, Target};

/// What routing a request to its verb gives: the answer, or for a dry run the future that
/// writes it against a scratch store (boxed: a dry run is rare, and its state then stays out
/// of the future of every other request).
pub(crate) enum Dispatched<'a> {
    /// Answered.
    Done(Result<Response, ApiError>),
    /// A dry run, to await.
    DryRun(futures::future::BoxFuture<'a, Result<Response, ApiError>>),
}

/// Routes a resource request to its verb.
pub(crate) fn dispatch(server: &ApiServer, target: Target, req: Request) -> Dispatched<'_> {
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
            return Dispatched::Done(dispatch_verb(server, target, req));
        }
        if value != "All" {
            return Dispatched::Done(Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{value}\": supported values: \"All\""
            ))));
        }
        return Dispatched::DryRun(Box::pin(dry_run_dispatch(server, target, req)));
    }
    Dispatched::Done(dispatch_verb(server, target, req))
}

/// Runs a write against a scratch copy of the store; the answer carries the resourceVersion
/// the object has now (none for a create), as the real dry run does.
pub(super) async fn dry_run_dispatch(
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
            .get(&key_of(&target, name))
            .map(|o| meta(o, "resourceVersion").to_string())
    });
    let response = dispatch_verb(&scratch, target, req)?;
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

/// The handler of the request's verb. Not `async` (no handler waits): the future of every
/// request, boxed by the service layer, stays small.
pub(super) fn dispatch_verb(
    server: &ApiServer,
    target: Target,
    req: Request,
) -> Result<Response, ApiError> {
    use http::Method;
    let has_name = target.name.is_some();
    let cluster_wide = target.def.namespaced && target.namespace.is_none();
    if !target.def.strategy.stored() {
        return match (&req.method, has_name) {
            (&Method::POST, false) => create::create_unstored(&target, &req),
            _ => Err(ApiError::method_not_allowed()),
        };
    }
    match (&req.method, has_name) {
        (&Method::GET, false) if req.query.flag("watch") || target.watch_path => {
            crate::api::watch::serve(server, &target, &req)
        }
        (&Method::GET, true) if target.watch_path => {
            crate::api::watch::serve(server, &target, &req)
        }
        (&Method::GET, false) => get::list(server, &target, &req),
        (&Method::GET, true) => get::get(server, &target, &req),
        (&Method::POST, false) if !cluster_wide && target.subresource.is_none() => {
            create::create(server, &target, &req)
        }
        (&Method::PUT, true) => update::update(server, &target, &req),
        (&Method::PATCH, true) => patch::patch(server, &target, &req),
        (&Method::DELETE, true) if target.subresource.is_none() => {
            delete::delete(server, &target, &req)
        }
        (&Method::DELETE, false)
            if !cluster_wide && target.def.verbs().contains(&"deletecollection") =>
        {
            delete::delete_collection(server, &target, &req)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
