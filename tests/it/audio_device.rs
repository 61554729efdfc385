//! Device inputs on whatever this machine has. CI machines have no sound card, so these
//! check the degraded paths: listing is clean, the default device falls back to the demo,
//! a named device that does not exist is an error.

use std::time::{Duration, Instant};

use monmix::audio::device::list_devices;
use monmix::audio::{open, AudioError, InputOptions, InputSpec};

#[test]
fn listing_devices_does_not_panic() {
    let devices = list_devices().unwrap();
    for d in &devices {
        eprintln!("{d:?}");
        assert!(!d.name.is_empty());
    }
}

#[test]
fn missing_named_device_is_an_error() {
    let err = match open(
        &InputSpec::Device(Some("nope-no-such-device-42".into())),
        &InputOptions::default(),
    ) {
        Ok(_) => panic!("opened a device that does not exist"),
        Err(e) => e,
    };
    assert!(matches!(err, AudioError::DeviceNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("nope-no-such-device-42"), "{err}");
}

#[test]
fn default_device_or_demo_fallback_delivers_frames() {
    let has_device = !list_devices().unwrap().is_empty();
    let mut input = open(&InputSpec::Device(None), &InputOptions::default()).unwrap();
    eprintln!("{}", input.description);
    if !has_device {
        assert!(
            input.description.starts_with("demo"),
            "{}",
            input.description
        );
        assert!(input.description.contains("fallback"));
        assert_eq!(input.channels, 8);
    }
    let mut frame = vec![0.0f32; input.reader.frame_samples()];
    let deadline = Instant::now() + Duration::from_secs(3);
    for _ in 0..10 {
        assert!(
            input.reader.pop_until(&mut frame, deadline),
            "frames keep coming"
        );
    }
}
