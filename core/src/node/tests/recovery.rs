//! A node that lost its state: it votes only once every other electable
//! site and a majority of votes have told it the cluster's term and last
//! chosen site, and then not again in that term.

use super::*;
use crate::durable::Chosen;
use crate::message::StateAnswer;
use crate::{MaintenanceSetting, Refusal};

fn members() -> Vec<Member> {
    vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")]
}

/// Member `id` of the two-site cluster, started from a lost state file.
fn lost(id: u8) -> Node {
    let cfg = ClusterConfig { members: members(), timers: Timers::default(), policy: Policy::default() };
    let mut n = Node::new(Arc::new(cfg), NodeId(id), DurableState::lost(), at(0), 7).expect("valid");
    drain(&mut n);
    n
}

fn answer_of(term: u64, chosen: Option<(u8, u64)>) -> Message {
    Message::StateAnswer(StateAnswer {
        term: Term(term),
        last_chosen: chosen.map(|(site, t)| Chosen { site: NodeId(site), term: Term(t) }),
        pause: PauseSetting::default(),
        maintenance: MaintenanceSetting::default(),
    })
}

fn queries(n: &mut Node) -> Vec<NodeId> {
    drain(n)
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { to, message: Message::StateQuery } => Some(to),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lost_witness_asks_every_member_each_heartbeat_and_grants_no_vote_until_it_caught_up() {
    let (a, b) = (NodeId(0), NodeId(1));
    let mut w = lost(2);
    assert!(w.is_recovering());
    w.handle_timeout(at(0));
    assert_eq!(queries(&mut w), vec![a, b]);
    let later = at(LEASE_MS * 3);
    w.handle_message(later, b, vote(1));
    assert_eq!(answer(&mut w), Some((false, Some(Refusal::Recovering))), "a vote while recovering");
    w.handle_message(later, b, Message::PreVote(VoteRequest { term: Term(2), ..vote_request() }));
    assert_eq!(answer(&mut w), Some((false, Some(Refusal::Recovering))), "a pre-vote while recovering");
    // Nor a lease renewal, nor a handoff's release.
    w.handle_message(later, a, lease_heartbeat(2, 0, PauseSetting::default()));
    assert_eq!(heartbeat_replies(&mut w), vec![(2, false)], "a renewal granted while recovering");
    w.handle_message(later, a, Message::ReleaseLease { term: Term(2), to: b });
    assert!(!drain(&mut w).iter().any(|x| matches!(x, Action::Send { message: Message::ReleaseAck { .. }, .. })));
    // Site-b alone is a majority with the witness's own vote, not without it.
    w.handle_message(later, b, answer_of(6, Some((0, 6))));
    assert!(w.is_recovering(), "caught up on one answer");
    assert_eq!(w.status(later).recovering, Some(vec![a]));
    w.deadlines.set(Timer::HeartbeatDue, later);
    w.handle_timeout(later);
    assert_eq!(queries(&mut w), vec![a, b], "it keeps asking");
    // Site-a wrote term 7 before it asked the witness for its vote; the
    // older choice it names does not replace site-b's newer one.
    w.handle_message(later, a, answer_of(7, Some((1, 5))));
    assert!(!w.is_recovering());
    assert_eq!(w.status(later).recovering, None);
    let d = *w.durable();
    assert_eq!(
        (d.term, d.voted_for, d.last_chosen),
        (Term(7), Some(NodeId(2)), Some(Chosen { site: a, term: Term(6) }))
    );
    assert!(!d.recovering);
    assert!(drain(&mut w).iter().any(|x| matches!(x, Action::Persist(p) if !p.recovering && p.term == Term(7))));
    // Its vote in term 7 counts as cast; in term 8 it votes again, and as
    // the last chosen site is known, site-b's unapproved claim is no
    // reclaim: the manual-mode and pause rules hold again.
    w.handle_message(later, b, vote(7));
    assert_eq!(answer(&mut w), Some((false, Some(Refusal::AlreadyVoted))));
    w.handle_message(later, a, vote(8));
    assert_eq!(answer(&mut w), Some((true, None)));
    w.handle_message(later, a, lease_heartbeat(8, 0, PauseSetting::default()));
    assert_eq!(heartbeat_replies(&mut w), vec![(8, true)], "caught up, it renews again");
    assert_eq!(queries(&mut w), Vec::<NodeId>::new());
}

fn vote_request() -> VoteRequest {
    VoteRequest { term: Term(1), report: report(), approved: false, handoff: false }
}

#[test]
fn a_lost_site_needs_a_majority_and_never_runs_or_is_promoted_before() {
    let (b, w) = (NodeId(1), NodeId(2));
    let mut a = lost(0);
    let late = at(LEASE_MS * 10);
    assert_eq!(a.status(late).recovering, Some(vec![b, w]), "site-b, and a vote to make a majority");
    assert!(!a.status(late).local.healthy, "a recovering site says it could take over");
    assert!(!runs_at(&mut a, late), "a recovering site ran for election");
    // Nor does it run when a handing-over site asks it to.
    a.handle_message(late, b, Message::TimeoutNow { term: Term(0) });
    assert!(!drain(&mut a).iter().any(|x| matches!(x, Action::Send { message: Message::Vote(_), .. })));
    assert_eq!(a.command(late, crate::Command::ForcePromote), Err(crate::CommandError::Recovering));
    // Site-b, for which site-a may have voted, answered; with site-a's own
    // vote that would be a majority, without it it is not.
    a.handle_message(late, b, answer_of(4, Some((0, 2))));
    assert!(a.is_recovering());
    assert_eq!(a.status(late).recovering, Some(vec![w]));
    // A status heartbeat carries a newer term meanwhile.
    a.handle_message(late, b, Message::Heartbeat(heartbeat(Term(9), report())));
    a.handle_message(late, w, answer_of(3, Some((1, 3))));
    assert!(!a.is_recovering());
    assert_eq!((a.durable().term, a.durable().voted_for), (Term(9), Some(NodeId(0))), "the vote in 9 counts as cast");
    assert_eq!(a.durable().last_chosen, Some(Chosen { site: b, term: Term(3) }), "the newest choice heard");
    assert!(a.status(late).local.healthy);
    assert!(runs_at(&mut a, late + Duration::from_millis(LEASE_MS)), "caught up, it runs again");
}

fn five_members() -> ClusterConfig {
    let members = vec![
        Member::site("site-a", 3),
        Member::site("site-b", 2),
        Member::site("site-c", 1),
        Member::witness("witness-1"),
        Member::witness("witness-2"),
    ];
    ClusterConfig { members, timers: Timers::default(), policy: Policy::default() }
}

#[test]
fn every_other_electable_site_must_answer_even_when_the_rest_make_a_majority() {
    let mut w1 = Node::new(Arc::new(five_members()), NodeId(3), DurableState::lost(), at(0), 7).expect("valid");
    for id in [1, 2, 4] {
        w1.handle_message(at(10), NodeId(id), answer_of(5, Some((1, 5))));
    }
    assert!(w1.is_recovering(), "three votes of five, but site-a, which may hold a vote of it, is missing");
    assert_eq!(w1.status(at(10)).recovering, Some(vec![NodeId(0)]));
    w1.handle_message(at(10), NodeId(0), answer_of(6, Some((0, 6))));
    assert!(!w1.is_recovering());
    assert_eq!(w1.durable().last_chosen, Some(Chosen { site: NodeId(0), term: Term(6) }));
}

#[test]
fn only_a_node_that_holds_its_state_answers_and_only_a_recovering_one_listens() {
    let (a, b) = (NodeId(0), NodeId(1));
    // A witness that holds its state answers with what is on its disk.
    let mut w = witness();
    let pause = PauseSetting { version: 2, by: 0, paused: true };
    w.handle_message(at(10_000), a, lease_heartbeat(5, 0, pause));
    drain(&mut w);
    w.handle_message(at(10_000), b, Message::StateQuery);
    let sent: Vec<Action> = drain(&mut w);
    let expected = StateAnswer {
        term: Term(5),
        last_chosen: Some(Chosen { site: a, term: Term(5) }),
        pause,
        maintenance: MaintenanceSetting::default(),
    };
    assert_eq!(sent, vec![Action::Send { to: b, message: Message::StateAnswer(expected) }]);
    // It ignores answers: it asked nothing.
    w.handle_message(at(10_000), b, answer_of(40, Some((1, 40))));
    assert!(drain(&mut w).is_empty());
    assert_eq!(w.durable().term, Term(5));
    // A recovering node neither answers (what it holds is not the
    // cluster's) nor ignores what answers bring: the pause and maintenance
    // settings are taken at once.
    let mut lost_b = lost(1);
    lost_b.handle_message(at(10), a, Message::StateQuery);
    assert!(drain(&mut lost_b).is_empty());
    let maintenance = MaintenanceSetting { version: 3, by: 0, sites: 0b1 };
    let with_settings = StateAnswer { term: Term(5), last_chosen: None, pause, maintenance };
    lost_b.handle_message(at(10), NodeId(2), Message::StateAnswer(with_settings));
    assert_eq!((lost_b.durable().pause, lost_b.durable().maintenance), (pause, maintenance));
    assert!(lost_b.is_recovering());
}

#[test]
fn a_witness_that_cannot_have_been_voted_for_need_not_answer() {
    // Site-c heard the other two sites and one witness: three votes of
    // five, and no vote of site-c's can have gone to the silent witness.
    let mut c = Node::new(Arc::new(five_members()), NodeId(2), DurableState::lost(), at(0), 7).expect("valid");
    for id in [0, 1, 3] {
        c.handle_message(at(10), NodeId(id), answer_of(5, Some((0, 5))));
    }
    assert!(!c.is_recovering(), "waiting for {:?}", c.status(at(10)).recovering);
}

#[test]
fn status_lists_only_the_members_whose_answer_is_still_needed() {
    // Seven voters (quorum 4) and a site that neither votes nor runs.
    let mut members = vec![
        Member::site("site-a", 4),
        Member::site("site-b", 3),
        Member::site("site-c", 2),
        Member::site("site-d", 1),
        Member::witness("witness-1"),
        Member::witness("witness-2"),
        Member::witness("witness-3"),
        Member::site("reader", 0),
    ];
    members[7].votes = 0;
    let cfg = ClusterConfig { members, timers: Timers::default(), policy: Policy::default() };
    let mut w3 = Node::new(Arc::new(cfg), NodeId(6), DurableState::lost(), at(0), 7).expect("valid");
    let ids = |v: &[u8]| v.iter().map(|&i| NodeId(i)).collect::<Vec<_>>();
    // Short of a majority: every site that can run, and every voter.
    assert_eq!(w3.status(at(10)).recovering, Some(ids(&[0, 1, 2, 3, 4, 5])));
    // Exactly a majority heard, site-a not among them: site-a alone.
    for id in [1, 2, 3, 4] {
        w3.handle_message(at(10), NodeId(id), answer_of(5, None));
    }
    assert_eq!(w3.status(at(10)).recovering, Some(ids(&[0])));
    w3.handle_message(at(10), NodeId(0), answer_of(5, None));
    assert_eq!(w3.status(at(10)).recovering, None);
}
