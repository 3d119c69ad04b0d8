//! In process, the control layer (`control`): the request log is a bounded ring, and injected
//! faults answer with the API server's own Status constructors.

#[tokio::test]
async fn the_request_log_is_a_bounded_ring() {
    let cluster = fake_apiserver::FakeCluster::default();
    assert_eq!(
        cluster.request_log().capacity(),
        fake_apiserver::control::DEFAULT_LOG_CAPACITY
    );
    cluster.request_log().set_capacity(3);
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(cluster.client());
    for i in 0..5 {
        let _ = nodes.get_opt(&format!("n{i}")).await.expect("get_opt");
    }
    let records = cluster.requests();
    let paths: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/api/v1/nodes/n2", "/api/v1/nodes/n3", "/api/v1/nodes/n4"]
    );
    assert_eq!(records[0].seq, 2);
    assert_eq!(cluster.request_log().evicted(), 2);
}

// ---------------------------------------------------------------- 6. structure

/// A fault's Status is built by the API's own constructors: an injected NotFound is the
/// very body the server answers for an object that is not there.
#[tokio::test]
async fn an_injected_not_found_is_the_api_servers_own_answer() {
    use fake_apiserver::FakeCluster;
    use fake_apiserver::control::{Fault, Verb};
    let (cluster, _clock) = FakeCluster::virtual_at(
        crate::common::in_process::START
            .parse()
            .expect("valid timestamp"),
    );
    let client = cluster.client();
    for uri in [
        "/api/v1/namespaces/default/persistentvolumeclaims/missing",
        "/apis/events.k8s.io/v1/namespaces/default/events/missing",
    ] {
        let get = || http::Request::get(uri).body(Vec::new()).expect("request");
        let (code, _, real) = crate::common::raw(&client, get()).await.expect("answer");
        assert_eq!(code, 404);
        let resource = uri.split('/').nth_back(1).expect("resource");
        cluster
            .faults()
            .add(Fault::new(Verb::Get, resource).status(404).times(1));
        let (code, _, injected) = crate::common::raw(&client, get()).await.expect("answer");
        assert_eq!(code, 404);
        let real: serde_json::Value = serde_json::from_slice(&real).expect("json");
        let injected: serde_json::Value = serde_json::from_slice(&injected).expect("json");
        assert_eq!(injected, real, "{uri}");
    }
}
