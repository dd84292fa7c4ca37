//! Stream sources (`-source`): a stream fed by inputs in priority order,
//! each a stream key encoders publish to or an upstream URL pulled on
//! demand, with the healthy input of highest priority feeding the
//! stream's players, a seamless switch on the new input's keyframe when
//! it changes, and a manual override through the API. One thread per
//! source (see `feeder`) owns its stream; pulls run on their own threads.

pub mod board;
mod feeder;
pub mod health;
mod inputs;
pub mod pull;
pub mod spec;
pub mod timeline;

use std::io;
use std::sync::Arc;
use std::thread;

use crate::hub::doorbell::Doorbell;
use crate::hub::events::Events;
use crate::hub::stream::{Stream, StreamSettings};
use crate::server::Shared;
use feeder::Feeder;
use inputs::Feed;

pub use board::SourceBoard;
pub use spec::{InputSpec, SourceSettings, SourceSpec};

/// Taps' ids (as outputs of the inputs' streams, and as inputs of the
/// source's stream), apart from connections' and relays'.
const FIRST_TAP_ID: u64 = crate::hub::FIRST_INTERNAL_ID;

/// Starts one thread per `-source`; each owns its stream from now on.
pub(crate) fn start(shared: &Arc<Shared>) -> io::Result<()> {
    // Pulls' private streams tell nobody about their sessions.
    let private_events = Arc::new(Events::new(Arc::clone(&shared.metrics)));
    let private_settings = StreamSettings {
        gop_cache: false,
        ..StreamSettings::from_config(&shared.config)
    };
    let mut next_id = FIRST_TAP_ID;
    for entry in shared.sources.entries() {
        let key = &entry.spec.key;
        let stream = shared.registry.set_owned(key, true);
        let inputs = entry
            .spec
            .inputs
            .iter()
            .map(|spec| {
                next_id += 1;
                let private = spec.is_pull().then(|| {
                    Arc::new(Stream::new(
                        key,
                        private_settings,
                        Arc::clone(&shared.metrics),
                        Arc::clone(&private_events),
                    ))
                });
                Feed::new(spec.clone(), next_id, private)
            })
            .collect();
        let bell = Arc::new(Doorbell::default());
        let feeder = Feeder::new(Arc::clone(shared), Arc::clone(entry), stream, inputs, bell);
        let owner = Arc::clone(shared);
        let key_of = key.clone();
        thread::Builder::new()
            .name("source".into())
            .spawn(move || {
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| feeder.run()));
                if run.is_err() {
                    // Its pulls stopped and taps left as it unwound; the
                    // stream is a plain one again, publishable.
                    owner.registry.set_owned(&key_of, false);
                    log::error!("{key_of}: source stopped after an internal error (panic)");
                }
            })?;
        log::info!(
            "{key} fed by {}",
            entry
                .spec
                .inputs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
