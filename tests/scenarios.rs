//! One test per scenario file in `scenarios/`, named after the file (`cargo test --test
//! scenarios -- migration` runs a subset): the scenario must pass its own expectations and its
//! transcript must equal its insta snapshot `snapshots/<name>.snap` (`cargo insta review`
//! accepts changes; under `CI=true` a missing snapshot fails). One more test keeps
//! `scenarios/scenario.schema.json` in step with the format. Each file runs twice: on the
//! model directly, and as `wire/<file>` with every attach and detach sent to the model's CSI
//! Controller service over real gRPC; both must match the one snapshot.

use std::path::{Path, PathBuf};

use csi_events::scenario::load::{discover, load_text};
use csi_events::scenario::runner::{Target, run};
use csi_events::scenario::schema::schema_json;
use libtest_mimic::{Arguments, Failed, Trial};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![
        Trial::test("schema_is_up_to_date", || guard(schema_is_up_to_date)),
        Trial::test("every_file_has_the_modeline_and_a_description", || {
            guard(every_file_has_the_modeline_and_a_description)
        }),
    ];
    let files = match discover(&[root().join("scenarios")]) {
        Ok(files) => files,
        Err(why) => {
            eprintln!("cannot list the scenarios: {why}");
            std::process::exit(101);
        }
    };
    for file in files {
        let name = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        let (wire_file, wire_name) = (file.clone(), name.clone());
        trials.push(Trial::test(name.clone(), move || {
            guard(move || scenario(&file, &name, &Target::Embedded))
        }));
        // The same file with every attach and detach sent over the CSI wire: same snapshot.
        trials.push(Trial::test(format!("wire/{wire_name}"), move || {
            guard(move || scenario(&wire_file, &wire_name, &Target::EmbeddedWire))
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// Runs a check, turning a panic (an insta mismatch) into a failure with its message.
fn guard(
    check: impl FnOnce() -> Result<(), Failed> + std::panic::UnwindSafe,
) -> Result<(), Failed> {
    match std::panic::catch_unwind(check) {
        Ok(result) => result,
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".to_owned())
            .into()),
    }
}

fn scenario(file: &Path, display: &str, target: &Target) -> Result<(), Failed> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {display}: {e}"))?;
    let scenario = load_text(display, &text).map_err(|problems| problems.render(false))?;
    let result = run(&scenario, target).map_err(|e| e.to_string())?;
    let yaml = result.transcript.to_yaml();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(scenario.name.as_str(), yaml.trim_end()));
    if result.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{display}:\n  {}", result.failures.join("\n  ")).into())
    }
}

fn schema_is_up_to_date() -> Result<(), Failed> {
    let path = root().join("scenarios/scenario.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == schema_json() {
        Ok(())
    } else {
        Err(format!(
            "{} is stale: regenerate it with `cargo run -- schema > scenarios/scenario.schema.json`",
            path.display()
        )
        .into())
    }
}

/// Editors check a file only with the modeline, and a scenario says what it proves.
fn every_file_has_the_modeline_and_a_description() -> Result<(), Failed> {
    const MODELINE: &str = "# yaml-language-server: $schema=scenario.schema.json";
    let files = discover(&[root().join("scenarios")]).map_err(|e| e.to_string())?;
    let mut wrong = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        let name = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        if text.lines().next() != Some(MODELINE) {
            wrong.push(format!("{name}: the first line must be `{MODELINE}`"));
        }
        let scenario = load_text(&name, &text).map_err(|p| p.render(false))?;
        if scenario
            .description
            .as_deref()
            .is_none_or(|d| d.trim().is_empty())
        {
            wrong.push(format!(
                "{name}: add a `description` saying what the scenario proves"
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n").into())
    }
}
