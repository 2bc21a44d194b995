use std::collections::{BTreeSet, HashSet};

use baton_config::RelatedRule;
use regex::Regex;

use crate::SetupError;
use crate::protect::Protected;

/// Maps changed files to the test files and directories that exercise them, so that a large
/// repository runs only the tests a change can affect.
#[derive(Debug, Clone)]
pub struct RelatedTests {
    rules: Vec<(Regex, Vec<String>)>,
}

impl RelatedTests {
    pub fn new(rules: &[RelatedRule]) -> Result<RelatedTests, SetupError> {
        let rules = rules
            .iter()
            .map(|r| {
                Regex::new(&r.from)
                    .map(|re| (re, r.to.clone()))
                    .map_err(|source| SetupError::Related { pattern: r.from.clone(), source })
            })
            .collect::<Result<_, _>>()?;
        Ok(RelatedTests { rules })
    }

    /// The related tests of `changed` that exist in `tree` (every path of the tree being
    /// verified), plus every changed path that is itself a test (`protected`) and still exists.
    /// Sorted and without duplicates.
    pub fn related(&self, changed: &[String], tree: &[String], protected: &Protected) -> Vec<String> {
        let files: HashSet<&str> = tree.iter().map(String::as_str).collect();
        let mut dirs: HashSet<&str> = HashSet::new();
        for path in tree {
            let mut rest = path.as_str();
            while let Some(i) = rest.rfind('/') {
                rest = &rest[..i];
                if !dirs.insert(rest) {
                    break;
                }
            }
        }
        let mut out = BTreeSet::new();
        for path in changed {
            if protected.is_protected(path) && files.contains(path.as_str()) {
                out.insert(path.clone());
            }
            for (re, templates) in &self.rules {
                let Some(caps) = re.captures(path) else { continue };
                for template in templates {
                    let candidate = expand(template, re, &caps);
                    if candidate.is_empty() || candidate == *path && !protected.is_protected(path) {
                        continue;
                    }
                    if candidate.contains(['*', '?', '[']) {
                        if let Ok(glob) =
                            globset::GlobBuilder::new(&candidate).literal_separator(true).build()
                        {
                            let m = glob.compile_matcher();
                            out.extend(tree.iter().filter(|p| m.is_match(p.as_str())).cloned());
                        }
                    } else {
                        let trimmed = candidate.trim_end_matches('/');
                        if files.contains(trimmed) || dirs.contains(trimmed) {
                            out.insert(trimmed.to_owned());
                        }
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}

/// The entries of `paths` (files or directories) that exist in `tree`, a list of file paths.
pub fn present_in(paths: &[String], tree: &[String]) -> Vec<String> {
    let files: HashSet<&str> = tree.iter().map(String::as_str).collect();
    paths
        .iter()
        .filter(|p| {
            let p = p.trim_end_matches('/');
            files.contains(p)
                || tree.iter().any(|f| f.len() > p.len() && f.starts_with(p) && f.as_bytes()[p.len()] == b'/')
        })
        .cloned()
        .collect()
}

/// The union of related tests cut into groups of files related to the same subjects, in the
/// union's order: `own[k]` is what subject `k`'s own changes relate to. Empty when there is one
/// group (every subject relates to all of the union), so nothing is to be split.
pub fn related_parts<S: AsRef<str> + Ord>(
    union: &[String],
    own: &[std::collections::BTreeSet<S>],
) -> Vec<Vec<String>> {
    let mut parts: Vec<(Vec<bool>, Vec<String>)> = Vec::new();
    for file in union {
        let who: Vec<bool> = own.iter().map(|o| o.iter().any(|f| f.as_ref() == file)).collect();
        match parts.iter_mut().find(|(w, _)| *w == who) {
            Some((_, files)) => files.push(file.clone()),
            None => parts.push((who, vec![file.clone()])),
        }
    }
    if parts.len() < 2 {
        return Vec::new();
    }
    parts.into_iter().map(|(_, files)| files).collect()
}

/// Replaces `{group}` in `template` with the named group's text (empty when it did not take
/// part in the match).
fn expand(template: &str, re: &Regex, caps: &regex::Captures<'_>) -> String {
    let mut out = template.to_owned();
    for name in re.capture_names().flatten() {
        let value = caps.name(name).map(|m| m.as_str()).unwrap_or("");
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<RelatedRule> {
        let defaults: baton_config::Config =
            baton_config::load(&Default::default()).map(|(c, _)| c).expect("defaults load");
        defaults.verify.related
    }

    fn protected() -> Protected {
        Protected::new(&["tests/**".into(), "**/tests/**".into(), "**/test_*.py".into()]).unwrap()
    }

    fn tree(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_rules_find_python_tests_beside_and_under_tests() {
        let r = RelatedTests::new(&rules()).unwrap();
        let t = tree(&[
            "sympy/core/add.py",
            "sympy/core/tests/test_add.py",
            "sympy/core/tests/test_mul.py",
            "src/pkg/util.py",
            "tests/test_util.py",
            "lib/parse.js",
            "lib/parse.test.js",
            "cmd/run.go",
            "cmd/run_test.go",
            "crates/x/src/lib.rs",
            "crates/x/tests/it.rs",
            "crates/x/tests/other.rs",
        ]);
        let changed = tree(&[
            "sympy/core/add.py",
            "src/pkg/util.py",
            "lib/parse.js",
            "cmd/run.go",
            "crates/x/src/lib.rs",
        ]);
        assert_eq!(
            r.related(&changed, &t, &protected()),
            [
                "cmd/run_test.go",
                "crates/x/tests/it.rs",
                "crates/x/tests/other.rs",
                "lib/parse.test.js",
                "sympy/core/tests/test_add.py",
                "tests/test_util.py",
            ]
        );
    }

    #[test]
    fn changed_tests_count_and_missing_paths_do_not() {
        let r = RelatedTests::new(&rules()).unwrap();
        let t = tree(&["a/b.py", "a/tests/test_c.py"]);
        let changed = tree(&["a/b.py", "a/tests/test_c.py", "a/tests/test_gone.py"]);
        assert_eq!(r.related(&changed, &t, &protected()), ["a/tests/test_c.py"]);
    }

    #[test]
    fn the_union_splits_into_groups_related_to_the_same_subjects() {
        use std::collections::BTreeSet;
        let union = tree(&["t/a.py", "t/b.py", "t/c.py", "t/d.py"]);
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        // a and d: both subjects; b: the first only; c: the second only.
        let own = [set(&["t/a.py", "t/b.py", "t/d.py"]), set(&["t/a.py", "t/c.py", "t/d.py"])];
        assert_eq!(
            related_parts(&union, &own),
            [tree(&["t/a.py", "t/d.py"]), tree(&["t/b.py"]), tree(&["t/c.py"])]
        );
        // Every subject relates to the whole union: nothing to split.
        let all = [set(&["t/a.py", "t/b.py"]), set(&["t/a.py", "t/b.py"])];
        assert!(related_parts(&tree(&["t/a.py", "t/b.py"]), &all).is_empty());
    }

    #[test]
    fn present_in_keeps_existing_files_and_directories() {
        let t = tree(&["tests/a/test_x.py", "tests/b.py"]);
        let wanted = tree(&["tests/a", "tests/a/", "tests/b.py", "tests/c.py", "tests/ab"]);
        assert_eq!(present_in(&wanted, &t), ["tests/a", "tests/a/", "tests/b.py"]);
    }

    #[test]
    fn custom_rules_may_name_directories() {
        let rule = RelatedRule { from: r"^django/(?P<app>\w+)/".into(), to: vec!["tests/{app}".into()] };
        let r = RelatedTests::new(&[rule]).unwrap();
        let t = tree(&["django/forms/fields.py", "tests/forms/tests.py"]);
        assert_eq!(r.related(&tree(&["django/forms/fields.py"]), &t, &protected()), ["tests/forms"]);
    }
}
