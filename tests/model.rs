//! The attachment/migration model against `docs/lifecycle.md`, one test per table row, every event
//! read back from the in-process fake cluster's API server (type, reason, message, claim).
//! Time is virtual: timers fire only when the test advances the clock.

mod model_support;

use std::time::Duration;

use csi_events::model::{AccessMode, Code, MigrationResult, Publish, RpcError};
use model_support::{DRIVER, attachment_yaml, restarted_rig, rig, volume_yaml};

const N: &str = "Normal";
const W: &str = "Warning";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Publish with the claim `disk-{n}` in the volume context.
fn publish(n: u32, node: &str, mode: AccessMode) -> Publish {
    Publish::new(format!("pvc-{n}"), node, mode).claim("vms", format!("disk-{n}"))
}

fn volumes(n: u32) -> String {
    (1..=n)
        .map(|i| volume_yaml(i, "ReadWriteMany", ""))
        .collect()
}

// ---------------------------------------------------------------- Publish

#[tokio::test]
async fn publish_unknown_node_is_not_found_and_posts_nothing() {
    let r = rig(&volumes(1)).await;
    let refused = r
        .controller
        .publish(publish(1, "node-x", AccessMode::Rwo))
        .await
        .expect_err("unknown node");
    assert_eq!(
        refused,
        RpcError::new(Code::NotFound, "node node-x not found")
    );
    assert!(r.controller.volumes().is_empty(), "nothing tracked");
    r.expect_events(&[]).await;
}

#[tokio::test]
async fn publish_unattached_volume_makes_the_node_primary_and_posts_volume_attached() {
    let r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo).took(Duration::from_micros(1_204_400)))
        .await
        .expect("attach");
    let view = &r.controller.volumes()[0];
    assert_eq!(view.nodes, vec!["node-a".into()]);
    assert_eq!(view.mode, AccessMode::Rwo);
    r.expect_events(&[(
        N,
        "VolumeAttached",
        "[pvc-1]: Attached to node node-a (duration: 1.204s)",
        "disk-1",
    )])
    .await;
    let events = r.events().await;
    assert_eq!(events[0].uid, "uid-disk-1", "the live claim's uid");
}

#[tokio::test]
async fn publish_to_an_attached_node_is_idempotent_for_primary_and_target() {
    let r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwx))
        .await
        .expect("attach");
    r.controller
        .publish(publish(1, "node-b", AccessMode::Rwx))
        .await
        .expect("migrate");
    r.new_events().await;
    let before = r.controller.volumes();
    for node in ["node-a", "node-b", "node-a"] {
        r.controller
            .publish(publish(1, node, AccessMode::Rwx))
            .await
            .expect("idempotent");
    }
    assert_eq!(r.controller.volumes(), before, "nothing changed");
    assert_eq!(r.metrics.active_migrations(), 1);
    r.expect_events(&[]).await;
}

#[tokio::test]
async fn publish_rwo_to_another_node_while_the_holder_exists_is_a_conflict() {
    let r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    r.new_events().await;
    let refused = r
        .controller
        .publish(publish(1, "node-b", AccessMode::Rwo))
        .await
        .expect_err("conflict");
    assert_eq!(
        refused,
        RpcError::new(
            Code::FailedPrecondition,
            "Volume pvc-1 already attached to node node-a. For multi-node access, use RWX with block volumes."
        )
    );
    assert_eq!(r.controller.volumes()[0].nodes, vec!["node-a".into()]);
    assert_eq!(r.metrics.conflicts(), 1);
    r.expect_events(&[(
        W,
        "AttachmentConflict",
        "[pvc-1]: Attachment to node node-b rejected - volume already attached to node node-a. Delete the pod on node-a to release the volume.",
        "disk-1",
    )])
    .await;
}

#[tokio::test]
async fn access_mode_is_fixed_at_the_first_attach() {
    let r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    let refused = r
        .controller
        .publish(publish(1, "node-b", AccessMode::Rwx))
        .await
        .expect_err("an RWO volume stays RWO");
    assert_eq!(refused.code, Code::FailedPrecondition);
    assert_eq!(r.controller.volumes()[0].mode, AccessMode::Rwo);
    assert_eq!(r.metrics.active_migrations(), 0);
}

#[tokio::test]
async fn publish_rwo_to_another_node_when_the_holder_was_deleted_clears_it() {
    // The holder's deletion was missed while the controller was down: after the restart the
    // attachment names a node the cluster no longer has.
    let extra = format!(
        "{}{}",
        volume_yaml(1, "ReadWriteOnce", ""),
        attachment_yaml(
            "va-1",
            DRIVER,
            "pvc-1",
            "node-gone",
            model_support::START,
            true
        )
    );
    let r = restarted_rig(&extra, secs(10)).await;
    assert_eq!(r.controller.volumes()[0].nodes, vec!["node-gone".into()]);
    r.controller
        .publish(publish(1, "node-b", AccessMode::Rwo).took(Duration::from_millis(153)))
        .await
        .expect("stale holder cleared");
    assert_eq!(r.controller.volumes()[0].nodes, vec!["node-b".into()]);
    assert_eq!(r.metrics.stale_cleared(), 1);
    assert_eq!(r.metrics.conflicts(), 0);
    r.expect_events(&[
        (
            N,
            "StaleAttachmentCleared",
            "[pvc-1]: Cleared stale attachment from deleted node node-gone",
            "disk-1",
        ),
        (
            N,
            "VolumeAttached",
            "[pvc-1]: Attached to node node-b (duration: 153ms)",
            "disk-1",
        ),
    ])
    .await;
}

#[tokio::test]
async fn publish_rwx_to_a_second_node_starts_a_migration() {
    let r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwx))
        .await
        .expect("attach");
    r.new_events().await;
    r.advance(secs(7)).await;
    r.controller
        .publish(
            publish(1, "node-b", AccessMode::Rwx).context_entry("migrationTimeoutSeconds", "600"),
        )
        .await
        .expect("migration starts");
    let view = &r.controller.volumes()[0];
    assert_eq!(view.nodes, vec!["node-a".into(), "node-b".into()]);
    let migration = view.migration.as_ref().expect("migration");
    assert_eq!(
        (migration.source.as_str(), migration.target.as_str()),
        ("node-a", "node-b")
    );
    assert_eq!(migration.timeout, secs(600));
    assert_eq!(migration.started, r.clock_now());
    assert!(!migration.failed);
    assert_eq!(r.metrics.active_migrations(), 1);
    assert_eq!(r.controller.timers(), 1);
    r.expect_events(&[(
        N,
        "MigrationStarted",
        "[pvc-1]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 10m0s",
        "disk-1",
    )])
    .await;
}

