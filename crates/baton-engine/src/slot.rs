//! A run's candidates as planned (agents x strategies x repeats), each with what happened to it.

use std::sync::Arc;

use baton_agents::Agent;
use baton_core::CandidateId;
use baton_git::{FileChange, Oid};
use baton_workspace::Workspace;

use crate::plan::RunPlan;
use crate::verify::Collected;

/// One planned candidate and what happened to it.
pub(crate) struct Slot {
    pub(crate) id: CandidateId,
    pub(crate) agent: Arc<dyn Agent>,
    pub(crate) strategy: String,
    pub(crate) strategy_prompt: String,
    pub(crate) workspace: Option<Workspace>,
    /// `None` while the agent has not run (and forever, if the run was cancelled first).
    pub(crate) outcome: Option<baton_core::AgentOutcome>,
    pub(crate) commit: Option<Oid>,
    pub(crate) changes: Vec<FileChange>,
}

impl Slot {
    pub(crate) fn collected(&self) -> Collected<'_> {
        Collected {
            id: &self.id,
            outcome: self.outcome.as_ref(),
            commit: self.commit.as_ref(),
            changes: &self.changes,
        }
    }
}

/// The planned candidates: agents × strategies × repeats, numbered in that order.
pub(crate) fn plan_slots(plan: &RunPlan) -> Vec<Slot> {
    let mut slots = Vec::new();
    for agent in &plan.agents {
        for (strategy, prompt) in &plan.strategies {
            for _ in 0..plan.repeats {
                slots.push(Slot {
                    id: CandidateId::nth(slots.len() + 1),
                    agent: agent.clone(),
                    strategy: strategy.clone(),
                    strategy_prompt: prompt.clone(),
                    workspace: None,
                    outcome: None,
                    commit: None,
                    changes: Vec::new(),
                });
            }
        }
    }
    slots
}

/// The task and the candidates, as the run announces them.
pub(crate) fn announced(slots: &[Slot]) -> Vec<baton_core::PlannedCandidate> {
    slots
        .iter()
        .map(|s| baton_core::PlannedCandidate {
            id: s.id.clone(),
            agent: s.agent.name().to_owned(),
            strategy: s.strategy.clone(),
        })
        .collect()
}
