use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::SetupError;

/// The files verification takes from the base instead of the candidate: tests, CI
/// configuration, baton's own configuration. What a candidate does to them is shown as evidence
/// and never trusted.
#[derive(Debug, Clone)]
pub struct Protected {
    globs: Vec<String>,
    set: GlobSet,
}

impl Protected {
    pub fn new(globs: &[String]) -> Result<Protected, SetupError> {
        let mut builder = GlobSetBuilder::new();
        for g in globs {
            let glob = globset::GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .or_else(|_| Glob::new(g))
                .map_err(|source| SetupError::Glob { glob: g.clone(), source })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(SetupError::Globs)?;
        Ok(Protected { globs: globs.to_vec(), set })
    }

    pub fn is_protected(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    /// The globs that match no path of `tree`: probably a typo, worth a warning.
    pub fn unmatched(&self, tree: &[String]) -> Vec<String> {
        let mut hit = vec![false; self.globs.len()];
        for path in tree {
            for i in self.set.matches(path) {
                hit[i] = true;
            }
        }
        self.globs.iter().zip(hit).filter(|(_, h)| !h).map(|(g, _)| g.clone()).collect()
    }
}

/// Whether a path looks like a test file by its name or its directory.
pub fn looks_like_test(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.split('/').any(|c| matches!(c, "tests" | "test" | "__tests__" | "spec" | "testing"))
        || name.starts_with("test_")
        || name.starts_with("test.")
        || name == "tests.py"
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains(".spec.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_like_globs_match_tests_at_any_depth() {
        let p = Protected::new(&[
            "tests/**".into(),
            "**/tests/**".into(),
            "**/test_*.py".into(),
            "baton.toml".into(),
        ])
        .unwrap();
        for yes in ["tests/x.py", "pkg/tests/deep/y.py", "test_a.py", "src/test_b.py", "baton.toml"] {
            assert!(p.is_protected(yes), "{yes}");
        }
        for no in ["src/a.py", "src/contest.py", "sub/baton.toml", "testsuite.py"] {
            assert!(!p.is_protected(no), "{no}");
        }
        assert_eq!(p.unmatched(&["src/test_x.py".into()]), ["tests/**", "**/tests/**", "baton.toml"]);
    }
}
