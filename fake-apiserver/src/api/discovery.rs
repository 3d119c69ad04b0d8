//! Discovery and server info: `/version`, `/healthz`, `/api`, `/api/v1`, `/apis`,
//! `/apis/{group}`, `/apis/{group}/{version}` (legacy, unaggregated discovery with verbs and
//! short names) and the `/openapi/v3` documents kubectl's default validation reads
//! (`docs/fidelity.md` §3.1, §3.6).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};

use super::resources::{self, RESOURCES, ResourceDef};
use super::status::ApiError;
use super::{Request, ResponseBody, json_response};

type Response = http::Response<ResponseBody>;

/// The Kubernetes version the fake reports.
pub const GIT_VERSION: &str = "v1.33.0";

fn plain_ok() -> Response {
    let mut r = http::Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serves a discovery or info path; `None` when the path is not one.
pub(crate) fn serve(segs: &[&str], req: &Request) -> Result<Option<Response>, ApiError> {
    if req.method != http::Method::GET {
        return Ok(None);
    }
    let body = match segs {
        [] => json!({"paths": paths()}),
        ["version"] => json!({
            "major": "1", "minor": "33", "gitVersion": GIT_VERSION,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
            "platform": "linux/amd64",
        }),
        ["healthz" | "livez" | "readyz"] => return Ok(Some(plain_ok())),
        ["api"] => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        }),
        ["api", "v1"] => resource_list("", "v1"),
        ["apis"] => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups()}),
        ["apis", group] => match groups().into_iter().find(|g| g["name"] == *group) {
            Some(mut g) => {
                if let Some(m) = g.as_object_mut() {
                    m.insert("kind".into(), json!("APIGroup"));
                    m.insert("apiVersion".into(), json!("v1"));
                }
                g
            }
            None => return Err(ApiError::page_not_found()),
        },
        ["apis", group, version] => {
            if !resources::group_versions().contains(&(*group, *version)) {
                return Err(ApiError::page_not_found());
            }
            resource_list(group, version)
        }
        ["openapi", "v3"] => openapi_index(),
        ["openapi", "v3", "api", "v1"] => super::openapi::v3_document("", "v1", GIT_VERSION),
        ["openapi", "v3", "apis", group, version] => {
            if !resources::group_versions().contains(&(*group, *version)) {
                return Err(ApiError::page_not_found());
            }
            super::openapi::v3_document(group, version, GIT_VERSION)
        }
        ["openapi", "v2"] | ["swagger.json"] => {
            let accept = req
                .headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains("protobuf") {
                let mut r = http::Response::new(
                    Full::new(Bytes::from(super::openapi::v2_protobuf(GIT_VERSION))).boxed(),
                );
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(super::openapi::V2_PROTOBUF),
                );
                return Ok(Some(r));
            }
            super::openapi::v2_document(GIT_VERSION)
        }
        _ => return Ok(None),
    };
    Ok(Some(json_response(200, &body)))
}

fn paths() -> Vec<String> {
    let mut out = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
    ];
    for (g, v) in resources::group_versions() {
        if !g.is_empty() {
            out.push(format!("/apis/{g}"));
            out.push(format!("/apis/{g}/{v}"));
        }
    }
    out.extend(
        [
            "/healthz",
            "/livez",
            "/openapi/v2",
            "/openapi/v3",
            "/readyz",
            "/version",
        ]
        .map(String::from),
    );
    out
}

fn groups() -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for (g, v) in resources::group_versions() {
        if g.is_empty() {
            continue;
        }
        let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
        match out.iter_mut().find(|x| x["name"] == g) {
            Some(existing) => {
                if let Some(list) = existing["versions"].as_array_mut() {
                    list.push(gv);
                }
            }
            None => out.push(json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})),
        }
    }
    out
}

fn resource_entry(def: &ResourceDef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(def.plural));
    m.insert("singularName".into(), json!(def.singular));
    m.insert("namespaced".into(), json!(def.namespaced));
    m.insert("kind".into(), json!(def.kind));
    m.insert("verbs".into(), json!(def.verbs()));
    if !def.short_names.is_empty() {
        m.insert("shortNames".into(), json!(def.short_names));
    }
    if !def.categories.is_empty() {
        m.insert("categories".into(), json!(def.categories));
    }
    Value::Object(m)
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut list = Vec::new();
    for def in RESOURCES
        .iter()
        .filter(|d| d.group == group && d.version == version)
    {
        list.push(resource_entry(def));
        if def.has_status {
            list.push(json!({
                "name": format!("{}/status", def.plural),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": def.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}

fn openapi_index() -> Value {
    let mut paths = Map::new();
    for (g, v) in resources::group_versions() {
        let key = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash=0000000000000000")}),
        );
    }
    json!({"paths": paths})
}