#[tokio::test]
async fn publish_rwx_to_a_third_node_hits_the_migration_limit() {
    let r = rig(&volumes(1)).await;
    for node in ["node-a", "node-b"] {
        r.controller
            .publish(publish(1, node, AccessMode::Rwx))
            .await
            .expect("attach");
    }
    r.new_events().await;
    let refused = r
        .controller
        .publish(publish(1, "node-c", AccessMode::Rwx))
        .await
        .expect_err("limit");
    assert_eq!(
        refused,
        RpcError::new(
            Code::FailedPrecondition,
            "Volume pvc-1 already attached to 2 nodes (migration limit). Wait for migration to complete. Attached nodes: [node-a node-b]"
        )
    );
    assert_eq!(r.controller.volumes()[0].nodes.len(), 2);
    r.expect_events(&[]).await;
}

// ---------------------------------------------------------------- Unpublish

#[tokio::test]
async fn unpublish_of_an_untracked_volume_or_unattached_node_is_a_quiet_success() {
    let r = rig(&volumes(1)).await;
    r.controller
        .unpublish(&"pvc-9".into(), &"node-a".into())
        .expect("untracked volume");
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    r.new_events().await;
    r.controller
        .unpublish(&"pvc-1".into(), &"node-b".into())
        .expect("node not attached");
    assert_eq!(r.controller.volumes()[0].nodes, vec!["node-a".into()]);
    r.expect_events(&[]).await;
}

#[tokio::test]
async fn unpublish_of_the_only_node_untracks_and_posts_volume_detached() {
    let r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    r.new_events().await;
    r.controller
        .unpublish(&"pvc-1".into(), &"node-a".into())
        .expect("detach");
    assert!(r.controller.volumes().is_empty());
    r.expect_events(&[(
        N,
        "VolumeDetached",
        "[pvc-1]: Detached from node node-a",
        "disk-1",
    )])
    .await;
    // Repeating it changes nothing and posts nothing.
    r.controller
        .unpublish(&"pvc-1".into(), &"node-a".into())
        .expect("idempotent");
    r.expect_events(&[]).await;
}

/// Starts a migration of pvc-1 from node-a to node-b at the start instant.
async fn migrating(timeout: Option<&str>) -> model_support::Rig {
    let r = rig(&volumes(3)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwx))
        .await
        .expect("attach");
    let mut second = publish(1, "node-b", AccessMode::Rwx);
    if let Some(timeout) = timeout {
        second = second.context_entry("migrationTimeoutSeconds", timeout);
    }
    r.controller.publish(second).await.expect("migrate");
    r.new_events().await;
    r
}

#[tokio::test]
async fn unpublish_of_the_source_completes_the_migration() {
    let r = migrating(None).await;
    r.advance(Duration::from_millis(135_456)).await;
    r.controller
        .unpublish(&"pvc-1".into(), &"node-a".into())
        .expect("source leaves");
    let view = &r.controller.volumes()[0];
    assert_eq!(view.nodes, vec!["node-b".into()]);
    assert_eq!(view.migration, None);
    assert_eq!(r.metrics.migrations(MigrationResult::Success), 1);
    assert_eq!(r.metrics.active_migrations(), 0);
    assert_eq!(r.controller.timers(), 0, "the timer is cancelled");
    r.expect_events(&[(
        N,
        "MigrationCompleted",
        "[pvc-1]: KubeVirt live migration completed - source: node-a -> target: node-b (duration: 2m15s)",
        "disk-1",
    )])
    .await;
    // The cancelled timer never fires.
    r.advance(secs(3600)).await;
    r.expect_events(&[]).await;
}

#[tokio::test]
async fn unpublish_of_the_target_aborts_the_migration_as_a_failure() {
    let r = migrating(None).await;
    r.advance(secs(42)).await;
    r.controller
        .unpublish(&"pvc-1".into(), &"node-b".into())
        .expect("target leaves");
    let view = &r.controller.volumes()[0];
    assert_eq!(
        view.nodes,
        vec!["node-a".into()],
        "the source stays primary"
    );
    assert_eq!(view.migration, None);
    assert_eq!(r.metrics.migrations(MigrationResult::Aborted), 1);
    assert_eq!(r.metrics.migrations(MigrationResult::Success), 0);
    assert_eq!(r.metrics.active_migrations(), 0);
    r.expect_events(&[(
        W,
        "MigrationFailed",
        "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: target detached before source, elapsed: 42s",
        "disk-1",
    )])
    .await;
    r.advance(secs(3600)).await;
    r.expect_events(&[]).await;
}

#[tokio::test]
async fn unpublish_after_a_timeout_leaves_the_other_node_primary_quietly() {
    for (leaving, staying) in [("node-a", "node-b"), ("node-b", "node-a")] {
        let r = migrating(Some("30")).await;
        r.advance(secs(31)).await;
        assert_eq!(r.new_events().await.len(), 1, "the timeout was reported");
        r.controller
            .unpublish(&"pvc-1".into(), &leaving.into())
            .expect("detach");
        let view = &r.controller.volumes()[0];
        assert_eq!(view.nodes, vec![staying.into()], "{leaving} left");
        assert_eq!(view.migration, None);
        assert_eq!(r.metrics.migrations(MigrationResult::Timeout), 1);
        assert_eq!(r.metrics.migrations(MigrationResult::Success), 0);
        assert_eq!(r.metrics.migrations(MigrationResult::Aborted), 0);
        assert_eq!(r.metrics.active_migrations(), 0);
        r.expect_events(&[]).await;
    }
}

// ---------------------------------------------------------------- Time

/// The timer fires at start + timeout + 1 ns, not a nanosecond earlier, once.
async fn fires_exactly_after(value: &str, timeout: Duration, printed: &str) {
    let r = migrating(Some(value)).await;
    assert_eq!(
        r.controller.volumes()[0]
            .migration
            .as_ref()
            .map(|m| m.timeout),
        Some(timeout)
    );
    r.advance(timeout).await;
    r.expect_events(&[]).await;
    assert!(
        !r.controller.volumes()[0]
            .migration
            .as_ref()
            .expect("migration")
            .failed
    );
    assert_eq!(r.metrics.active_migrations(), 1);
    r.advance(Duration::from_nanos(1)).await;
    let message = format!(
        "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: {printed}"
    );
    r.expect_events(&[(W, "MigrationFailed", &message, "disk-1")])
        .await;
    let view = &r.controller.volumes()[0];
    assert_eq!(
        view.nodes,
        vec!["node-a".into(), "node-b".into()],
        "both nodes stay"
    );
    assert!(view.migration.as_ref().expect("migration").failed);
    assert_eq!(r.metrics.migrations(MigrationResult::Timeout), 1);
    assert_eq!(r.metrics.active_migrations(), 0);
    assert_eq!(r.controller.timers(), 0);
    // Once: nothing more, however long it stays.
    r.advance(secs(7200)).await;
    r.expect_events(&[]).await;
    assert_eq!(r.metrics.migrations(MigrationResult::Timeout), 1);
}

#[tokio::test]
async fn timeout_below_the_minimum_is_clamped_to_30s_and_fires_just_after_it() {
    fires_exactly_after("10", secs(30), "30s").await;
}

#[tokio::test]
async fn timeout_above_the_maximum_is_clamped_to_1h_and_fires_just_after_it() {
    fires_exactly_after("7200", secs(3600), "1h0m0s").await;
}

