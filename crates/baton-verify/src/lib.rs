//! Verification: runs the configured stages on the base commit and on every candidate, reads
//! test results from their output, and compares each candidate with the base.
//!
//! The evaluator stays outside what candidates can write: the engine verifies a tree in which
//! every [`Protected`] path a candidate touched is put back as it is on the base, so a
//! candidate's edits to tests, CI or baton's configuration are evidence, never the judge.
//! [`RelatedTests`] lets a big repository run only the tests a change can affect.

mod baseline;
mod compare;
mod error;
pub mod parse;
mod probes;
mod protect;
mod related;
mod stages;
mod tamper;
mod testfns;

pub use baseline::setup_problems;
pub use compare::compare;
pub use error::SetupError;
pub use probes::{
    Probe, ProbeKind, ProbeRunner, candidate_scripts, definition_modules, definition_pattern, extract_probes,
    is_script_path, normalize, python_packages, task_values, used_names,
};
pub use protect::{Protected, looks_like_test};
pub use related::{RelatedTests, present_in, related_parts};
pub use stages::{BaseResults, BaseResultsSender, Split, StageRunner, SubjectContext};
pub use tamper::{TamperFlag, expectation_edits, tamper_flags};
