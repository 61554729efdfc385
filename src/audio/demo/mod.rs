//! `demo`: a synthesized band in 8 channels, so the server plays music with no sound card
//! and every part of the system can be tried on a laptop.
//!
//! | ch | part   | sound                                                        |
//! |----|--------|--------------------------------------------------------------|
//! | 0  | click  | metronome, higher and louder on beat 1                       |
//! | 1  | kick   | pitch-swept sine                                             |
//! | 2  | snare  | body tones + high-passed noise, fill in the last bar         |
//! | 3  | hi-hat | steeply high-passed noise, eighths, open hat every other bar |
//! | 4  | bass   | warm harmonic tone following the chord roots                 |
//! | 5  | keys   | two-operator FM electric piano comping the chords            |
//! | 6  | pad    | detuned soft-saw chords with slow attack and release         |
//! | 7  | lead   | voice-like melody: formant-shaped vowels with vibrato        |
//!
//! 100 BPM, 8 bars in A minor (Am F C G | Am F Dm E), 19.2 s per loop.
//!
//! Design: every sound is an *event* (start sample, length, parameters) and the output at
//! loop position `t` is a pure function of `t`: the sum of each active event's voice at
//! `(t - start) mod loop`. That makes the loop seamless by construction (tails of the last
//! bar ring into the first), deterministic (drum noise is rendered once at construction
//! from a fixed seed), and real-time safe: construction precomputes drum one-shots,
//! wavetables and a per-sixteenth index of active events; [`Generator::render`] only reads
//! them (no allocation, no I/O, no locks).
//!
//! The instruments (sounds, envelopes, wavetables, drum one-shots) are in `synth`; this
//! file holds the song (chords, melody, arrangement) and the event index that plays it.

mod synth;

use super::{Generator, SAMPLE_RATE};
use synth::{
    harmonic_table, make_shots, midi, vowel_table, Env, Sound, BASS, CLICK, CLICK_ACCENT, HAT_A,
    HAT_B, HAT_OPEN, KICK, PAD, SINE, SNARE, TABLE,
};

/// Channels of the demo band.
pub const CHANNELS: usize = 8;
/// Channel names, index = channel, as the page shows them.
pub const CHANNEL_NAMES: [&str; CHANNELS] = [
    "Click", "Kick", "Snare", "Hi-hat", "Bass", "Keys", "Pad", "Lead",
];

const SR: f64 = SAMPLE_RATE as f64;
/// Samples per beat at 100 BPM (0.6 s).
const BEAT: u32 = SAMPLE_RATE * 60 / 100;
/// Samples per sixteenth note; the granularity of the event index.
const STEP: u32 = BEAT / 4;
const BARS: u32 = 8;
/// Loop length in samples (8 bars of 4/4 = 19.2 s).
pub const LOOP_SAMPLES: u32 = BARS * 4 * BEAT;
const STEPS: usize = (LOOP_SAMPLES / STEP) as usize;

#[derive(Debug, Clone, Copy)]
struct Event {
    start: u32,
    /// Active samples (including release); always < LOOP_SAMPLES.
    len: u32,
    gain: f32,
    sound: Sound,
}

/// One channel's events plus, for each sixteenth of the loop, which of them may sound.
#[derive(Debug, Default)]
struct Part {
    events: Vec<Event>,
    /// (offset, count) into `index` for each step.
    steps: Vec<(u32, u32)>,
    index: Vec<u16>,
}

impl Part {
    fn add(&mut self, ev: Event) {
        debug_assert!(ev.len > 0 && ev.len < LOOP_SAMPLES);
        self.events.push(ev);
    }

    fn build_index(&mut self) {
        let mut lists: Vec<Vec<u16>> = vec![Vec::new(); STEPS];
        for (i, ev) in self.events.iter().enumerate() {
            let first = ev.start / STEP;
            let last = (ev.start + ev.len - 1) / STEP;
            for s in first..=last {
                lists[s as usize % STEPS].push(i as u16);
            }
        }
        self.steps.clear();
        self.index.clear();
        for l in lists {
            self.steps.push((self.index.len() as u32, l.len() as u32));
            self.index.extend(l);
        }
    }
}

/// The demo band. See the module docs.
pub struct Demo {
    parts: Vec<Part>,
    shots: Vec<Vec<f32>>,
    /// Wavetables, each `TABLE + 1` samples (guard sample for interpolation).
    tables: Vec<Vec<f32>>,
    /// Current loop position in samples.
    pos: u32,
}

impl Default for Demo {
    fn default() -> Self {
        Self::new()
    }
}

fn beats(b: f64) -> u32 {
    (b * BEAT as f64).round() as u32
}

