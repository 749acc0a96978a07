//! A node that lost its state catches up before it votes.
//!
//! A node started without its state in a cluster that already ran may have
//! voted in any term it had seen, and it forgot the site chosen last (what
//! the manual-mode, pause and cooldown refusals rest on). Voting again could
//! elect two sites in one term, or move the role without the approval manual
//! mode asks for. So it starts `recovering` ([`DurableState::lost`]): every
//! heartbeat interval it asks the other members what they hold
//! ([`Message::StateQuery`]) and, until it has caught up, grants nothing
//! (no vote, pre-vote, lease renewal or handoff release) and runs for
//! nothing. Not even renewals: the site asking may have been elected in a
//! term the others have long left (restarted in place after being cut
//! off), and renewing it would let it act again under its old epoch.
//!
//! It has caught up once answers have come from every other site that can
//! be elected and from members with a majority of votes. Any vote it may
//! have forgotten went to one of those sites, which wrote that term to disk
//! before asking; and every answer was written after the loss, since it
//! answers a query sent after it. So the highest term heard is at least
//! every term it may have voted in. It takes that term and counts its vote
//! in it as cast (`voted_for` names itself), so it votes again only in a
//! later term, and takes the newest chosen site heard.
//!
//! Invariant: while `durable.recovering`, no vote or pre-vote is granted
//! (`election.rs` refuses with [`Refusal::Recovering`]), no lease renewal
//! or release is granted, no forced promotion accepted, and no election
//! started: the site reports itself unhealthy, so every election it would
//! start (a timeout's pre-vote, a handoff's vote) fails its own grant
//! check, and no switchover, failback or handoff picks it as a target.
//!
//! An answer is not tied to the query it answers: one delayed across a
//! whole earlier recovery of the same node (a second loss of its file
//! while answers to the first recovery's queries are still in flight)
//! would be taken as new. That takes an answer delayed across a whole
//! recovery, a vote, a second loss and a restart; a nonce in the query
//! would rule it out.
//!
//! [`DurableState::lost`]: crate::DurableState::lost
//! [`Refusal::Recovering`]: crate::Refusal::Recovering

use super::{Node, VoterSet};
use crate::action::Event;
use crate::config::NodeId;
use crate::durable::Chosen;
use crate::message::{Message, StateAnswer, Term};
use crate::time::Instant;

/// What a recovering node has heard so far (in memory: a restart asks
/// again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct CatchUp {
    heard: VoterSet,
    term: Term,
    chosen: Option<Chosen>,
}

impl Node {
    /// Whether this node lost its state and has not caught up yet.
    pub fn is_recovering(&self) -> bool {
        self.durable.recovering
    }

    /// While recovering: the members whose answer it still needs, every
    /// other electable site not heard yet and, while the votes heard are
    /// short of a majority, every other voter not heard yet.
    pub(super) fn not_yet_heard(&self) -> Option<Vec<NodeId>> {
        let heard = self.catch_up.heard;
        let votes_short = heard.votes(&self.cfg) < self.cfg.quorum();
        let needed = |id: NodeId| self.cfg.priority(id) > 0 || (votes_short && self.cfg.votes(id) > 0);
        self.is_recovering()
            .then(|| self.cfg.ids().filter(|&id| id != self.id && !heard.contains(id) && needed(id)).collect())
    }

    pub(super) fn send_state_queries(&mut self) {
        if !self.is_recovering() {
            return;
        }
        let ids: Vec<NodeId> = self.cfg.ids().filter(|&i| i != self.id).collect();
        for to in ids {
            self.send(to, Message::StateQuery);
        }
    }

    /// A recovering node asks; anyone else answers with what it holds.
    pub(super) fn on_state_query(&mut self, from: NodeId) {
        if self.is_recovering() {
            return;
        }
        let d = &self.durable;
        let answer =
            StateAnswer { term: d.term, last_chosen: d.last_chosen, pause: d.pause, maintenance: d.maintenance };
        self.send(from, Message::StateAnswer(answer));
    }

    pub(super) fn on_state_answer(&mut self, now: Instant, from: NodeId, answer: StateAnswer) {
        if !self.is_recovering() {
            return;
        }
        self.adopt_pause(answer.pause);
        self.adopt_maintenance(now, answer.maintenance);
        let c = &mut self.catch_up;
        c.heard.insert(from);
        c.term = c.term.max(answer.term);
        // Ties (only after a forced promotion) go to the same site whatever
        // the order the answers came in.
        c.chosen = c.chosen.into_iter().chain(answer.last_chosen).max_by_key(|chosen| (chosen.term, chosen.site));
        if self.caught_up() {
            self.finish_recovery();
        }
    }

    /// Every other electable site and a majority of votes have answered.
    fn caught_up(&self) -> bool {
        let heard = self.catch_up.heard;
        let sites_heard =
            self.cfg.ids().filter(|&id| id != self.id && self.cfg.priority(id) > 0).all(|id| heard.contains(id));
        sites_heard && heard.votes(&self.cfg) >= self.cfg.quorum()
    }

    fn finish_recovery(&mut self) {
        let c = std::mem::take(&mut self.catch_up);
        // A recovering node is a follower (it runs for nothing and no
        // handoff targets it), so taking a term needs no step down. A
        // higher term may also have come meanwhile (a heartbeat): the vote
        // in it may have been cast before the loss as well.
        self.durable.term = self.durable.term.max(c.term);
        self.durable.voted_for = Some(self.id);
        if let Some(chosen) = c.chosen {
            self.note_chosen(chosen.site, chosen.term);
        }
        self.durable.recovering = false;
        self.persist();
        let (term, last_chosen) = (self.durable.term, self.durable.last_chosen);
        self.event(Event::StateRecovered { term, last_chosen });
    }
}
