//! The decision after the evidence: a [`Decider`] turns every candidate's evidence into the
//! scoreboard. Today the evidence alone decides ([`EvidenceDecider`], `baton-rank`); a decider
//! that asks an AI judge where the evidence does not separate the best plugs in here.

use baton_core::{MatrixRow, RunId, Scoreboard};
use baton_rank::{CandidateEvidence, ProbeContext};

/// Everything a decision may read.
pub struct DecisionInput<'a> {
    pub run: &'a RunId,
    pub probes: &'a ProbeContext,
    pub matrix: &'a [MatrixRow],
    pub candidates: &'a [CandidateEvidence],
    /// Why the verification cannot be evidence (see `baton_verify::setup_problems`).
    pub setup_problems: &'a [String],
}

/// Decides a run from its evidence.
pub trait Decider: Send + Sync {
    fn decide(&self, input: &DecisionInput<'_>) -> Scoreboard;
}

/// The decision from running code alone (see `baton_rank`'s evidence model).
#[derive(Debug, Default, Clone, Copy)]
pub struct EvidenceDecider;

impl Decider for EvidenceDecider {
    fn decide(&self, input: &DecisionInput<'_>) -> Scoreboard {
        baton_rank::rank(input.run, input.probes, input.matrix, input.candidates, input.setup_problems)
    }
}