/// The chord of each bar as (root MIDI note for the bass, voicing for pad and keys).
const CHORDS: [(i32, [i32; 3]); 8] = [
    (45, [57, 60, 64]), // Am  (A2)
    (41, [57, 60, 65]), // F   (F2)
    (36, [55, 60, 64]), // C   (C2)
    (43, [55, 59, 62]), // G   (G2)
    (45, [57, 60, 64]), // Am
    (41, [57, 60, 65]), // F
    (38, [57, 62, 65]), // Dm  (D2)
    (40, [56, 59, 64]), // E   (E2)
];

/// The lead melody: (start beat, length in beats, MIDI note).
const MELODY: [(f64, f64, i32); 27] = [
    (0.0, 1.0, 69),
    (1.0, 1.0, 72),
    (2.0, 1.5, 76),
    (3.5, 0.5, 74),
    (4.0, 2.0, 72),
    (6.0, 1.0, 69),
    (7.0, 1.0, 72),
    (8.0, 1.0, 67),
    (9.0, 1.0, 76),
    (10.0, 1.5, 74),
    (11.5, 0.5, 72),
    (12.0, 3.0, 74),
    (16.0, 1.0, 76),
    (17.0, 0.5, 76),
    (17.5, 0.5, 74),
    (18.0, 1.0, 72),
    (19.0, 1.0, 69),
    (20.0, 1.5, 77),
    (21.5, 0.5, 76),
    (22.0, 2.0, 72),
    (24.0, 1.0, 74),
    (25.0, 1.0, 77),
    (26.0, 1.0, 81),
    (27.0, 1.0, 79),
    (28.0, 1.5, 71),
    (29.5, 0.5, 68),
    (30.0, 1.5, 76),
];

impl Demo {
    pub fn new() -> Self {
        let shots = make_shots();
        let mut tables = vec![
            harmonic_table(&[(1, 1.0)]),
            harmonic_table(&[(1, 1.0), (2, 0.45), (3, 0.2), (4, 0.08)]),
            harmonic_table(
                &(1..=8)
                    .map(|k| (k, (k as f64).powf(-1.3)))
                    .collect::<Vec<_>>(),
            ),
        ];
        let mut parts: Vec<Part> = (0..CHANNELS).map(|_| Part::default()).collect();
        let shot = |start: u32, shot: usize, gain: f32, shots: &[Vec<f32>]| Event {
            start,
            len: shots[shot].len() as u32,
            gain,
            sound: Sound::Shot { shot },
        };

        for bar in 0..BARS {
            let b0 = bar as f64 * 4.0;
            let (root, chord) = CHORDS[bar as usize];
            // 0: click on every beat, accent on 1.
            for beat in 0..4 {
                let (s, g) = if beat == 0 {
                    (CLICK_ACCENT, 0.22)
                } else {
                    (CLICK, 0.14)
                };
                parts[0].add(shot(beats(b0 + beat as f64), s, g, &shots));
            }
            // 1: kick on 1 and 3, pushed "and of 3" every other bar.
            let mut kicks = vec![0.0, 2.0];
            if bar % 2 == 1 {
                kicks.push(2.5);
            }
            for k in kicks {
                parts[1].add(shot(beats(b0 + k), KICK, 0.22, &shots));
            }
            // 2: snare on 2 and 4, a short crescendo fill at the end of the loop.
            for k in [1.0, 3.0] {
                parts[2].add(shot(beats(b0 + k), SNARE, 0.2, &shots));
            }
            if bar == BARS - 1 {
                for (k, g) in [(3.25, 0.08), (3.5, 0.11), (3.75, 0.15)] {
                    parts[2].add(shot(beats(b0 + k), SNARE, g, &shots));
                }
            }
            // 3: hi-hat eighths; open on the "and of 4" every other bar.
            for e in 0..8 {
                let k = e as f64 * 0.5;
                let ev = if e == 7 && bar % 2 == 1 {
                    shot(beats(b0 + k), HAT_OPEN, 0.09, &shots)
                } else if e % 2 == 0 {
                    shot(beats(b0 + k), HAT_A, 0.12, &shots)
                } else {
                    shot(beats(b0 + k), HAT_B, 0.075, &shots)
                };
                parts[3].add(ev);
            }
            // 4: bass on the root, a fifth and an octave for movement.
            for (k, len, interval) in [
                (0.0, 0.9, 0),
                (1.5, 0.45, 0),
                (2.0, 0.9, 0),
                (3.0, 0.45, 7),
                (3.5, 0.45, 12),
            ] {
                let env = Env::new(0.004, 0.5, beats(len), 0.04);
                parts[4].add(Event {
                    start: beats(b0 + k),
                    len: env.len(),
                    gain: 0.24,
                    sound: Sound::Osc {
                        table: BASS,
                        freq: midi(root + interval),
                        env,
                        vibrato: 0.0,
                    },
                });
            }
            // 5: keys comp the chord an octave up.
            for (k, len) in [(0.0, 1.25), (1.5, 1.0), (3.0, 0.75)] {
                for &n in &chord {
                    let env = Env::new(0.003, 0.9, beats(len), 0.12);
                    parts[5].add(Event {
                        start: beats(b0 + k),
                        len: env.len(),
                        gain: 0.055,
                        sound: Sound::Fm {
                            freq: midi(n + 12),
                            index: 1.6,
                            env,
                        },
                    });
                }
            }
            // 6: pad holds the chord, two slightly detuned voices per note.
            for &n in &chord {
                for detune in [0.997, 1.003] {
                    let env = Env::new(0.35, 0.0, beats(4.0), 0.6);
                    parts[6].add(Event {
                        start: beats(b0),
                        len: env.len(),
                        gain: 0.032,
                        sound: Sound::Osc {
                            table: PAD,
                            freq: midi(n) * detune,
                            env,
                            vibrato: 0.0,
                        },
                    });
                }
            }
        }
        // 7: the lead sings the melody on changing vowels.
        for (i, &(start, len, note)) in MELODY.iter().enumerate() {
            let f0 = midi(note) * SR;
            tables.push(vowel_table(f0, i));
            let env = Env::new(0.04, 2.5, beats(len) - beats(0.06), 0.09);
            parts[7].add(Event {
                start: beats(start),
                len: env.len(),
                gain: 0.2,
                sound: Sound::Osc {
                    table: tables.len() - 1,
                    freq: midi(note),
                    env,
                    vibrato: 0.012,
                },
            });
        }
        for p in &mut parts {
            p.build_index();
        }
        Demo {
            parts,
            shots,
            tables,
            pos: 0,
        }
    }