#[tokio::test]
async fn timeout_that_is_not_a_number_is_5m_with_a_warning() {
    fires_exactly_after("abc", secs(300), "5m0s").await;
}

#[tokio::test]
async fn timeout_defaults_and_clamps_show_in_migration_started() {
    for (value, printed, warns) in [
        (None, "5m0s", false),
        (Some(""), "5m0s", false),
        (Some("abc"), "5m0s", true),
        (Some("0"), "5m0s", true),
        (Some("-3"), "5m0s", true),
        (Some("10"), "30s", true),
        (Some("90"), "1m30s", false),
        (Some("7200"), "1h0m0s", true),
    ] {
        let r = rig(&volumes(1)).await;
        r.controller
            .publish(publish(1, "node-a", AccessMode::Rwx))
            .await
            .expect("attach");
        let mut second = publish(1, "node-b", AccessMode::Rwx);
        if let Some(value) = value {
            second = second.context_entry("migrationTimeoutSeconds", value);
        }
        r.controller.publish(second).await.expect("migrate");
        let events = r.events().await;
        assert_eq!(
            events[1].message,
            format!(
                "[pvc-1]: KubeVirt live migration started - source: node-a, target: node-b, timeout: {printed}"
            ),
            "{value:?}"
        );
        let logs = r.logs.text();
        assert_eq!(
            logs.contains("migrationTimeoutSeconds"),
            warns,
            "{value:?} warns: {warns}; logs:\n{logs}"
        );
        if warns {
            assert!(logs.contains("WARN"), "{logs}");
        }
    }
}

// ---------------------------------------------------------------- Deleted nodes

#[tokio::test]
async fn deleted_only_node_untracks_and_posts_stale_attachment_cleared() {
    let r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    r.new_events().await;
    r.controller.node_deleted(&"node-a".into());
    assert!(r.controller.volumes().is_empty());
    assert_eq!(r.metrics.stale_cleared(), 1);
    r.expect_events(&[(
        N,
        "StaleAttachmentCleared",
        "[pvc-1]: Cleared stale attachment from deleted node node-a",
        "disk-1",
    )])
    .await;
    // A second call finds nothing, and the node is unknown now.
    r.controller.node_deleted(&"node-a".into());
    r.expect_events(&[]).await;
    let refused = r
        .controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect_err("deleted node");
    assert_eq!(refused.code, Code::NotFound);
}

#[tokio::test]
async fn deleted_node_of_a_running_migration_fails_it_then_clears_it() {
    for (deleted, staying) in [("node-b", "node-a"), ("node-a", "node-b")] {
        let r = migrating(None).await;
        r.advance(secs(61)).await;
        r.controller.node_deleted(&deleted.into());
        let view = &r.controller.volumes()[0];
        assert_eq!(view.nodes, vec![staying.into()], "{deleted} deleted");
        assert_eq!(view.migration, None);
        assert_eq!(r.metrics.migrations(MigrationResult::NodeDeleted), 1);
        assert_eq!(r.metrics.active_migrations(), 0);
        assert_eq!(r.metrics.stale_cleared(), 1);
        assert_eq!(r.controller.timers(), 0);
        let failed = format!(
            "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: node {deleted} deleted, elapsed: 1m1s"
        );
        let cleared = format!("[pvc-1]: Cleared stale attachment from deleted node {deleted}");
        r.expect_events(&[
            (W, "MigrationFailed", &failed, "disk-1"),
            (N, "StaleAttachmentCleared", &cleared, "disk-1"),
        ])
        .await;
        r.advance(secs(3600)).await;
        r.expect_events(&[]).await;
    }
}

#[tokio::test]
async fn deleted_node_of_a_failed_migration_is_only_cleared() {
    let r = migrating(Some("30")).await;
    r.advance(secs(31)).await;
    assert_eq!(r.new_events().await.len(), 1, "the timeout");
    r.controller.node_deleted(&"node-a".into());
    let view = &r.controller.volumes()[0];
    assert_eq!(view.nodes, vec!["node-b".into()]);
    assert_eq!(view.migration, None);
    assert_eq!(r.metrics.migrations(MigrationResult::NodeDeleted), 0);
    assert_eq!(r.metrics.active_migrations(), 0);
    r.expect_events(&[(
        N,
        "StaleAttachmentCleared",
        "[pvc-1]: Cleared stale attachment from deleted node node-a",
        "disk-1",
    )])
    .await;
}

#[tokio::test]
async fn deleted_node_reconciles_its_volumes_in_volume_id_order() {
    let r = rig(&volumes(3)).await;
    // Published out of order; pvc-2 migrates away from node-a.
    r.controller
        .publish(publish(3, "node-a", AccessMode::Rwo))
        .await
        .expect("3");
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("1");
    r.controller
        .publish(publish(2, "node-a", AccessMode::Rwx))
        .await
        .expect("2");
    r.controller
        .publish(publish(2, "node-c", AccessMode::Rwx))
        .await
        .expect("2 migrates");
    r.new_events().await;
    r.controller.node_deleted(&"node-a".into());
    r.expect_events(&[
        (N, "StaleAttachmentCleared", "[pvc-1]: Cleared stale attachment from deleted node node-a", "disk-1"),
        (
            W,
            "MigrationFailed",
            "[pvc-2]: KubeVirt live migration failed - source: node-a, attempted target: node-c, reason: node node-a deleted, elapsed: 0s",
            "disk-2",
        ),
        (N, "StaleAttachmentCleared", "[pvc-2]: Cleared stale attachment from deleted node node-a", "disk-2"),
        (N, "StaleAttachmentCleared", "[pvc-3]: Cleared stale attachment from deleted node node-a", "disk-3"),
    ])
    .await;
    let views = r.controller.volumes();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].nodes, vec!["node-c".into()]);
    assert_eq!(r.metrics.stale_cleared(), 3);
}

// ---------------------------------------------------------------- Stop

#[tokio::test]
async fn stop_cancels_every_timer_and_posts_nothing_more() {
    let r = migrating(Some("30")).await;
    assert_eq!(r.clock.sleepers(), 1, "the migration's timer");
    r.controller.stop();
    assert_eq!(r.controller.timers(), 0);
    model_support::settle().await;
    assert_eq!(r.clock.sleepers(), 0, "its sleep is gone from the clock");
    r.advance(secs(3600)).await;
    r.expect_events(&[]).await;
}

#[tokio::test]
async fn dropping_the_last_clone_cancels_every_timer() {
    let r = migrating(Some("30")).await;
    let model_support::Rig {
        controller, clock, ..
    } = &r;
    let clone = controller.clone();
    drop(clone);
    assert_eq!(clock.sleepers(), 1, "a clone remains");
    let r = {
        let mut r = r;
        r.controller = csi_events::model::Controller::new(
            r.poster.clone(),
            csi_events::model::ControllerConfig::default(),
        );
        r
    };
    model_support::settle().await;
    assert_eq!(
        r.clock.sleepers(),
        0,
        "the old controller's timer went with it"
    );
    r.advance(secs(3600)).await;
    r.expect_events(&[]).await;
}

