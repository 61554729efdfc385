//! Argument coercion: a set message's arguments (floats, ints, bools, strings) -> a store
//! [`Op`], with the range checks the store does not know (fader position, dB ceiling).

use rosc::OscType;

use super::address::Target;
use super::stats::DropReason;
use crate::state::Op;
use crate::taper;

fn num(args: &[OscType]) -> Result<f64, DropReason> {
    let v = match args {
        [OscType::Float(f)] => f64::from(*f),
        [OscType::Double(d)] => *d,
        [OscType::Int(i)] => f64::from(*i),
        [OscType::Long(l)] => *l as f64,
        _ => return Err(DropReason::BadType),
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(DropReason::OutOfRange)
    }
}

fn boolish(args: &[OscType]) -> Result<bool, DropReason> {
    match args {
        [OscType::Bool(b)] => Ok(*b),
        [OscType::Int(i)] => Ok(*i != 0),
        [OscType::Long(l)] => Ok(*l != 0),
        [OscType::Float(f)] if f.is_finite() => Ok(*f >= 0.5),
        [OscType::Double(d)] if d.is_finite() => Ok(*d >= 0.5),
        [OscType::Float(_)] | [OscType::Double(_)] => Err(DropReason::OutOfRange),
        _ => Err(DropReason::BadType),
    }
}

fn text(args: &[OscType]) -> Result<&str, DropReason> {
    match args {
        [OscType::String(s)] => Ok(s),
        _ => Err(DropReason::BadType),
    }
}

/// A set message -> store op. Ranges the store does not know (fader position) are checked here.
pub fn to_op(t: Target, args: &[OscType]) -> Result<Op, DropReason> {
    Ok(match t {
        Target::Gain(channel) => Op::SetGain {
            channel,
            gain: num(args)?,
        },
        Target::Fader(channel) => {
            let p = num(args)?;
            if !(0.0..=1.0).contains(&p) {
                return Err(DropReason::OutOfRange);
            }
            Op::SetGain {
                channel,
                gain: taper::fader_to_gain(p),
            }
        }
        Target::Db(channel) => {
            let db = num(args)?;
            if db > 20.0 * 2f64.log10() + 1e-9 {
                return Err(DropReason::OutOfRange);
            }
            Op::SetGain {
                channel,
                gain: taper::db_to_gain(db).min(crate::state::model::GAIN_MAX),
            }
        }
        Target::Pan(channel) => Op::SetPan {
            channel,
            pan: num(args)?,
        },
        Target::Mute(channel) => Op::SetMute {
            channel,
            muted: boolish(args)?,
        },
        Target::Solo(channel) => Op::SetSolo {
            channel,
            soloed: boolish(args)?,
        },
        Target::On(channel) => Op::SetOn {
            channel,
            on: boolish(args)?,
        },
        Target::MasterFader => {
            let p = num(args)?;
            if !(0.0..=1.0).contains(&p) {
                return Err(DropReason::OutOfRange);
            }
            Op::SetMaster {
                gain: taper::fader_to_gain(p),
            }
        }
        Target::MasterGain => Op::SetMaster { gain: num(args)? },
        Target::PresetLoad => Op::LoadPreset {
            name: text(args)?.to_owned(),
        },
        Target::Dump => return Err(DropReason::BadType),
    })
}
