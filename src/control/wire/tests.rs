//! Every outbound message against its schema in `protocol/schema/server/`, closed so a
//! renamed field fails, and the null/absent forms pinned to what clients get today.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde_json::{json, Value};

use super::*;
use ServerMsg::*;

/// Inlines `mix.json` and closes every object schema that lists its properties, so a
/// renamed optional field (absent from `required`) fails as well as a renamed required one.
fn close(v: &mut Value, mix: &Value) {
    match v {
        Value::Object(o) => {
            if o.get("$ref").and_then(Value::as_str) == Some("mix.json") {
                let mut m = mix.clone();
                if let Some(mo) = m.as_object_mut() {
                    mo.remove("$schema");
                }
                *v = m;
                return close(v, mix);
            }
            if o.contains_key("properties") {
                o.entry("additionalProperties")
                    .or_insert(Value::Bool(false));
            }
            o.values_mut().for_each(|x| close(x, mix));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| close(x, mix)),
        _ => {}
    }
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// `protocol/schema/server/<type>.json`, closed, by type.
fn schemas() -> HashMap<String, jsonschema::Validator> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/schema");
    let mix = read(&root.join("mix.json"));
    let dir = std::fs::read_dir(root.join("server")).expect("protocol/schema/server");
    dir.map(|entry| {
        let path = entry.expect("dir entry").path();
        let mut schema = read(&path);
        close(&mut schema, &mix);
        let ty = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let v = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{ty}: {e}"));
        (ty.to_owned(), v)
    })
    .collect()
}

fn stored_mix() -> MixState {
    let mut m = MixState {
        channels: vec![0, 2],
        timestamp: 1_764_086_400_000,
        name: "Ana".into(),
        ..MixState::default()
    };
    m.gains.insert(0, 0.5);
    m.pans.insert(2, -0.25);
    m.mutes.insert(0, true);
    m.solos.insert(2, true);
    m.presets.insert("Song 1".into(), m.to_preset());
    m
}

const ID: &str = "c-ana";

fn sync(channel: Option<u32>, sync: Synced<'_>) -> ServerMsg<'_> {
    ParamSync {
        client_id: ID,
        channel,
        sync,
    }
}

/// Every message type, every `param`, and the null/absent forms of optional fields.
fn one_of_each<'a>(
    mix: &'a MixState,
    names: &'a [String],
    errors: &'a [WireError],
) -> Vec<ServerMsg<'a>> {
    let m = || Mix::from(mix);
    let mut out = vec![
        Welcome {
            client_id: Some(ID),
            token: Some("t0k3n"),
            role: Role::Performer,
            server: "Stage",
            channels: StageChannels(names),
            sample_rate: crate::limits::SAMPLE_RATE,
            frame_ms: 2.5,
            mix: Some(m()),
            session_id: 7,
            cue_token: None,
        },
        Welcome {
            client_id: None,
            token: None,
            role: Role::Engineer,
            server: "Stage",
            channels: StageChannels(names),
            sample_rate: crate::limits::SAMPLE_RATE,
            frame_ms: 10.0,
            mix: None,
            session_id: 8,
            cue_token: Some("cue"),
        },
        Outputs {
            outputs: vec![
                OutputRow {
                    output: 1,
                    device: "ears",
                    channels: &[3, 4],
                    mix: Some(ID),
                    client_id: Some(ID),
                },
                OutputRow {
                    output: 2,
                    device: "ears",
                    channels: &[5],
                    mix: None,
                    client_id: None,
                },
            ],
        },
        Clients {
            clients: vec![
                ClientRow {
                    client_id: ID,
                    name: "Ana",
                    online: true,
                    listening: false,
                    last_seen: 1_764_086_400_000,
                    latency_ms: None,
                    loss_pct: None,
                },
                ClientRow {
                    client_id: "web-b",
                    name: "Bo",
                    online: true,
                    listening: true,
                    last_seen: 1_764_086_400_000,
                    latency_ms: Some(38.5),
                    loss_pct: Some(0.5),
                },
            ],
        },
        ClientMix {
            client_id: ID,
            mix: m(),
        },
        Pong { t: Some(12.5) },
        Pong { t: None },
        Meters {
            inputs: &[[0.1, 0.2], [0.0, 0.0]],
            mix: [0.3, 0.4],
        },
        sync(Some(1), Synced::Gain(0.5)),
        sync(Some(1), Synced::Pan(-1.0)),
        sync(Some(1), Synced::Mute(true)),
        sync(Some(1), Synced::Solo(false)),
        sync(None, Synced::Master(2.0)),
        sync(None, Synced::Channels(&mix.channels)),
        sync(None, Synced::Name(&mix.name)),
        sync(None, Synced::Mix(m())),
        sync(None, Synced::Presets(names)),
        AutoResubscribed {
            client_id: ID,
            mix: m(),
        },
        Subscribed {
            client_id: ID,
            mix: m(),
        },
        GainUpdated {
            client_id: ID,
            channel: 1,
            gain: 0.5,
        },
        PanUpdated {
            client_id: ID,
            channel: 1,
            pan: 0.25,
        },
        MuteUpdated {
            client_id: ID,
            channel: 1,
            muted: true,
        },
        SoloUpdated {
            client_id: ID,
            channel: 1,
            soloed: false,
        },
        ChannelsUpdated {
            client_id: ID,
            channels: &mix.channels,
        },
        MasterUpdated {
            client_id: ID,
            gain: 1.5,
        },
        Renamed {
            client_id: ID,
            name: &mix.name,
        },
        PresetLoaded {
            client_id: ID,
            name: "Song 1",
            mix: m(),
        },
        Presets {
            client_id: ID,
            presets: Names(&mix.presets),
        },
    ];
    out.extend(errors.iter().map(ServerMsg::from));
    out
}

