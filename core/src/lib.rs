//! `failover-core`: the failover election protocol as a deterministic state
//! machine.
//!
//! Site controllers and witnesses each run one [`Node`]. The node decides who
//! votes for whom, which site holds the lease that makes it active, when the
//! active site renews, hands over, fails back or steps down, and what epoch
//! fences each external action. It does **no I/O**: it has no sockets, no
//! threads, no async runtime, never reads a clock and has no randomness of
//! its own. Time comes in as an [`Instant`] argument, messages come in as
//! values, jitter comes from a seed the caller owns, and every decision goes
//! out as an [`Action`] the driver drains in order (see [`action`] for the
//! contract). Given the same inputs it produces the same outputs, which is
//! what lets `tests/` model-check it with stateright and simulate thousands
//! of seeded runs.
//!
//! It must never: read the OS clock or wall time; trust a wall clock for
//! safety; perform I/O; answer a vote before the vote is queued for
//! persistence; let a node act as active without a lease granted by a
//! majority (forced promotion, an explicit operator override, excepted).
//!
//! The rules and why they hold are in `docs/protocol.md`.

#![deny(missing_docs)]

pub mod action;
pub mod command;
pub mod config;
pub mod durable;
pub mod message;
mod node;
pub mod rng;
pub mod sim;
pub mod status;
pub mod time;

pub use action::{Action, Event, HandoffReason, StepDownReason, SwitchoverCancelReason};
pub use command::{Command, CommandError};
pub use config::{
    ClusterConfig, ConfigError, FailbackPolicy, FailoverMode, Member, MemberKind, NodeId, Policy, Timers,
};
pub use durable::{Chosen, DurableState, Led, ScheduledSwitchover, MAX_BOUND_MS};
pub use message::{
    ActivationCause, Epoch, Heartbeat, HeartbeatReply, LeaseRenewal, MaintenanceSetting, Message, PauseSetting,
    ProposalNotice, ProposalReason, Refusal, SiteReport, StateAnswer, Term, VoteReply, VoteRequest, MAX_TERM,
};
pub use node::{Binding, Inspection, LeaseView, LocalHealth, Node, StartError, Timer};
pub use status::{PeerStatus, PendingFailover, RoleName, Status};
pub use time::Instant;