// ---------------------------------------------------------------- Claims

#[tokio::test]
async fn claim_from_the_volume_context_is_used_and_remembered_for_every_later_event() {
    // pvc-1's claimRef names disk-1; the volume context names `other`: the context wins, on
    // publish as on unpublish, timers and reconciles.
    let r = rig(&volumes(1)).await;
    let to = |node: &str| {
        Publish::new("pvc-1", node, AccessMode::Rwx)
            .claim("vms", "other")
            .context_entry("migrationTimeoutSeconds", "30")
    };
    r.controller.publish(to("node-a")).await.expect("attach");
    r.controller.publish(to("node-b")).await.expect("migrate");
    r.advance(secs(31)).await;
    r.controller.node_deleted(&"node-a".into());
    r.controller
        .unpublish(&"pvc-1".into(), &"node-b".into())
        .expect("detach");
    let events = r.events().await;
    let reasons: Vec<_> = events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "VolumeAttached",
            "MigrationStarted",
            "MigrationFailed",
            "StaleAttachmentCleared",
            "VolumeDetached"
        ]
    );
    for event in &events {
        assert_eq!(
            (event.claim.as_str(), event.uid.as_str()),
            ("other", "uid-other"),
            "{event:?}"
        );
    }
}

#[tokio::test]
async fn without_context_keys_the_claim_is_found_through_the_pv_claim_ref() {
    let r = rig(&volumes(2)).await;
    r.controller
        .publish(Publish::new("pvc-2", "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    r.controller
        .unpublish(&"pvc-2".into(), &"node-a".into())
        .expect("detach");
    let events = r.events().await;
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.reason.as_str(), e.claim.as_str(), e.uid.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("VolumeAttached", "disk-2", "uid-disk-2"),
            ("VolumeDetached", "disk-2", "uid-disk-2")
        ]
    );
}

// ---------------------------------------------------------------- Restart

/// pvc-1 (RWX PV, timeout 600 s) attached to node-a at the start and to node-b 60 s later;
/// the newer attachment has the smaller name, so list order is not creation order.
fn migration_on_disk(timeout: &str) -> String {
    format!(
        "{}{}{}",
        volume_yaml(
            1,
            "ReadWriteMany",
            &format!("migrationTimeoutSeconds: \"{timeout}\"")
        ),
        attachment_yaml(
            "va-2",
            DRIVER,
            "pvc-1",
            "node-a",
            "2026-01-01T00:00:00Z",
            true
        ),
        attachment_yaml(
            "va-1",
            DRIVER,
            "pvc-1",
            "node-b",
            "2026-01-01T00:01:00Z",
            true
        ),
    )
}

fn at(offset: u64) -> jiff::Timestamp {
    let start: jiff::Timestamp = model_support::START.parse().expect("start");
    start
        .checked_add(jiff::SignedDuration::from_secs(offset as i64))
        .expect("in range")
}

#[tokio::test]
async fn restart_mid_migration_keeps_source_target_start_and_timeout_then_completes() {
    let r = restarted_rig(&migration_on_disk("600"), secs(120)).await;
    let views = r.controller.volumes();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].mode, AccessMode::Rwx);
    assert_eq!(views[0].nodes, vec!["node-a".into(), "node-b".into()]);
    let migration = views[0].migration.clone().expect("running migration");
    assert_eq!(
        (migration.source.as_str(), migration.target.as_str()),
        ("node-a", "node-b"),
        "source = older attachment"
    );
    assert_eq!(
        migration.started,
        at(60),
        "start = newer attachment's creation"
    );
    assert_eq!(migration.timeout, secs(600));
    assert!(!migration.failed);
    assert_eq!(r.metrics.active_migrations(), 1);
    assert_eq!(r.controller.timers(), 1);
    r.expect_events(&[]).await; // a restart posts nothing by itself
    r.advance(secs(75)).await;
    r.controller
        .unpublish(&"pvc-1".into(), &"node-a".into())
        .expect("source leaves");
    r.expect_events(&[(
        N,
        "MigrationCompleted",
        "[pvc-1]: KubeVirt live migration completed - source: node-a -> target: node-b (duration: 2m15s)",
        "disk-1",
    )])
    .await;
    assert_eq!(
        r.events().await[0].uid,
        "uid-disk-1",
        "claimRef path after a restart"
    );
    assert_eq!(r.metrics.migrations(MigrationResult::Success), 1);
    assert_eq!(r.metrics.active_migrations(), 0);
}

#[tokio::test]
async fn restart_mid_migration_times_out_at_the_rebuilt_deadline() {
    let r = restarted_rig(&migration_on_disk("600"), secs(120)).await;
    // start = +60 s, timeout 600 s: the deadline is +660 s + 1 ns.
    r.advance(secs(540)).await;
    r.expect_events(&[]).await;
    r.advance(Duration::from_nanos(1)).await;
    r.expect_events(&[(
        W,
        "MigrationFailed",
        "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 10m0s",
        "disk-1",
    )])
    .await;
    assert_eq!(r.metrics.migrations(MigrationResult::Timeout), 1);
    assert_eq!(r.metrics.active_migrations(), 0);
}

#[tokio::test]
async fn restart_after_the_timeout_passed_fails_the_migration_at_once() {
    // Down from before the deadline (+660 s) until +760 s.
    let r = restarted_rig(&migration_on_disk("600"), secs(760)).await;
    model_support::settle().await;
    r.expect_events(&[(
        W,
        "MigrationFailed",
        "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 11m40s",
        "disk-1",
    )])
    .await;
    assert_eq!(r.elapsed(), secs(760), "the clock did not move");
    let views = r.controller.volumes();
    assert_eq!(views[0].nodes.len(), 2, "both nodes stay");
    assert!(views[0].migration.as_ref().expect("migration").failed);
    assert_eq!(r.metrics.migrations(MigrationResult::Timeout), 1);
    assert_eq!(r.metrics.active_migrations(), 0);
    r.advance(secs(3600)).await;
    r.expect_events(&[]).await;
}

#[tokio::test]
async fn restart_keeps_the_two_oldest_of_more_than_two_attachments_with_a_warning() {
    let extra = format!(
        "{}{}{}{}{}{}{}",
        volume_yaml(1, "ReadWriteMany", ""),
        volume_yaml(2, "ReadWriteOnce", ""),
        attachment_yaml(
            "va-c",
            DRIVER,
            "pvc-1",
            "node-a",
            "2026-01-01T00:00:00Z",
            true
        ),
        attachment_yaml(
            "va-b",
            DRIVER,
            "pvc-1",
            "node-b",
            "2026-01-01T00:00:10Z",
            true
        ),
        attachment_yaml(
            "va-a",
            DRIVER,
            "pvc-1",
            "node-c",
            "2026-01-01T00:00:20Z",
            true
        ),
        // Not this driver's, or not attached: ignored.
        attachment_yaml(
            "va-x",
            "other.csi.io",
            "pvc-2",
            "node-a",
            "2026-01-01T00:00:00Z",
            true
        ),
        attachment_yaml(
            "va-y",
            DRIVER,
            "pvc-2",
            "node-b",
            "2026-01-01T00:00:00Z",
            false
        ),
    );
    let r = restarted_rig(&extra, secs(30)).await;
    let views = r.controller.volumes();
    assert_eq!(views.len(), 1, "only pvc-1: {views:?}");
    assert_eq!(views[0].nodes, vec!["node-a".into(), "node-b".into()]);
    let migration = views[0].migration.clone().expect("migration");
    assert_eq!(migration.started, at(10));
    assert_eq!(migration.timeout, secs(300), "no attribute: the default");
    let logs = r.logs.text();
    assert!(
        logs.contains("WARN") && logs.contains("keeping the two oldest") && logs.contains("va-a"),
        "{logs}"
    );
}

