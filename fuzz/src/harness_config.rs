//! The config fuzz target: the binary's own loader (`src/config.rs`) with
//! its real [`Settings`]. Compiled into the fuzz crate (feature `config`)
//! and into the binary's tests, which replay the committed corpus
//! (`src/config.rs`, `fuzz_corpus_replays`).
//!
//! Input: the TOML file, then, after each NUL, one override: an
//! environment variable when it starts with `SANDMINE_` (`NAME=VALUE`),
//! else a `--set KEY=VALUE`. Any input loads or is an error; loaded
//! settings serialise to TOML that loads back and serialises the same.

use crate::config::load_text;
use crate::settings::Settings;
use std::sync::OnceLock;

pub fn config(data: &[u8]) {
    static TYPES: OnceLock<toml::Table> = OnceLock::new();
    let types = TYPES.get_or_init(Settings::key_types);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let file = parts.next().unwrap_or("");
    let (mut env, mut sets) = (Vec::new(), Vec::new());
    for p in parts {
        if p.starts_with("SANDMINE_") {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            env.push((k.to_string(), v.to_string()));
        } else {
            sets.push(p.to_string());
        }
    }
    let Ok(settings) = load_text::<Settings>(Some(("fuzz.toml", file)), &env, &sets, types) else {
        return;
    };
    let Ok(emitted) = toml::to_string(&settings) else {
        return;
    };
    let back: Settings = load_text(Some(("emitted", &emitted)), &[], &[], types)
        .unwrap_or_else(|e| panic!("emitted settings do not load: {e:#}\n{emitted}"));
    let again = toml::to_string(&back).expect("serialised once already");
    assert_eq!(again, emitted, "load, emit, load changed the settings");
}
