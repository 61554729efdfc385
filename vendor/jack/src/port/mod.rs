mod audio;
mod midi;
mod port_impl;

/// Contains flag constants that may be used to create `PortFlags`.
mod port_flags;

pub use self::audio::{AudioIn, AudioOut};
pub use self::midi::{MidiIn, MidiIter, MidiOut, MidiWriter, RawMidi};
pub use self::port_flags::PortFlags;
pub use self::port_impl::{Port, PortSpec, Unowned, PORT_NAME_SIZE, PORT_TYPE_SIZE};

#[cfg(test)]
mod test_client;

#[cfg(test)]
mod test_port;