#[tokio::test]
async fn restart_reads_the_access_mode_of_a_single_attachment_from_the_pv() {
    let extra = format!(
        "{}{}{}{}",
        volume_yaml(1, "ReadWriteMany", ""),
        volume_yaml(2, "ReadWriteOnce", ""),
        attachment_yaml(
            "va-1",
            DRIVER,
            "pvc-1",
            "node-a",
            "2026-01-01T00:00:00Z",
            true
        ),
        attachment_yaml(
            "va-2",
            DRIVER,
            "pvc-2",
            "node-a",
            "2026-01-01T00:00:00Z",
            true
        ),
    );
    let r = restarted_rig(&extra, secs(30)).await;
    let modes: Vec<_> = r.controller.volumes().iter().map(|v| v.mode).collect();
    assert_eq!(modes, [AccessMode::Rwx, AccessMode::Rwo]);
    r.controller
        .publish(Publish::new("pvc-1", "node-b", AccessMode::Rwx))
        .await
        .expect("RWX: a migration starts");
    let refused = r
        .controller
        .publish(Publish::new("pvc-2", "node-b", AccessMode::Rwx))
        .await
        .expect_err("RWO: a conflict");
    assert_eq!(refused.code, Code::FailedPrecondition);
    let reasons: Vec<_> = r
        .events()
        .await
        .into_iter()
        .map(|e| (e.reason, e.claim))
        .collect();
    assert_eq!(
        reasons,
        [
            ("MigrationStarted".to_string(), "disk-1".to_string()),
            ("AttachmentConflict".to_string(), "disk-2".to_string())
        ]
    );
}

#[tokio::test]
async fn metrics_after_a_restart_count_the_rebuilt_migrations_and_never_go_negative() {
    use csi_events::model::Controller;
    let cluster = model_support::cluster_rig(&migration_on_disk("600"));
    let metrics = cluster.metrics.clone();
    // Before the restart a controller had two migrations running on these metrics.
    let before = Controller::new(cluster.poster.clone(), cluster.config());
    for node in ["node-a", "node-b", "node-c"] {
        before.node_added(&node.into());
    }
    for (volume, nodes) in [
        ("pvc-7", ["node-a", "node-b"]),
        ("pvc-8", ["node-b", "node-c"]),
    ] {
        for node in nodes {
            before
                .publish(Publish::new(volume, node, AccessMode::Rwx))
                .await
                .expect("publish");
        }
    }
    assert_eq!(metrics.active_migrations(), 2);
    drop(before);
    cluster.clock.advance(secs(120)).await;
    let after = Controller::rebuild(
        cluster.cluster.client(),
        cluster.poster.clone(),
        cluster.config(),
    )
    .await
    .expect("rebuild");
    assert_eq!(
        metrics.active_migrations(),
        1,
        "set from the rebuilt migrations"
    );
    let mut registry = prometheus_client::registry::Registry::with_prefix("rds_csi");
    metrics.register(&mut registry);
    after
        .unpublish(&"pvc-1".into(), &"node-a".into())
        .expect("complete");
    after
        .unpublish(&"pvc-1".into(), &"node-a".into())
        .expect("repeat");
    after
        .unpublish(&"pvc-1".into(), &"node-b".into())
        .expect("detach");
    assert_eq!(metrics.active_migrations(), 0);
    assert_eq!(metrics.migrations(MigrationResult::Success), 1);
    let text = csi_events::metrics::encode_text(&registry);
    for line in [
        "rds_csi_migration_active_migrations 0",
        r#"rds_csi_migration_migrations_total{result="success"} 1"#,
        "rds_csi_migration_duration_seconds_count 1",
        "rds_csi_migration_duration_seconds_sum 60.0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

// ---------------------------------------------------------------- Node watcher

/// Lets the watcher and the poster run until `done` holds (bounded, no sleeping).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        model_support::settle().await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn node_watcher_learns_the_nodes_and_reconciles_a_node_deleted_through_the_api() {
    use csi_events::model::{Controller, watch_nodes};
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, DeleteParams};

    let cluster = model_support::cluster_rig(&volumes(1));
    let controller = Controller::new(cluster.poster.clone(), cluster.config());
    let watcher = tokio::spawn(watch_nodes(cluster.cluster.client(), controller.clone()));
    until("the initial list", || controller.nodes().len() == 3).await;
    let r = cluster.with_controller(controller);
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    r.new_events().await;
    let nodes: Api<Node> = Api::all(r.cluster.client());
    nodes
        .delete("node-a", &DeleteParams::default())
        .await
        .expect("delete the node");
    until("the deletion", || r.controller.volumes().is_empty()).await;
    assert_eq!(r.controller.nodes(), vec!["node-b".into(), "node-c".into()]);
    r.expect_events(&[(
        N,
        "StaleAttachmentCleared",
        "[pvc-1]: Cleared stale attachment from deleted node node-a",
        "disk-1",
    )])
    .await;
    watcher.abort();
}

#[tokio::test]
async fn node_watcher_reconciles_attached_nodes_missing_from_the_list() {
    use csi_events::model::watch_nodes;
    let extra = format!(
        "{}{}",
        volume_yaml(1, "ReadWriteOnce", ""),
        attachment_yaml(
            "va-1",
            DRIVER,
            "pvc-1",
            "node-gone",
            "2026-01-01T00:00:00Z",
            true
        ),
    );
    let r = restarted_rig(&extra, secs(10)).await;
    assert_eq!(r.controller.volumes().len(), 1);
    let watcher = tokio::spawn(watch_nodes(r.cluster.client(), r.controller.clone()));
    until("the relist", || r.controller.volumes().is_empty()).await;
    r.expect_events(&[(
        N,
        "StaleAttachmentCleared",
        "[pvc-1]: Cleared stale attachment from deleted node node-gone",
        "disk-1",
    )])
    .await;
    watcher.abort();
}

// ---------------------------------------------------------------- API failures

