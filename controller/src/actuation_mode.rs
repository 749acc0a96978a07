//! Whether an actuator changes its target (`act`) or only reads it and
//! reports what it would change (`observe`): the value of the `actuation`
//! keys, shared by the configuration sections, the actuators and their
//! reports. It must never decide anything itself.

use serde::{Deserialize, Serialize};

/// Whether an actuator changes its target or only reports what it would
/// change (`actuation` in its section or in `[actuators]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActuationMode {
    /// Reads the target and changes what differs from the goal.
    #[default]
    Act,
    /// Reads the target exactly as `act` does, reports what it would
    /// change, and changes nothing.
    Observe,
}

impl ActuationMode {
    /// Its name in the configuration, status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ActuationMode::Act => "act",
            ActuationMode::Observe => "observe",
        }
    }
}
