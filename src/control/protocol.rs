//! WebSocket wire format, inbound: JSON text frames `{"type": …}`. Event names and value
//! ranges follow the seed (Fichatech) so its clients keep working; additions are
//! documented in `protocol/websocket.md`. Parsing is pure: text in, typed message or
//! [`WireError`] out. What the server sends is typed in `control::wire`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wire::ServerMsg;
use crate::state::StoreError;

/// Error codes of the contract. The state is unchanged whenever one is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    OutOfRange,
    UnknownChannel,
    UnknownClient,
    Unauthorized,
    Forbidden,
    RateLimited,
    TooLarge,
    Internal,
}

/// A refused message: what goes back as `{"type":"error",…}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WireError {
    pub code: ErrorCode,
    pub message: String,
    /// The `type` of the message that caused it, when known.
    pub ref_type: Option<String>,
}

impl WireError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        WireError {
            code,
            message: message.into(),
            ref_type: None,
        }
    }

    pub fn with_ref(mut self, ref_type: &str) -> Self {
        self.ref_type = Some(ref_type.to_owned());
        self
    }
}

/// The one mapping of a refused store command to a wire code; OSC's drop reasons are a
/// coarser view of it (`osc::DropReason::from`).
impl From<&StoreError> for ErrorCode {
    fn from(e: &StoreError) -> Self {
        match e {
            StoreError::UnknownClient(_) => ErrorCode::UnknownClient,
            StoreError::UnknownChannel { .. } => ErrorCode::UnknownChannel,
            StoreError::Io { .. }
            | StoreError::Corrupt { .. }
            | StoreError::UnsupportedFormat { .. }
            | StoreError::Serialize(_)
            | StoreError::Options(_)
            | StoreError::ClientExists(_)
            | StoreError::InvalidTokenHash => ErrorCode::Internal,
            StoreError::OutOfRange { .. }
            | StoreError::NotFinite { .. }
            | StoreError::InvalidName(_)
            | StoreError::InvalidClientId(_)
            | StoreError::TooManyClients { .. }
            | StoreError::TooManyPresets { .. }
            | StoreError::UnknownPreset(_)
            | StoreError::InvalidOrder(_)
            | StoreError::UnknownOutput(_) => ErrorCode::OutOfRange,
        }
    }
}

/// First message of every session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hello {
    pub client_id: Option<String>,
    pub token: Option<String>,
    pub name: Option<String>,
    pub admin_pin: Option<String>,
    /// A configured engineer token (scripts, fixed tablets).
    pub engineer_token: Option<String>,
}

/// One change to one mix: the seed's events plus monmix's additions. The same set is
/// used inside `update_client_mix` (an engineer editing someone else's mix).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MixOp {
    Subscribe {
        channels: Option<Vec<i64>>,
        gains: Option<BTreeMap<String, f64>>,
        pans: Option<BTreeMap<String, f64>>,
    },
    UpdateGain {
        channel: i64,
        gain: f64,
    },
    UpdatePan {
        channel: i64,
        pan: f64,
    },
    ToggleMute {
        channel: i64,
        muted: bool,
    },
    ToggleSolo {
        channel: i64,
        soloed: bool,
    },
    SetOn {
        channel: i64,
        on: bool,
    },
    UpdateMaster {
        gain: f64,
    },
    SetChannels {
        channels: Vec<i64>,
    },
    Rename {
        name: String,
    },
    SavePreset {
        name: String,
    },
    LoadPreset {
        name: String,
    },
    DeletePreset {
        name: String,
    },
}

/// Everything a client may send after `hello`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMsg {
    Hello(Hello),
    Mix(MixOp),
    /// Engineer: apply `op` to another client's mix.
    UpdateClientMix {
        client_id: String,
        op: MixOp,
    },
    /// Engineer: receive `param_sync` for this client's mix (None = stop).
    WatchClient {
        client_id: Option<String>,
    },
    ListClients,
    ReorderClients {
        order: Vec<String>,
    },
    DeleteClient {
        client_id: String,
    },
    WatchMeters {
        on: bool,
    },
    /// Engineer: wired output `output` (1-based) plays `mix` (a client id, `cue`), or
    /// nothing (`None`).
    AssignOutput {
        output: usize,
        mix: Option<String>,
    },
    /// Round-trip probe for the page's latency readout; answered with `pong`.
    Ping {
        t: Option<f64>,
    },
    /// A listening page's latency estimate and packet loss, for the engineer's list.
    ListenStats {
        latency_ms: f64,
        loss_pct: f64,
    },
}

