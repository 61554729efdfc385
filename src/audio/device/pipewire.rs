//! PipeWire through its ALSA plugin (the `pipewire` PCM, and `default` where
//! `pipewire-alsa` makes it so): what it takes for capture to be bit-true.
//!
//! Left alone, WirePlumber links a stream of the plugin as stereo and PipeWire's
//! channel mixer folds the node's channels into the layout the stream asked for: an 8-channel
//! stage bus (AUX0..AUX7) came out with channels summed, −22.5 dBFS for −20, and 37 dB of
//! isolation. With `stream.dont-remix=true` each of the node's channels is linked to one
//! stream channel, in order, with no mixing and no volume: measured bit-true (−20.0 dBFS,
//! isolation beyond 80 dB). The plugin reads stream properties from `PIPEWIRE_ALSA`, so
//! [`prepare_env`] puts that property there before any thread starts.
//!
//! The plugin offers 1..64 channels whatever the node has; [`native_channels`] asks the
//! graph (`pw-dump`) how many the target node really has, so monmix opens that many.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The `PIPEWIRE_ALSA` value to set, given the one in the environment and the frame
/// length: ours when there is none; the user's with `stream.dont-remix` added when theirs
/// lacks it; `None` when theirs already says how to remix (the user's word wins).
///
/// `node.latency` asks the graph for a quantum of one frame: at PipeWire's default of 1024
/// samples the plugin hands over 21 ms at a time, which is latency on the wired outputs
/// and bursts of two or more frames for everything downstream.
pub fn alsa_props(existing: Option<&str>, frame_len: usize) -> Option<String> {
    match existing.map(str::trim) {
        None | Some("") => Some(format!(
            "{{ stream.dont-remix=true node.latency={frame_len}/48000 node.description=monmix }}"
        )),
        Some(v) if v.contains("dont-remix") => None,
        // Not an object: leave it alone rather than guess.
        Some(v) => v
            .strip_prefix('{')
            .map(|rest| format!("{{ stream.dont-remix=true {}", rest.trim_start())),
    }
}

/// Sets `PIPEWIRE_ALSA` for this process (see the module doc). Call before any thread
/// exists (in `main`, before the runtime): the environment is not thread-safe.
pub fn prepare_env(frame_len: usize) {
    let existing = std::env::var("PIPEWIRE_ALSA").ok();
    if let Some(v) = alsa_props(existing.as_deref(), frame_len) {
        std::env::set_var("PIPEWIRE_ALSA", v);
    }
}

/// True when a device of this name is PipeWire: the `pipewire` PCM, or the default (or an
/// unnamed) device while PipeWire's ALSA plugin is the system default and PipeWire runs.
pub fn is_pipewire_device(name: Option<&str>) -> bool {
    match name {
        Some(n) if n.eq_ignore_ascii_case("pipewire") => true,
        None | Some("default") => {
            Path::new("/etc/alsa/conf.d/99-pipewire-default.conf").exists() && runtime_socket()
        }
        _ => false,
    }
}

/// True when a PipeWire daemon answers on this user's runtime socket.
pub fn runtime_socket() -> bool {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").unwrap_or_else(|| "/run/user/0".into());
    let remote = std::env::var_os("PIPEWIRE_REMOTE").unwrap_or_else(|| "pipewire-0".into());
    Path::new(&dir).join(remote).exists()
}

/// Channels of the node PipeWire captures from. For the `pipewire` (or default) device:
/// `PIPEWIRE_NODE` (a node name or id) or the default source. For another device name: the
/// node of that name (an ALSA PCM of type pipewire named after its node, as README "Wired
/// in-ears" sets up). `None` when PipeWire does not run, `pw-dump` is missing or slow, or
/// no such node exists; the caller then keeps the device's own choice.
pub fn native_channels(device: Option<&str>) -> Option<usize> {
    if !runtime_socket() {
        return None;
    }
    if is_pipewire_device(device) {
        let target = std::env::var("PIPEWIRE_NODE").ok();
        channels_in_dump(&pw_dump()?, target.as_deref())
    } else {
        node_channels(device?)
    }
}

/// Channels of the PipeWire node named `name` (a device named after its node), or `None`
/// when there is no such node or PipeWire does not run.
pub fn node_channels(name: &str) -> Option<usize> {
    if !runtime_socket() {
        return None;
    }
    channels_in_dump(&pw_dump()?, Some(name))
}

