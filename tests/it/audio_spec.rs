//! `InputSpec` parsing and display.

use std::path::PathBuf;

use monmix::audio::InputSpec;

#[test]
fn parses_every_form() {
    let ok: &[(&str, InputSpec)] = &[
        ("demo", InputSpec::Demo),
        ("tones", InputSpec::Tones),
        ("TONES", InputSpec::Tones),
        (" demo ", InputSpec::Demo),
        ("file:band.wav", InputSpec::File(PathBuf::from("band.wav"))),
        (
            "file:/tmp/a b/c:d.wav",
            InputSpec::File(PathBuf::from("/tmp/a b/c:d.wav")),
        ),
        ("device", InputSpec::Device(None)),
        (
            "device:Scarlett 18i20",
            InputSpec::Device(Some("Scarlett 18i20".into())),
        ),
        (
            "device:hw:CARD=USB,DEV=0",
            InputSpec::Device(Some("hw:CARD=USB,DEV=0".into())),
        ),
    ];
    for (s, want) in ok {
        assert_eq!(&s.parse::<InputSpec>().unwrap(), want, "{s:?}");
    }
}

#[test]
fn refuses_bad_forms_with_a_clear_message() {
    for bad in [
        "",
        "file",
        "file:",
        "device:",
        "device:  ",
        "demo:x",
        "tones:3",
        "mic",
        "wav:x.wav",
    ] {
        let err = bad.parse::<InputSpec>().unwrap_err().to_string();
        assert!(
            err.contains("expected demo, tones, file:PATH, device or device:NAME"),
            "{bad:?}: {err}"
        );
        assert!(err.contains(&format!("{bad:?}")), "names the input: {err}");
    }
}

#[test]
fn display_round_trips() {
    for s in [
        "demo",
        "tones",
        "file:/x/y.wav",
        "device",
        "device:USB Audio",
    ] {
        let spec: InputSpec = s.parse().unwrap();
        assert_eq!(spec.to_string(), s);
        assert_eq!(spec.to_string().parse::<InputSpec>().unwrap(), spec);
    }
}
