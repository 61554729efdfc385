//! Event routing: the all-events broadcast and the per-client topics that wake only the
//! sessions showing a changed mix.

use tokio::sync::broadcast;

use super::{Store, CLIENT_EVENT_CAPACITY};
use crate::state::command::Event;
use crate::state::persist::lock;

impl Store {
    /// Sends committed events to every receiver and to the topic of each event's client.
    pub(super) fn broadcast(&self, events: &[Event]) {
        let topics = lock(&self.topics);
        for e in events {
            // No receiver is fine.
            let _ = self.tx.send(e.clone());
            if let Some(t) = topics.get(&e.client_id) {
                let _ = t.send(e.clone());
            }
        }
    }

    /// A receiver of every event from now on (OSC feedback, tests).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// A receiver of the events of one client from now on: what a session showing that
    /// mix needs, and nothing else. Channels nobody listens to any more are dropped here.
    pub fn client_events(&self, client_id: &str) -> broadcast::Receiver<Event> {
        let mut topics = lock(&self.topics);
        topics.retain(|_, t| t.receiver_count() > 0);
        match topics.get(client_id) {
            Some(t) => t.subscribe(),
            None => {
                let (t, rx) = broadcast::channel(CLIENT_EVENT_CAPACITY);
                topics.insert(client_id.to_owned(), t);
                rx
            }
        }
    }
}
