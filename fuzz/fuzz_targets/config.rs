//! The config parser on any text: a config or an error naming the file,
//! never a panic; a config it accepts must build an engine.
#![no_main]

use backflow::config::Config;
use backflow::pipeline::Engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match Config::parse(text, "fuzz.toml") {
        Ok(cfg) => {
            let _ = Engine::new(&cfg).finish();
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.toml"), "{msg}");
        }
    }
});
