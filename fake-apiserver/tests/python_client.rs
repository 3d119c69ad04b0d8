//! The Python `kubernetes` client (37.x) against the `fake-apiserver` binary, unchanged: claims,
//! Status errors, events through both API groups with field selectors, patch, watch, delete.
//! The checks live in `tests/python/client_check.py`; this test starts the server, runs the
//! script. Without the `kubernetes` package on the PATH's python3 it installs it into a
//! virtualenv under the target directory; if that fails, the test fails and says how to fix it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::FakeProcess;

/// A python3 that can `import kubernetes`: the one on the PATH, or a private virtualenv under
/// the target directory into which the package is installed on first use.
fn python_with_kubernetes() -> PathBuf {
    let has_client = |python: &Path| {
        Command::new(python)
            .args(["-c", "import kubernetes"])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    let system = PathBuf::from("python3");
    if has_client(&system) {
        return system;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-kubernetes-venv");
    let python = venv.join("bin").join("python3");
    if has_client(&python) {
        return python;
    }
    let run = |command: &mut Command, what: &str| match command.output() {
        Ok(output) if output.status.success() => {}
        other => panic!(
            "\n\n*** This test needs python3 with the `kubernetes` package and could not {what}: {other:?}\n*** Install it with `python3 -m pip install 'kubernetes>=37,<38'` and run the tests again.\n"
        ),
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "create a virtualenv",
    );
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "kubernetes>=37,<38",
        ]),
        "install the package from PyPI",
    );
    assert!(
        has_client(&python),
        "the virtualenv still lacks `kubernetes`"
    );
    python
}

#[test]
fn python_kubernetes_client_works_unchanged() {
    let python = python_with_kubernetes();
    let server = FakeProcess::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_check.py");
    let output = Command::new(&python)
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
        10,
        "every check ran:\n{stdout}"
    );
}