#[test]
fn every_message_matches_its_schema_and_a_renamed_field_does_not() {
    let schemas = schemas();
    let mix = stored_mix();
    let names = vec!["Kick".to_owned(), "Vox".to_owned()];
    let errors = [
        WireError::new(ErrorCode::OutOfRange, "gain 2.5").with_ref("update_gain"),
        WireError::new(ErrorCode::BadJson, "not valid JSON"),
    ];
    let mut covered = BTreeSet::new();
    for msg in one_of_each(&mix, &names, &errors) {
        let v = msg.to_value();
        let text: Value = serde_json::from_str(&msg.to_text()).expect("text frame");
        assert_eq!(text, v, "the frame and the value differ");
        let ty = v["type"].as_str().expect("type").to_owned();
        let schema = schemas
            .get(&ty)
            .unwrap_or_else(|| panic!("no schema for {ty}"));
        if let Err(e) = schema.validate(&v) {
            panic!("{ty} violates its schema: {e}\n{v}");
        }
        for key in v
            .as_object()
            .expect("object")
            .keys()
            .filter(|k| *k != "type")
        {
            let mut renamed = v.clone();
            if let Some(o) = renamed.as_object_mut() {
                let x = o.remove(key).expect("key");
                o.insert(format!("{key}_renamed"), x);
            }
            assert!(
                !schema.is_valid(&renamed),
                "{ty}: renaming {key} went unnoticed"
            );
        }
        covered.insert(ty);
    }
    let all: BTreeSet<String> = schemas.into_keys().collect();
    assert_eq!(
        covered, all,
        "a server message type without a sample, or a schema without a message"
    );
}

#[test]
fn optional_fields_are_absent_and_nullable_ones_null_as_before() {
    let v = |m: ServerMsg<'_>| m.to_value();
    assert_eq!(
        v(sync(Some(1), Synced::Gain(0.7))),
        json!({"type": "param_sync", "client_id": ID, "param": "gain", "channel": 1, "value": 0.7})
    );
    assert_eq!(
        v(sync(None, Synced::Master(0.5))),
        json!({"type": "param_sync", "client_id": ID, "param": "master", "value": 0.5})
    );
    assert_eq!(v(Pong { t: None }), json!({"type": "pong", "t": null}));
    let e = WireError::new(ErrorCode::Forbidden, "no");
    assert_eq!(
        v(ServerMsg::from(&e)),
        json!({"type": "error", "code": "forbidden", "message": "no"})
    );
    assert_eq!(
        v(GainUpdated {
            client_id: ID,
            channel: 3,
            gain: 0.5
        }),
        json!({"type": "gain_updated", "client_id": ID, "channel": 3, "gain": 0.5})
    );
    let w = v(Welcome {
        client_id: None,
        token: None,
        role: Role::Engineer,
        server: "S",
        channels: StageChannels(&["Kick".to_owned()]),
        sample_rate: 48_000,
        frame_ms: 5.0,
        mix: None,
        session_id: 1,
        cue_token: None,
    });
    assert_eq!(
        w,
        json!({"type": "welcome", "client_id": null, "token": null, "role": "engineer",
               "server": "S", "channels": [{"index": 0, "name": "Kick"}],
               "sample_rate": 48_000, "frame_ms": 5.0, "mix": null, "session_id": 1})
    );
}

/// The wire mix is the stored mix's JSON with `presets` as names (`[]` when none,
/// although the stored form omits the key); a field added to `MixState` fails here.
#[test]
fn the_wire_mix_is_the_stored_mix_with_preset_names() {
    for m in [stored_mix(), MixState::default()] {
        let mut stored = serde_json::to_value(&m).expect("mix");
        stored["presets"] = json!(m.presets.keys().collect::<Vec<_>>());
        assert_eq!(
            serde_json::to_value(Mix::from(&m)).expect("wire mix"),
            stored
        );
    }
}