const MIX_OPS: [&str; 12] = [
    "subscribe",
    "update_gain",
    "update_pan",
    "toggle_mute",
    "toggle_solo",
    "set_on",
    "update_master",
    "set_channels",
    "rename",
    "save_preset",
    "load_preset",
    "delete_preset",
];

#[derive(Deserialize)]
struct UpdateClientMixWire {
    #[serde(rename = "type")]
    _t: String,
    client_id: String,
    /// The op as a nested message: `{"type":"update_gain","channel":0,"gain":0.5}`.
    op: Value,
}

#[derive(Deserialize)]
struct WatchClientWire {
    #[serde(rename = "type")]
    _t: String,
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct ReorderWire {
    #[serde(rename = "type")]
    _t: String,
    order: Vec<String>,
}

#[derive(Deserialize)]
struct DeleteWire {
    #[serde(rename = "type")]
    _t: String,
    client_id: String,
}

#[derive(Deserialize)]
struct AssignOutputWire {
    #[serde(rename = "type")]
    _t: String,
    output: usize,
    /// Required, `null` included: a message that forgot it must not silence an in-ear.
    mix: Value,
}

#[derive(Deserialize)]
struct WatchMetersWire {
    #[serde(rename = "type")]
    _t: String,
    on: bool,
}

#[derive(Deserialize)]
struct PingWire {
    #[serde(rename = "type")]
    _t: String,
    t: Option<f64>,
}

#[derive(Deserialize)]
struct ListenStatsWire {
    #[serde(rename = "type")]
    _t: String,
    latency_ms: f64,
    loss_pct: f64,
}

#[derive(Deserialize)]
struct HelloWire {
    #[serde(rename = "type")]
    _t: String,
    client_id: Option<String>,
    token: Option<String>,
    name: Option<String>,
    admin_pin: Option<String>,
    engineer_token: Option<String>,
}

fn shape<T: for<'de> Deserialize<'de>>(v: Value, ty: &str) -> Result<T, WireError> {
    serde_json::from_value(v)
        .map_err(|e| WireError::new(ErrorCode::BadJson, format!("{ty}: {e}")).with_ref(ty))
}

/// Parses one text frame. `max_len` is checked first so a huge frame is never parsed.
pub fn parse(text: &str, max_len: usize) -> Result<ClientMsg, WireError> {
    if text.len() > max_len {
        return Err(WireError::new(
            ErrorCode::TooLarge,
            format!("message is {} bytes, the limit is {max_len}", text.len()),
        ));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| WireError::new(ErrorCode::BadJson, format!("not valid JSON: {e}")))?;
    parse_value(value)
}

fn parse_value(value: Value) -> Result<ClientMsg, WireError> {
    let ty = match value.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => {
            return Err(WireError::new(
                ErrorCode::BadJson,
                "`type` must be a string",
            ))
        }
        None => return Err(WireError::new(ErrorCode::BadJson, "missing `type`")),
    };
    let msg = match ty.as_str() {
        "hello" => {
            let h: HelloWire = shape(value, &ty)?;
            ClientMsg::Hello(Hello {
                client_id: h.client_id,
                token: h.token,
                name: h.name,
                admin_pin: h.admin_pin,
                engineer_token: h.engineer_token,
            })
        }
        t if MIX_OPS.contains(&t) => ClientMsg::Mix(shape(value, &ty)?),
        "update_client_mix" => {
            let w: UpdateClientMixWire = shape(value, &ty)?;
            let op_type = w.op.get("type").and_then(Value::as_str).map(str::to_owned);
            let op = match op_type.as_deref() {
                Some(t) if MIX_OPS.contains(&t) => shape(w.op, t).map_err(|e| e.with_ref(&ty))?,
                Some(t) => {
                    return Err(WireError::new(
                        ErrorCode::UnknownType,
                        format!("update_client_mix: unknown op `{t}`"),
                    )
                    .with_ref(&ty))
                }
                None => {
                    return Err(WireError::new(
                        ErrorCode::BadJson,
                        "update_client_mix: `op` must be an object with a `type`",
                    )
                    .with_ref(&ty))
                }
            };
            ClientMsg::UpdateClientMix {
                client_id: w.client_id,
                op,
            }
        }
        "watch_client" => ClientMsg::WatchClient {
            client_id: shape::<WatchClientWire>(value, &ty)?.client_id,
        },
        "list_clients" => ClientMsg::ListClients,
        "reorder_clients" => ClientMsg::ReorderClients {
            order: shape::<ReorderWire>(value, &ty)?.order,
        },
        "delete_client" => ClientMsg::DeleteClient {
            client_id: shape::<DeleteWire>(value, &ty)?.client_id,
        },
        "assign_output" => {
            let w: AssignOutputWire = shape(value, &ty)?;
            let mix = match w.mix {
                Value::Null => None,
                Value::String(s) => Some(s),
                _ => {
                    return Err(WireError::new(
                        ErrorCode::BadJson,
                        "assign_output: `mix` must be a client id, \"cue\" or null",
                    )
                    .with_ref(&ty))
                }
            };
            ClientMsg::AssignOutput {
                output: w.output,
                mix,
            }
        }
        "watch_meters" => ClientMsg::WatchMeters {
            on: shape::<WatchMetersWire>(value, &ty)?.on,
        },
        "ping" => ClientMsg::Ping {
            t: shape::<PingWire>(value, &ty)?.t,
        },
        "listen_stats" => {
            let w: ListenStatsWire = shape(value, &ty)?;
            ClientMsg::ListenStats {
                latency_ms: w.latency_ms,
                loss_pct: w.loss_pct,
            }
        }
        other => {
            return Err(WireError::new(
                ErrorCode::UnknownType,
                format!("unknown message type `{other}`"),
            )
            .with_ref(other))
        }
    };
    Ok(msg)
}

