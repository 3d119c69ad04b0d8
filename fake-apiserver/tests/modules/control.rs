//! In process, the control layer (`control`): the request log is a bounded ring.

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
