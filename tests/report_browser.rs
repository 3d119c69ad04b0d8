//! The visual report (`csi-events run --report FILE.html`, docs/scenarios.md §5) rendered in a
//! real browser: headless Chromium (Debian's `chromium` package, /usr/bin/chromium; `.ci/run`
//! installs it) opens the report of a few library scenarios and a failing copy of one, and
//! the rendered page is checked: an event marker per event of the JSON, a lane per node, the
//! failing scenario marked failed, the keyboard path (a focused marker shows its tooltip), and
//! no request leaving the page (read from Chromium's own network log, with a control page
//! proving that check sees a request when there is one). Screenshots, light and dark, land in
//! target/report/.
//!
//! Without /usr/bin/chromium this test fails, saying how to install it.

#[path = "support/report_page.rs"]
mod report_page;
use report_page::embedded;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_csi-events");
const CHROMIUM: &str = "/usr/bin/chromium";

/// Library scenarios in the report: a migration that completes across a restart, a fault
/// that is used up, a node deleted mid-migration, a timeout.
const LIBRARY: [&str; 4] = [
    "restart-mid-migration-then-completes",
    "fault-500-on-create-retried",
    "node-deleted-migration-target",
    "fault-outage-timer-still-fires",
];
/// This library scenario is copied with a wrong expectation: it must show as failed.
const BROKEN: &str = "failed-migration-target-detached";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/ (the folder holding the binary's profile folder).
fn target_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root().join("target"))
}

fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test renders the report in headless Chromium. Install \
         Debian's package with `apt-get update && apt-get install -y chromium` (as root; \
         .ci/run does this), then run the test again"
    );
}

/// A scratch folder removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("csi-events-report-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless Chromium on `url` with `extra` flags, its network log in `net_log`; returns
/// its stdout. A watchdog ends it if it hangs (this machine has no network: nothing it waits
/// for will come).
fn chromium(scratch: &Path, url: &str, net_log: &Path, extra: &[&str]) -> String {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = scratch.join(format!("profile-{n}"));
    let out_path = scratch.join(format!("chromium-{n}.out"));
    let err_path = scratch.join(format!("chromium-{n}.err"));
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", net_log.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within 120 s on {url}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "chromium failed ({status}) on {url}; stderr:\n{}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    std::fs::read_to_string(&out_path).expect("chromium stdout")
}