impl MixOp {
    /// The wire name of this op (its `type`).
    pub fn name(&self) -> &'static str {
        match self {
            MixOp::Subscribe { .. } => "subscribe",
            MixOp::UpdateGain { .. } => "update_gain",
            MixOp::UpdatePan { .. } => "update_pan",
            MixOp::ToggleMute { .. } => "toggle_mute",
            MixOp::ToggleSolo { .. } => "toggle_solo",
            MixOp::SetOn { .. } => "set_on",
            MixOp::UpdateMaster { .. } => "update_master",
            MixOp::SetChannels { .. } => "set_channels",
            MixOp::Rename { .. } => "rename",
            MixOp::SavePreset { .. } => "save_preset",
            MixOp::LoadPreset { .. } => "load_preset",
            MixOp::DeletePreset { .. } => "delete_preset",
        }
    }
}

/// The `error` message for `e` as a JSON value (its type: [`ServerMsg`]).
pub fn error_msg(e: &WireError) -> Value {
    ServerMsg::from(e).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        parse(text, 65536).unwrap_err().code
    }

    #[test]
    fn parses_seed_events() {
        assert_eq!(
            parse(r#"{"type":"update_gain","channel":1,"gain":0.8}"#, 65536).unwrap(),
            ClientMsg::Mix(MixOp::UpdateGain {
                channel: 1,
                gain: 0.8
            })
        );
        assert_eq!(
            parse(r#"{"type":"subscribe"}"#, 65536).unwrap(),
            ClientMsg::Mix(MixOp::Subscribe {
                channels: None,
                gains: None,
                pans: None
            })
        );
        let m = parse(
            r#"{"type":"update_client_mix","client_id":"c-1","op":{"type":"toggle_mute","channel":2,"muted":true}}"#,
            65536,
        )
        .unwrap();
        assert_eq!(
            m,
            ClientMsg::UpdateClientMix {
                client_id: "c-1".into(),
                op: MixOp::ToggleMute {
                    channel: 2,
                    muted: true
                }
            }
        );
    }

    #[test]
    fn bad_input_gets_the_contract_codes() {
        assert_eq!(code("not json"), ErrorCode::BadJson);
        assert_eq!(
            code(r#"{"type":"update_gain","channel":0,"gain":NaN}"#),
            ErrorCode::BadJson
        );
        assert_eq!(
            code(r#"{"type":"update_gain","channel":0,"gain":1e309}"#),
            ErrorCode::BadJson
        );
        assert_eq!(
            code(r#"{"type":"update_gain","channel":0}"#),
            ErrorCode::BadJson
        );
        assert_eq!(
            code(r#"{"type":"update_gain","channel":"0","gain":1}"#),
            ErrorCode::BadJson
        );
        assert_eq!(code(r#"{"type":"warp_drive"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::BadJson);
        assert_eq!(code(r#"[1,2]"#), ErrorCode::BadJson);
        assert_eq!(
            code(r#"{"type":"update_client_mix","client_id":"x","op":{"type":"nuke"}}"#),
            ErrorCode::UnknownType
        );
        assert_eq!(
            parse(&"x".repeat(100), 10).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn error_message_carries_ref_type() {
        let e = parse(r#"{"type":"update_pan","channel":0}"#, 65536).unwrap_err();
        let v = error_msg(&e);
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "bad_json");
        assert_eq!(v["ref_type"], "update_pan");
    }
}
