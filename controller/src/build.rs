//! Building what a validated configuration describes: the actuators and
//! the MongoDB link, once, after [`crate::settings::load`] has accepted the
//! file, so check-config and start-up build them the same way. It must
//! never start anything: no connection is made and no task is spawned here.

use crate::actuate::mongodb::MongoActuator;
use crate::actuate::Actuator;
use crate::mongo::MongoLink;
use crate::settings::{Loaded, SettingsError};

/// What this node drives, built from its validated configuration.
#[derive(Clone, Debug)]
pub struct Targets {
    /// The actuators, the MongoDB one last.
    pub actuators: Vec<Actuator>,
    /// The MongoDB link, if `[mongodb]` is set.
    pub mongodb: Option<MongoLink>,
}

/// Builds the actuators and the MongoDB link of `loaded`; an error names
/// the file, line and key as check-config prints it.
pub fn targets(loaded: &Loaded) -> Result<Targets, SettingsError> {
    let settings = &loaded.settings;
    let me = &settings.node.name;
    let mut actuators = crate::actuate::build(&settings.actuators, me, &loaded.cluster)
        .map_err(|e| loaded.refusal(e.under("actuators")))?;
    let names: Vec<String> = settings.members.iter().map(|m| m.name.clone()).collect();
    let mongodb = match &settings.mongodb {
        Some(section) => {
            let link = MongoLink::build(section, &names).map_err(|e| loaded.refusal(e.under("mongodb")))?;
            let global = crate::actuate::observe::global(settings.actuators.actuation.as_ref())
                .map_err(|e| loaded.refusal(e.under("actuators")))?;
            let mode = crate::actuate::observe::resolve(global, section.actuation.as_ref())
                .map_err(|e| loaded.refusal(e.under("mongodb")))?;
            let actuator = Actuator::Mongodb(MongoActuator::new(link.clone(), me, names)).with_actuation(mode);
            actuators.push(actuator);
            Some(link)
        }
        None => None,
    };
    Ok(Targets { actuators, mongodb })
}