#[tokio::test]
async fn rebuild_reports_which_list_failed_and_what_to_fix() {
    use csi_events::model::{Controller, RebuildError};
    use fake_apiserver::control::{Fault, Verb};
    let cluster = model_support::cluster_rig("");
    cluster
        .cluster
        .faults()
        .add(Fault::new(Verb::List, "volumeattachments").status(403));
    let error = Controller::rebuild(
        cluster.cluster.client(),
        cluster.poster.clone(),
        cluster.config(),
    )
    .await
    .expect_err("forbidden");
    assert!(
        matches!(
            error,
            RebuildError::List {
                kind: "volumeattachments",
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("listing volumeattachments failed") && text.contains("RBAC"),
        "{text}"
    );
}

#[tokio::test]
async fn node_watcher_stops_with_an_error_when_the_api_forbids_it() {
    use csi_events::model::{Controller, WatchError, watch_nodes};
    use fake_apiserver::control::{Fault, Verb};
    let cluster = model_support::cluster_rig("");
    cluster
        .cluster
        .faults()
        .add(Fault::new(Verb::List, "nodes").status(403));
    let controller = Controller::new(cluster.poster.clone(), cluster.config());
    let error = watch_nodes(cluster.cluster.client(), controller.clone())
        .await
        .expect_err("forbidden for good");
    assert!(matches!(error, WatchError::Refused { .. }), "{error:?}");
    assert!(error.to_string().contains("RBAC"), "{error}");
    assert!(controller.nodes().is_empty());
}

#[tokio::test]
async fn empty_volume_or_node_is_an_invalid_argument_and_posts_nothing() {
    let r = rig(&volumes(1)).await;
    let refused = r
        .controller
        .publish(Publish::new("", "node-a", AccessMode::Rwo))
        .await
        .expect_err("no volume");
    assert_eq!(
        refused,
        RpcError::new(Code::InvalidArgument, "volume ID is required")
    );
    let refused = r
        .controller
        .publish(Publish::new("pvc-1", "", AccessMode::Rwo))
        .await
        .expect_err("no node");
    assert_eq!(
        refused,
        RpcError::new(Code::InvalidArgument, "node ID is required")
    );
    let refused = r
        .controller
        .unpublish(&"".into(), &"node-a".into())
        .expect_err("no volume");
    assert_eq!(refused.code, Code::InvalidArgument);
    assert!(r.controller.volumes().is_empty());
    r.expect_events(&[]).await;
}

// ---------------------------------------------------------------- A holder that is gone

/// Deletes node `name` from the API server only: the node watcher misses it.
async fn delete_node_unobserved(r: &model_support::Rig, name: &str) {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, DeleteParams};
    let api: Api<Node> = Api::all(r.cluster.client());
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete node");
}

#[tokio::test]
async fn publish_rwo_when_the_holder_was_deleted_unobserved_clears_it_at_once() {
    let r = rig(&volume_yaml(1, "ReadWriteOnce", "")).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    r.new_events().await;
    delete_node_unobserved(&r, "node-a").await;
    assert!(r.controller.nodes().contains(&"node-a".into()), "missed");
    r.controller
        .publish(publish(1, "node-b", AccessMode::Rwo).took(Duration::from_millis(45)))
        .await
        .expect("the holder is gone: cleared, and node-b attached in the same call");
    assert_eq!(r.controller.volumes()[0].nodes, vec!["node-b".into()]);
    assert_eq!(r.metrics.stale_cleared(), 1);
    assert_eq!(r.metrics.conflicts(), 0);
    r.expect_events(&[
        (
            N,
            "StaleAttachmentCleared",
            "[pvc-1]: Cleared stale attachment from deleted node node-a",
            "disk-1",
        ),
        (
            N,
            "VolumeAttached",
            "[pvc-1]: Attached to node node-b (duration: 45ms)",
            "disk-1",
        ),
    ])
    .await;
    // The model has learnt that node-a is gone.
    assert!(!r.controller.nodes().contains(&"node-a".into()));
    let refused = r
        .controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect_err("node-a is gone");
    assert_eq!(
        refused,
        RpcError::new(Code::NotFound, "node node-a not found")
    );
    r.expect_events(&[]).await;
}

#[tokio::test]
async fn publish_rwo_conflict_fails_closed_with_unavailable_when_the_holder_cannot_be_read() {
    use fake_apiserver::control::{Fault, Verb};
    let r = rig(&volume_yaml(1, "ReadWriteOnce", "")).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    r.new_events().await;
    r.cluster
        .faults()
        .add(Fault::new(Verb::Get, "nodes").status(503).times(1));
    let refused = r
        .controller
        .publish(publish(1, "node-b", AccessMode::Rwo))
        .await
        .expect_err("the holder could not be read");
    assert_eq!(
        refused,
        RpcError::new(
            Code::Unavailable,
            "could not check whether node node-a, which holds volume pvc-1, still exists: the API server answered 503 ServiceUnavailable; retry"
        )
    );
    assert_eq!(r.controller.volumes()[0].nodes, vec!["node-a".into()]);
    assert_eq!((r.metrics.conflicts(), r.metrics.stale_cleared()), (0, 0));
    r.expect_events(&[]).await;
    // The retry reads it: node-a exists, so this is the conflict row.
    let refused = r
        .controller
        .publish(publish(1, "node-b", AccessMode::Rwo))
        .await
        .expect_err("conflict");
    assert_eq!(refused.code, Code::FailedPrecondition);
    assert_eq!(r.metrics.conflicts(), 1);
    r.expect_events(&[(
        W,
        "AttachmentConflict",
        "[pvc-1]: Attachment to node node-b rejected - volume already attached to node node-a. Delete the pod on node-a to release the volume.",
        "disk-1",
    )])
    .await;
}

#[tokio::test]
async fn publish_rwo_conflict_gives_up_on_a_slow_holder_read_after_the_lookup_timeout() {
    use fake_apiserver::control::{Fault, Verb};
    let r = rig(&volume_yaml(1, "ReadWriteOnce", "")).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    r.cluster.faults().add(
        Fault::new(Verb::Get, "nodes")
            .latency(Duration::from_secs(3600))
            .times(1),
    );
    let publishing = r.controller.publish(publish(1, "node-b", AccessMode::Rwo));
    tokio::pin!(publishing);
    assert!(
        futures::poll!(publishing.as_mut()).is_pending(),
        "waits on the read"
    );
    r.clock.advance(secs(10)).await;
    let std::task::Poll::Ready(result) = futures::poll!(publishing.as_mut()) else {
        panic!("still waiting after the 10 s lookup timeout");
    };
    assert_eq!(
        result,
        Err(RpcError::new(
            Code::Unavailable,
            "could not check whether node node-a, which holds volume pvc-1, still exists: no answer within 10s; retry"
        ))
    );
    assert_eq!(r.controller.volumes()[0].nodes, vec!["node-a".into()]);
}

#[tokio::test]
async fn publish_is_ready_on_its_first_poll_except_on_the_rwo_conflict_path() {
    use fake_apiserver::control::Fault;
    let r = rig(&format!(
        "{}{}",
        volume_yaml(1, "ReadWriteOnce", ""),
        volume_yaml(2, "ReadWriteMany", "")
    ))
    .await;
    // Every request to the API server takes an hour: no decision may wait for one.
    r.cluster
        .faults()
        .add(Fault::any().latency(Duration::from_secs(3600)));
    let calls = [
        publish(1, "node-a", AccessMode::Rwo),      // first attach
        publish(1, "node-a", AccessMode::Rwo),      // idempotent
        publish(2, "node-a", AccessMode::Rwx),      // first attach
        publish(2, "node-b", AccessMode::Rwx),      // migration starts (record written)
        publish(2, "node-c", AccessMode::Rwx),      // migration limit
        publish(9, "node-x", AccessMode::Rwo),      // unknown node
        Publish::new("pvc-1", "", AccessMode::Rwo), // invalid
    ];
    for call in calls {
        let text = format!("{call:?}");
        let publishing = r.controller.publish(call);
        tokio::pin!(publishing);
        assert!(
            futures::poll!(publishing.as_mut()).is_ready(),
            "{text} waited"
        );
    }
    // The conflict path is the one that reads the API server.
    let publishing = r.controller.publish(publish(1, "node-b", AccessMode::Rwo));
    tokio::pin!(publishing);
    assert!(futures::poll!(publishing.as_mut()).is_pending());
}

#[tokio::test]
async fn publish_without_a_client_trusts_the_known_nodes() {
    use csi_events::model::{Controller, ControllerConfig};
    let r = rig(&volume_yaml(1, "ReadWriteOnce", "")).await;
    let controller = Controller::new(
        r.poster.clone(),
        ControllerConfig::default().clock(std::sync::Arc::new(r.clock.clone())),
    );
    controller.node_added(&"node-a".into());
    controller.node_added(&"node-b".into());
    controller
        .publish(publish(1, "node-a", AccessMode::Rwo))
        .await
        .expect("attach");
    delete_node_unobserved(&r, "node-a").await;
    let refused = controller
        .publish(publish(1, "node-b", AccessMode::Rwo))
        .await
        .expect_err("no client: the node set is all it knows");
    assert_eq!(refused.code, Code::FailedPrecondition);
    controller.stop();
}

// ---------------------------------------------------------------- Migration records

fn offset(nanos: u64) -> jiff::Timestamp {
    let start: jiff::Timestamp = model_support::START.parse().expect("start");
    start
        .checked_add(jiff::SignedDuration::from_nanos(nanos as i64))
        .expect("in range")
}

#[tokio::test]
async fn migration_record_is_written_at_start_and_failure_and_removed_at_the_end() {
    let r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwx))
        .await
        .expect("attach");
    assert_eq!(r.record("pvc-1").await, None, "no migration, no record");
    r.clock.advance(Duration::from_nanos(1_500_000_001)).await;
    r.controller
        .publish(
            publish(1, "node-b", AccessMode::Rwx).context_entry("migrationTimeoutSeconds", "30"),
        )
        .await
        .expect("migration starts");
    assert_eq!(
        r.record("pvc-1").await,
        Some(serde_json::json!({
            "version": 1, "source": "node-a", "target": "node-b",
            "started": "2026-01-01T00:00:01.500000001Z", "timeoutSeconds": 30, "failed": false
        }))
    );
    r.advance(secs(31)).await;
    assert_eq!(
        r.record("pvc-1").await.map(|v| v["failed"].clone()),
        Some(serde_json::json!(true)),
        "marked failed when the timeout fired"
    );
    r.controller
        .unpublish(&"pvc-1".into(), &"node-a".into())
        .expect("detach");
    assert_eq!(r.record("pvc-1").await, None, "removed at the end");
}