fn pw_dump() -> Option<serde_json::Value> {
    let mut child = Command::new("pw-dump")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    // pw-dump may hang on a wedged daemon: read on a thread, give up after 3 s.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut buf);
        let _ = tx.send(buf);
    });
    let buf = rx.recv_timeout(Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    serde_json::from_slice(&buf.ok()?).ok()
}

/// Finds the target node in `pw-dump` output and reads its channel count (the
/// `audio.channels` property, else its count of output or monitor ports).
pub fn channels_in_dump(dump: &serde_json::Value, target: Option<&str>) -> Option<usize> {
    let objects = dump.as_array()?;
    let props = |o: &serde_json::Value| o.pointer("/info/props").cloned();
    let target = match target {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => default_source(objects)?,
    };
    let number: Option<u64> = target.parse().ok();
    let node = objects.iter().find(|o| {
        o["type"] == "PipeWire:Interface:Node"
            && (number.is_some() && o["id"].as_u64() == number
                || props(o).is_some_and(|p| {
                    p["node.name"] == target.as_str()
                        || number.is_some() && p["object.serial"].as_u64() == number
                }))
    })?;
    let p = props(node)?;
    if let Some(n) = p["audio.channels"]
        .as_u64()
        .or_else(|| p["audio.channels"].as_str().and_then(|s| s.parse().ok()))
    {
        return usize::try_from(n).ok().filter(|&n| n > 0);
    }
    let id = node["id"].as_u64()?;
    let ports = objects
        .iter()
        .filter(|o| o["type"] == "PipeWire:Interface:Port")
        .filter_map(props)
        .filter(|p| p["node.id"].as_u64() == Some(id) && p["port.direction"] == "out")
        .count();
    (ports > 0).then_some(ports)
}

/// The default source's node name, from the `default` metadata.
fn default_source(objects: &[serde_json::Value]) -> Option<String> {
    objects
        .iter()
        .filter(|o| o["type"] == "PipeWire:Interface:Metadata")
        .filter_map(|o| o["metadata"].as_array())
        .flatten()
        .find(|m| m["key"] == "default.audio.source")
        .and_then(|m| m["value"]["name"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn props_are_added_once_and_the_users_win() {
        assert_eq!(
            alsa_props(None, 240).as_deref(),
            Some("{ stream.dont-remix=true node.latency=240/48000 node.description=monmix }")
        );
        assert_eq!(
            alsa_props(Some("{ node.latency=128/48000 }"), 480).as_deref(),
            Some("{ stream.dont-remix=true node.latency=128/48000 }")
        );
        assert_eq!(alsa_props(Some("{ stream.dont-remix=false }"), 480), None);
        assert_eq!(alsa_props(Some("garbage"), 480), None);
    }

    #[test]
    fn channels_come_from_the_target_node() {
        let dump = json!([
            {"id": 40, "type": "PipeWire:Interface:Node",
             "info": {"props": {"node.name": "stage", "audio.channels": 8, "object.serial": 41}}},
            {"id": 50, "type": "PipeWire:Interface:Node",
             "info": {"props": {"node.name": "mic"}}},
            {"id": 51, "type": "PipeWire:Interface:Port",
             "info": {"props": {"node.id": 50, "port.direction": "out"}}},
            {"id": 52, "type": "PipeWire:Interface:Port",
             "info": {"props": {"node.id": 50, "port.direction": "out"}}},
            {"id": 53, "type": "PipeWire:Interface:Port",
             "info": {"props": {"node.id": 50, "port.direction": "in"}}},
            {"id": 60, "type": "PipeWire:Interface:Metadata",
             "metadata": [{"subject": 0, "key": "default.audio.source", "value": {"name": "mic"}}]}
        ]);
        assert_eq!(channels_in_dump(&dump, Some("stage")), Some(8));
        assert_eq!(channels_in_dump(&dump, Some("40")), Some(8));
        assert_eq!(channels_in_dump(&dump, Some("41")), Some(8));
        assert_eq!(
            channels_in_dump(&dump, None),
            Some(2),
            "default source, by ports"
        );
        assert_eq!(channels_in_dump(&dump, Some("nope")), None);
    }
}
