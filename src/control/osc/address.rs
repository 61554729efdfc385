//! The OSC address grammar: `/info`, `/subscribe`, `/unsubscribe`, `/mix/{m}/...` and the
//! TouchOSC aliases (`/1/faderN`, `/1/toggleN`), parsed into a [`Route`]. Pure; no store access.

/// What a message addresses inside one mix. Channels are 0-based here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Gain(u32),
    Fader(u32),
    Db(u32),
    Pan(u32),
    Mute(u32),
    Solo(u32),
    On(u32),
    MasterFader,
    MasterGain,
    PresetLoad,
    Dump,
}

/// A parsed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Info,
    Subscribe,
    Unsubscribe,
    /// `/mix/{m}/...` (or a TouchOSC alias, with `m` = `osc.touchosc_mix`).
    Mix {
        m: &'a str,
        target: Target,
    },
}

/// 1-based channel number -> 0-based; `None` for 0 or garbage.
fn channel_no(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&n| n >= 1).map(|n| n - 1)
}

/// Parses an OSC address. Pure; no store access.
pub fn parse_address<'a>(addr: &'a str, touchosc_mix: &'a str) -> Option<Route<'a>> {
    let rest = addr.strip_prefix('/')?;
    let mut it = rest.split('/');
    let first = it.next()?;
    let parts: Vec<&str> = it.collect();
    match (first, parts.as_slice()) {
        ("info", []) => Some(Route::Info),
        ("subscribe", []) => Some(Route::Subscribe),
        ("unsubscribe", []) => Some(Route::Unsubscribe),
        ("1", [ctl]) => {
            let target = if let Some(n) = ctl.strip_prefix("fader") {
                Target::Fader(channel_no(n)?)
            } else if let Some(n) = ctl.strip_prefix("toggle") {
                Target::Mute(channel_no(n)?)
            } else {
                return None;
            };
            Some(Route::Mix {
                m: touchosc_mix,
                target,
            })
        }
        ("mix", [m, tail @ ..]) if !m.is_empty() => {
            let target = match tail {
                ["ch", n, what] => {
                    let c = channel_no(n)?;
                    match *what {
                        "gain" => Target::Gain(c),
                        "fader" => Target::Fader(c),
                        "db" => Target::Db(c),
                        "pan" => Target::Pan(c),
                        "mute" => Target::Mute(c),
                        "solo" => Target::Solo(c),
                        "on" => Target::On(c),
                        _ => return None,
                    }
                }
                ["master", "fader"] => Target::MasterFader,
                ["master", "gain"] | ["master"] => Target::MasterGain,
                ["preset", "load"] => Target::PresetLoad,
                ["dump"] => Target::Dump,
                _ => return None,
            };
            Some(Route::Mix { m, target })
        }
        _ => None,
    }
}

/// The channel a target addresses, if any.
pub(super) fn target_channel(t: Target) -> Option<u32> {
    match t {
        Target::Gain(c)
        | Target::Fader(c)
        | Target::Db(c)
        | Target::Pan(c)
        | Target::Mute(c)
        | Target::Solo(c)
        | Target::On(c) => Some(c),
        _ => None,
    }
}
