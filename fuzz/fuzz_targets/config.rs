//! The TOML configuration file, read over the built-in defaults as `latchkey` does at start-up
//! (without the environment, so runs are repeatable).
//!
//! Properties: reading never panics, whatever the file; a configuration that is accepted
//! passes its own validation, and written back out as TOML it reads as the same configuration.

#![no_main]

use latchkey::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    config
        .validate()
        .expect("an accepted configuration is valid");
    let written = toml::to_string(&config).expect("an accepted configuration writes as TOML");
    let again = Config::from_toml(&written)
        .unwrap_or_else(|e| panic!("{written:?} (written from {text:?}) is refused: {e:#}"));
    assert_eq!(
        serde_json::to_value(&config).expect("serializes"),
        serde_json::to_value(&again).expect("serializes"),
        "{written:?} reads as another configuration"
    );
});
