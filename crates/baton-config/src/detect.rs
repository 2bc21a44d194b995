use std::collections::BTreeMap;

use baton_core::StageKind;

use crate::schema::{FAILING_TESTS, ParserKind, StageConfig};

/// Verification stages guessed from the files at the root of a repository, and why.
#[derive(Debug, Clone)]
pub struct DetectedStage {
    /// What gave it away, e.g. `Cargo.toml`.
    pub evidence: &'static str,
    pub stage: StageConfig,
}

fn stage(name: &str, kind: StageKind, run: &str, parser: ParserKind) -> StageConfig {
    StageConfig {
        name: name.into(),
        kind,
        run: run.into(),
        rerun: None,
        timeout: None,
        parser,
        report: None,
        pattern: None,
        section: None,
        status: BTreeMap::new(),
        env: BTreeMap::new(),
        better: Default::default(),
        tolerance: 0.05,
        // Installing the project's dependencies needs their registry.
        network: kind == StageKind::Setup,
    }
}

/// Not `--quiet`: the parser names tests by the `Running` line of their binary, which cargo
/// leaves out when quiet (equal test paths in two binaries would then be one test).
const CARGO_TEST: &str = "cargo test --no-fail-fast -- --format=pretty";
const PYTEST: &str = "python3 -m pytest -rA -q -p no:cacheprovider";

/// Guesses build and test stages for a repository. `read` returns the content of a file at the
/// repository root, or `None` if it does not exist. The first ecosystem that matches wins.
pub fn detect_stages(read: impl Fn(&str) -> Option<String>) -> Vec<DetectedStage> {
    if read("Cargo.toml").is_some() {
        let mut cargo_test = stage("test", StageKind::Test, CARGO_TEST, ParserKind::Libtest);
        // The parser names a test `crate::lib::path` (`it::test::path` in tests/it.rs): the
        // path, exactly, selects it again in whichever binary holds it.
        cargo_test.rerun = Some(format!(
            "set --; for t in {FAILING_TESTS}; do set -- \"$@\" \"${{t#*::*::}}\"; done; {CARGO_TEST} --exact \"$@\""
        ));
        return vec![
            DetectedStage {
                evidence: "Cargo.toml",
                stage: stage(
                    "build",
                    StageKind::Build,
                    "cargo build --all-targets --quiet",
                    ParserKind::ExitCode,
                ),
            },
            DetectedStage { evidence: "Cargo.toml", stage: cargo_test },
        ];
    }
    if read("go.mod").is_some() {
        return vec![DetectedStage {
            evidence: "go.mod",
            stage: stage("test", StageKind::Test, "go test -json ./...", ParserKind::GoJson),
        }];
    }
    if let Some(pkg) = read("package.json")
        && pkg.contains("\"test\"")
    {
        return vec![DetectedStage {
            evidence: "package.json",
            stage: stage("test", StageKind::Test, "npm test --silent", ParserKind::ExitCode),
        }];
    }
    for marker in ["pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini"] {
        if read(marker).is_some() {
            let mut test = stage("test", StageKind::Test, PYTEST, ParserKind::Pytest);
            // pytest's node ids, as the parser reports them, select the tests to run again
            test.rerun = Some(format!("{PYTEST} {FAILING_TESTS}"));
            return vec![DetectedStage { evidence: marker, stage: test }];
        }
    }
    if let Some(makefile) = read("Makefile")
        && makefile.lines().any(|l| l.starts_with("test:"))
    {
        return vec![DetectedStage {
            evidence: "Makefile",
            stage: stage("test", StageKind::Test, "make test", ParserKind::ExitCode),
        }];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(files: &[(&str, &str)]) -> Vec<String> {
        detect_stages(|p| files.iter().find(|(f, _)| *f == p).map(|(_, c)| c.to_string()))
            .into_iter()
            .map(|d| format!("{} <- {}", d.stage.run, d.evidence))
            .collect()
    }

    #[test]
    fn detects_common_layouts() {
        assert_eq!(detect(&[("Cargo.toml", "")]).len(), 2);
        assert_eq!(detect(&[("go.mod", "")]), ["go test -json ./... <- go.mod"]);
        assert_eq!(
            detect(&[("package.json", r#"{"scripts":{"test":"jest"}}"#)]),
            ["npm test --silent <- package.json"]
        );
        assert!(detect(&[("package.json", r#"{"scripts":{}}"#)]).is_empty());
        assert_eq!(detect(&[("setup.py", "")]), ["python3 -m pytest -rA -q -p no:cacheprovider <- setup.py"]);
        assert_eq!(detect(&[("Makefile", "all:\ntest:\n\tsh t.sh\n")]), ["make test <- Makefile"]);
        assert!(detect(&[("README", "")]).is_empty());
    }
}