#[tokio::test]
async fn migration_record_write_is_retried_with_backoff_and_the_latest_state_wins() {
    use fake_apiserver::control::{Fault, Verb};
    let r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwx))
        .await
        .expect("attach");
    r.cluster.faults().add(
        Fault::new(Verb::Patch, "persistentvolumes")
            .status(500)
            .times(2),
    );
    r.controller
        .publish(publish(1, "node-b", AccessMode::Rwx))
        .await
        .expect("the publish does not wait for the record");
    assert_eq!(
        r.record("pvc-1").await,
        None,
        "first try failed: waits 500 ms"
    );
    r.advance(Duration::from_millis(500)).await;
    assert_eq!(
        r.record("pvc-1").await,
        None,
        "second try failed: waits 1 s"
    );
    r.advance(Duration::from_millis(999)).await;
    assert_eq!(r.record("pvc-1").await, None, "not before the backoff");
    r.advance(Duration::from_millis(1)).await;
    let record = r.record("pvc-1").await.expect("written on the third try");
    assert_eq!(
        (&record["source"], &record["failed"]),
        (&serde_json::json!("node-a"), &serde_json::json!(false))
    );
    let patches = || {
        r.cluster
            .requests()
            .iter()
            .filter(|q| {
                q.info().verb == Some(Verb::Patch)
                    && q.info().resource.as_deref() == Some("persistentvolumes")
            })
            .count()
    };
    assert_eq!(patches(), 3);

    // Latest state wins: a state that changes while a write waits on its backoff is written
    // once, as it is by then.
    r.cluster.faults().add(
        Fault::new(Verb::Patch, "persistentvolumes")
            .status(503)
            .times(1),
    );
    r.controller
        .unpublish(&"pvc-1".into(), &"node-b".into())
        .expect("aborted: the record goes");
    model_support::settle().await;
    r.controller
        .publish(publish(1, "node-c", AccessMode::Rwx))
        .await
        .expect("a new migration, node-a -> node-c");
    r.advance(Duration::from_millis(500)).await;
    let record = r.record("pvc-1").await.expect("the newest record");
    assert_eq!(record["target"], "node-c", "{record}");
    assert_eq!(
        patches(),
        5,
        "the failed removal, then the newest record only"
    );
}

#[tokio::test]
async fn restart_after_a_reported_timeout_reports_nothing_again_however_many_restarts() {
    let mut r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwx))
        .await
        .expect("attach");
    // The newer attachment sorts first by name and both are stamped in the same second:
    // creation-time order cannot tell source from target.
    r.attachment("va-2", "pvc-1", "node-a").await;
    r.clock.advance(Duration::from_millis(500)).await;
    r.controller
        .publish(
            publish(1, "node-b", AccessMode::Rwx).context_entry("migrationTimeoutSeconds", "30"),
        )
        .await
        .expect("migration starts");
    r.attachment("va-1", "pvc-1", "node-b").await;
    r.advance(Duration::from_millis(30_001)).await;
    r.expect_events(&[
        (N, "VolumeAttached", "[pvc-1]: Attached to node node-a (duration: 0s)", "disk-1"),
        (
            N,
            "MigrationStarted",
            "[pvc-1]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 30s",
            "disk-1",
        ),
        (
            W,
            "MigrationFailed",
            "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 30s",
            "disk-1",
        ),
    ])
    .await;
    for restart in 1..=3 {
        r.restart().await;
        r.advance(secs(60)).await;
        r.expect_events(&[]).await;
        let views = r.controller.volumes();
        let migration = views[0].migration.clone().expect("the failed migration");
        assert_eq!(
            (
                views[0].nodes.clone(),
                migration.source.as_str(),
                migration.target.as_str(),
                migration.started,
                migration.timeout,
                migration.failed
            ),
            (
                vec!["node-a".into(), "node-b".into()],
                "node-a",
                "node-b",
                offset(500_000_000),
                secs(30),
                true
            ),
            "restart {restart}"
        );
        assert_eq!(r.metrics.active_migrations(), 0, "restart {restart}");
        assert_eq!(r.controller.timers(), 0, "restart {restart}");
        assert_eq!(r.metrics.migrations(MigrationResult::Timeout), 0);
    }
    assert!(
        r.logs.text().contains("from its record"),
        "{}",
        r.logs.text()
    );
    // Detaching either node after the failure posts nothing (it was reported).
    r.controller
        .unpublish(&"pvc-1".into(), &"node-a".into())
        .expect("detach");
    r.expect_events(&[]).await;
    assert_eq!(r.controller.volumes()[0].nodes, vec!["node-b".into()]);
}

