//! What an operator command travels as from the admin API to the protocol
//! loop: the command and the channel for the core's answer. It only names
//! the message; it must never carry out or judge a command (the core does).

use failover_core::{Command, CommandError};
use tokio::sync::oneshot;

/// An operator command with the channel for its answer.
pub type CommandRequest = (Command, oneshot::Sender<Result<(), CommandError>>);