/// The URLs of the requests the page itself made, from Chromium's network log: every request
/// job whose initiator is an origin (a file:// page's is `null`) rather than the browser's own
/// background work (`not an origin`), or whose isolation key is the file:// site.
fn page_requests(net_log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(net_log).expect("the network log");
    let log: Value = serde_json::from_str(&text).expect("the network log is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("the log names URL_REQUEST_START_JOB");
    let mut urls = Vec::new();
    for event in log["events"].as_array().expect("events") {
        if event["type"].as_u64() != Some(start_job) {
            continue;
        }
        let params = &event["params"];
        // The job's end carries no parameters.
        let Some(url) = params["url"].as_str() else {
            continue;
        };
        let initiator = params["initiator"].as_str().unwrap_or("");
        let key = params["network_isolation_key"].as_str().unwrap_or("");
        if initiator != "not an origin" || key.contains("file://") {
            urls.push(url.to_owned());
        }
    }
    urls
}

/// Per rendered scenario section: (its `data-name`, its `data-outcome`, its HTML).
fn sections(dom: &str) -> Vec<(String, String, String)> {
    let attr = |tag: &str, name: &str| {
        let key = format!("{name}=\"");
        tag.find(&key).map(|i| {
            let rest = &tag[i + key.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_owned()
        })
    };
    dom.split("<section ")
        .skip(1)
        .map(|chunk| {
            let chunk = &chunk[..chunk.find("</section>").unwrap_or(chunk.len())];
            let tag = &chunk[..chunk.find('>').unwrap_or(0)];
            (
                attr(tag, "data-name").unwrap_or_default(),
                attr(tag, "data-outcome").unwrap_or_default(),
                chunk.to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_report_renders_in_chromium_from_its_json_and_requests_nothing() {
    require_chromium();
    let scratch = Scratch::new("browser");
    let dir = &scratch.0;
    let scenarios = dir.join("scenarios");
    let snapshots = dir.join("snapshots");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::create_dir_all(&snapshots).unwrap();
    for name in LIBRARY.iter().chain([&BROKEN]) {
        let snap = format!("{name}.snap");
        std::fs::copy(root().join("snapshots").join(&snap), snapshots.join(&snap)).unwrap();
    }
    for name in LIBRARY {
        let file = format!("{name}.yaml");
        std::fs::copy(root().join("scenarios").join(&file), scenarios.join(&file)).unwrap();
    }
    // The broken copy expects the wrong elapsed time in its MigrationFailed.
    let original =
        std::fs::read_to_string(root().join("scenarios").join(format!("{BROKEN}.yaml"))).unwrap();
    let broken = original.replace(
        "reason: timeout, elapsed: 45s\"",
        "reason: timeout, elapsed: 44s\"",
    );
    assert_ne!(
        broken, original,
        "{BROKEN}.yaml no longer has the line this test breaks"
    );
    std::fs::write(scenarios.join(format!("{BROKEN}.yaml")), broken).unwrap();

    let out_dir = target_dir().join("report");
    std::fs::create_dir_all(&out_dir).unwrap();
    let report = out_dir.join("browser.html");
    let run = Command::new(BIN)
        .args(["run", "--format", "json", "--snapshots"])
        .arg(&snapshots)
        .arg("--report")
        .arg(&report)
        .arg(&scenarios)
        .current_dir(root())
        .env_remove("CI")
        .output()
        .expect("run csi-events");
    assert_eq!(
        run.status.code(),
        Some(1),
        "one scenario fails: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let page = std::fs::read_to_string(&report).expect("the report");
    // The page's data is what --format json printed.
    let json: Value = serde_json::from_slice(&run.stdout).expect("stdout is JSON");
    let data: Value = serde_json::from_str(embedded(&page)).expect("embedded JSON");
    assert_eq!(data, json, "the page and --format json disagree");
    let all = json["scenarios"].as_array().unwrap();
    assert_eq!(all.len(), LIBRARY.len() + 1);

    let url = format!("file://{}", report.display());
    let net_log = dir.join("net-report.json");
    let dom = chromium(
        dir,
        &format!("{url}#focus=event"),
        &net_log,
        &["--dump-dom"],
    );
    assert!(
        dom.contains("data-rendered=\"true\""),
        "the script did not finish:\n{dom}"
    );

    // An event marker per event.
    let events: usize = all
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .map(|step| step["events"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(events > 10, "the chosen scenarios write events: {events}");
    assert_eq!(dom.matches("data-kind=\"event\"").count(), events);

    let rendered = sections(&dom);
    assert_eq!(rendered.len(), all.len());
    for scenario in all {
        let name = scenario["name"].as_str().unwrap();
        let (_, outcome, html) = rendered
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no section for {name}"));
        let timeline = &scenario["timeline"];
        // A lane per node, in the order of the JSON.
        let nodes: Vec<&str> = timeline["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert!(nodes.len() >= 2, "{name}: {nodes:?}");
        let lanes: Vec<&str> = html
            .match_indices("data-kind=\"lane\" data-lane=\"node\" data-name=\"")
            .map(|(i, m)| {
                let rest = &html[i + m.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        assert_eq!(lanes, nodes, "{name}: node lanes");
        // The other chart elements, one per entry of the JSON.
        let deadlines = timeline["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m.get("deadline").is_some())
            .count();
        assert_eq!(
            html.matches("data-kind=\"deadline\"").count(),
            deadlines,
            "{name}: deadlines"
        );
        for (kind, field) in [
            ("migration", "migrations"),
            ("fault", "faults"),
            ("restart", "restarts"),
            ("attachment", "attachments"),
            ("problem", "problems"),
        ] {
            assert_eq!(
                html.matches(&format!("data-kind=\"{kind}\"")).count(),
                timeline[field].as_array().unwrap().len(),
                "{name}: {kind} elements"
            );
        }
        let expected = if name == BROKEN { "failed" } else { "passed" };
        assert_eq!(outcome, expected, "{name}");
        assert_eq!(scenario["passed"], name != BROKEN, "{name}");
    }
    // The failing scenario: first in the index, its badge, its problem at its step, its diff.
    let (_, _, broken) = rendered.iter().find(|(n, _, _)| n == BROKEN).unwrap();
    assert_eq!(rendered[0].0, BROKEN, "failed scenarios come first");
    assert!(broken.contains("<span class=\"badge failed\" data-outcome=\"failed\">failed</span>"));
    assert!(
        broken.contains("class=\"problem\""),
        "its failed expectation is marked"
    );
    assert!(broken.contains("elapsed: 44s"), "what differed is shown");
    assert!(broken.contains("class=\"del\"") && broken.contains("class=\"ins\""));
    // Something ran into every kind across the chosen scenarios.
    for kind in [
        "migration",
        "deadline",
        "fault",
        "restart",
        "problem",
        "attachment",
    ] {
        assert!(
            dom.contains(&format!("data-kind=\"{kind}\"")),
            "no {kind} drawn"
        );
    }
    // The keyboard: markers are focusable, and the focused one shows its tooltip.
    let marker = dom.find("data-kind=\"event\"").unwrap();
    let marker_tag =
        &dom[dom[..marker].rfind('<').unwrap()..marker + dom[marker..].find('>').unwrap()];
    assert!(marker_tag.contains("tabindex=\"0\""), "{marker_tag}");
    let tip = &dom[dom.find("<div id=\"tip\"").expect("the tooltip")..];
    let tip = &tip[..tip.find("</div>").unwrap()];
    assert!(
        tip.contains("display: block"),
        "focus did not show the tooltip: {tip}"
    );
    assert!(tip.contains("VolumeAttached at 0s"), "{tip}");

    // No request left the page.
    assert_eq!(page_requests(&net_log), Vec::<String>::new());
    // The check sees one when a page makes it (a page without the policy, loading an image).
    let control = dir.join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><img src=\"http://127.0.0.1:9/probe.png\"></body></html>\n",
    )
    .unwrap();
    let control_log = dir.join("net-control.json");
    chromium(
        dir,
        &format!("file://{}", control.display()),
        &control_log,
        &["--dump-dom"],
    );
    assert_eq!(
        page_requests(&control_log),
        ["http://127.0.0.1:9/probe.png"],
        "the network-log check does not see a page's request"
    );

    // Screenshots, light and dark, for people to look at.
    for (file, extra) in [
        ("browser.png", None),
        ("browser-dark.png", Some("--force-dark-mode")),
    ] {
        let shot = out_dir.join(file);
        let _ = std::fs::remove_file(&shot);
        let mut flags = vec![
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000".to_owned(),
            "--hide-scrollbars".to_owned(),
        ];
        flags.extend(extra.map(str::to_owned));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let log = dir.join(format!("net-{file}.json"));
        chromium(dir, &url, &log, &flags);
        let png = std::fs::read(&shot).expect("the screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "{file}: {} bytes",
            png.len()
        );
        assert_eq!(page_requests(&log), Vec::<String>::new(), "{file}");
        eprintln!("screenshot: {}", shot.display());
    }
}