#[tokio::test]
async fn restart_mid_migration_keeps_the_start_to_the_nanosecond() {
    let mut r = rig(&volumes(1)).await;
    r.controller
        .publish(publish(1, "node-a", AccessMode::Rwx))
        .await
        .expect("attach");
    r.attachment("va-a", "pvc-1", "node-a").await;
    r.clock.advance(Duration::from_nanos(1_250_000_001)).await;
    r.controller
        .publish(
            publish(1, "node-b", AccessMode::Rwx).context_entry("migrationTimeoutSeconds", "30"),
        )
        .await
        .expect("migration starts");
    r.attachment("va-b", "pvc-1", "node-b").await;
    r.new_events().await;
    r.advance(secs(20)).await;
    r.restart().await;
    let migration = r.controller.volumes()[0]
        .migration
        .clone()
        .expect("running");
    assert_eq!(
        migration.started,
        offset(1_250_000_001),
        "not the attachment's whole second"
    );
    assert_eq!(r.metrics.active_migrations(), 1);
    // The deadline is start + 30 s + 1 ns = +31.250000002 s: not a nanosecond earlier.
    r.advance(Duration::from_nanos(10_000_000_000)).await; // +31.250000001 s
    r.expect_events(&[]).await;
    r.advance(Duration::from_nanos(1)).await;
    r.expect_events(&[(
        W,
        "MigrationFailed",
        "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 30s",
        "disk-1",
    )])
    .await;
    assert_eq!(r.metrics.migrations(MigrationResult::Timeout), 1);
}

#[tokio::test]
async fn restart_without_a_usable_record_falls_back_to_creation_order_and_says_so() {
    // Equal creation times: the name decides, with a warning that it is a guess.
    let extra = format!(
        "{}{}{}",
        volume_yaml(1, "ReadWriteMany", "migrationTimeoutSeconds: \"600\""),
        attachment_yaml(
            "va-1",
            DRIVER,
            "pvc-1",
            "node-b",
            "2026-01-01T00:00:00Z",
            true
        ),
        attachment_yaml(
            "va-2",
            DRIVER,
            "pvc-1",
            "node-a",
            "2026-01-01T00:00:00Z",
            true
        ),
    );
    let mut r = restarted_rig(&extra, secs(5)).await;
    let logs = r.logs.text();
    assert!(
        logs.contains("volume pvc-1: it has no migration record; migration node-b -> node-a rebuilt from VolumeAttachment creation times"),
        "{logs}"
    );
    assert!(logs.contains("this order is a guess"), "{logs}");
    let migration = r.controller.volumes()[0]
        .migration
        .clone()
        .expect("running");
    assert_eq!(
        (migration.source.as_str(), migration.target.as_str()),
        ("node-b", "node-a")
    );
    // The guess is written down, so the next restart agrees with it.
    let record = r.record("pvc-1").await.expect("written by the rebuild");
    assert_eq!(
        (&record["source"], &record["target"], &record["started"]),
        (
            &serde_json::json!("node-b"),
            &serde_json::json!("node-a"),
            &serde_json::json!("2026-01-01T00:00:00Z")
        )
    );
    r.restart().await;
    assert!(r.logs.text().contains("from its record"));
    assert_eq!(r.controller.volumes()[0].migration, Some(migration));

    // A record naming other nodes, or one this version cannot read, is not used.
    for (text, why) in [
        (
            r#"{"version":1,"source":"node-c","target":"node-a","started":"2026-01-01T00:00:00Z","timeoutSeconds":600,"failed":true}"#,
            "its migration record names nodes node-c and node-a, not the attached node-b and node-a",
        ),
        (
            r#"{"version":7}"#,
            "its migration record is unusable: it has version 7, this controller reads version 1",
        ),
    ] {
        r.set_record("pvc-1", Some(text)).await;
        r.restart().await;
        let logs = r.logs.text();
        assert!(logs.contains(why), "{logs}");
        let rebuilt = r.controller.volumes()[0]
            .migration
            .clone()
            .expect("running");
        assert!(!rebuilt.failed, "{text}");
        assert_eq!(rebuilt.source.as_str(), "node-b");
    }
}

#[tokio::test]
async fn restart_removes_a_record_left_on_a_volume_without_a_migration() {
    let extra = format!(
        "{}{}",
        volume_yaml(1, "ReadWriteMany", ""),
        attachment_yaml(
            "va-1",
            DRIVER,
            "pvc-1",
            "node-a",
            "2026-01-01T00:00:00Z",
            true
        ),
    );
    let mut r = restarted_rig(&extra, secs(5)).await;
    r.set_record(
        "pvc-1",
        Some(r#"{"version":1,"source":"node-b","target":"node-a","started":"2026-01-01T00:00:00Z","timeoutSeconds":600,"failed":false}"#),
    )
    .await;
    r.restart().await;
    assert_eq!(r.controller.volumes()[0].migration, None);
    assert_eq!(r.record("pvc-1").await, None);
    r.expect_events(&[]).await;
}

#[tokio::test]
async fn restart_leaves_the_records_on_another_drivers_volumes_alone() {
    // pvc-2 belongs to another CSI driver (another run against a shared API server, or a
    // second csi-events driver in the cluster): its record is not this driver's to remove.
    let extra = format!(
        "{}{}",
        volume_yaml(1, "ReadWriteMany", ""),
        volume_yaml(2, "ReadWriteMany", "").replace(
            &format!("driver: {DRIVER}"),
            "driver: other.csi.example.com"
        ),
    );
    let mut r = restarted_rig(&extra, secs(5)).await;
    let record = r#"{"version":1,"source":"node-b","target":"node-a","started":"2026-01-01T00:00:00Z","timeoutSeconds":600,"failed":false}"#;
    r.set_record("pvc-1", Some(record)).await;
    r.set_record("pvc-2", Some(record)).await;
    r.restart().await;
    assert_eq!(r.record("pvc-1").await, None, "this driver's leftover goes");
    assert!(
        r.record("pvc-2").await.is_some(),
        "another driver's record must stay"
    );
    r.expect_events(&[]).await;
}