    /// Current position in the loop, in samples.
    pub fn position(&self) -> u32 {
        self.pos
    }

    #[inline]
    fn lookup(&self, table: usize, phase: f64) -> f32 {
        let t = &self.tables[table];
        let x = phase.rem_euclid(1.0) * TABLE as f64;
        let i = (x as usize).min(TABLE - 1);
        let frac = (x - i as f64) as f32;
        t[i] + frac * (t[i + 1] - t[i])
    }

    #[inline]
    fn voice(&self, ev: &Event, dt: u32) -> f32 {
        let v = match ev.sound {
            Sound::Shot { shot } => self.shots[shot].get(dt as usize).copied().unwrap_or(0.0),
            Sound::Osc {
                table,
                freq,
                env,
                vibrato,
            } => {
                let t = dt as f64;
                let mut phase = freq * t;
                if vibrato > 0.0 {
                    // 5.5 Hz vibrato fading in after 150 ms, as a singer would.
                    const RATE: f64 = 5.5 / SR;
                    let ramp = ((t - 0.15 * SR) / (0.25 * SR)).clamp(0.0, 1.0);
                    phase += freq * vibrato * ramp * (std::f64::consts::TAU * RATE * t).sin()
                        / (std::f64::consts::TAU * RATE);
                }
                self.lookup(table, phase) * env.at(dt)
            }
            Sound::Fm { freq, index, env } => {
                let t = dt as f64;
                let idx = index * (-(dt as f32) / (0.35 * SR as f32)).exp();
                let modulator = self.lookup(SINE, freq * t);
                let carrier = freq * t + (idx * modulator) as f64 / std::f64::consts::TAU;
                self.lookup(SINE, carrier) * env.at(dt)
            }
        };
        v * ev.gain
    }
}

impl Generator for Demo {
    fn channels(&self) -> usize {
        CHANNELS
    }

    fn channel_names(&self) -> Vec<String> {
        CHANNEL_NAMES.iter().map(|n| (*n).to_owned()).collect()
    }

    fn render(&mut self, out: &mut [f32]) {
        for frame in out.chunks_exact_mut(CHANNELS) {
            let t = self.pos;
            let step = (t / STEP) as usize;
            for (s, part) in frame.iter_mut().zip(&self.parts) {
                let (off, n) = part.steps[step];
                let mut acc = 0.0f32;
                for &i in &part.index[off as usize..(off + n) as usize] {
                    let ev = &part.events[i as usize];
                    let dt = (t + LOOP_SAMPLES - ev.start) % LOOP_SAMPLES;
                    if dt < ev.len {
                        acc += self.voice(ev, dt);
                    }
                }
                *s = acc;
            }
            self.pos += 1;
            if self.pos == LOOP_SAMPLES {
                self.pos = 0;
            }
        }
    }
}
