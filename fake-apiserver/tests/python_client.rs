//! The Python `kubernetes` client (37.x) against the `fake-apiserver` binary, unchanged: claims,
//! Status errors, events through both API groups with field selectors, patch, watch, delete.
//! The checks live in `tests/python/client_check.py`; this test starts the server, runs the
//! script with `python3`, and fails loudly if python3 or the `kubernetes` package is missing
//! (`.ci/run` installs it).

mod common;

use std::process::Command;

use common::FakeProcess;

#[test]
fn python_kubernetes_client_works_unchanged() {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes; print(kubernetes.__version__)"])
        .output();
    match probe {
        Ok(output) if output.status.success() => {}
        other => panic!(
            "\n\n*** python3 with the `kubernetes` package is required for this test: {other:?}\n*** Install it with `python3 -m pip install kubernetes` (.ci/run does).\n"
        ),
    }
    let server = FakeProcess::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_check.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&server.kubeconfig)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("ALL OK"),
        "the Python client check failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert_eq!(
        stdout.matches("ok: ").count(),
        9,
        "every check ran:\n{stdout}"
    );
}
