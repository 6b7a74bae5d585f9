//! docs/CONFIG.md's example is the whole config with every default: the
//! binary must accept it as is, and reject a misspelt key in it.

mod common;

use common::Fixture;

fn example() -> String {
    let doc = include_str!("../docs/CONFIG.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("end of the block");
    doc[start..end].to_string()
}

#[test]
fn the_documented_example_is_accepted_and_misspellings_are_not() {
    let f = Fixture::new();
    let cfg = f.write("sandmine.toml", &example());
    let cfg = cfg.to_str().unwrap();
    // `query` parses the whole file, then fails on the (absent) store:
    // the error must be about the connection, not the config.
    let o = f.sandmine(&["query", "--config", cfg, "images"]);
    assert!(
        !o.stderr.contains("unknown field") && !o.stderr.contains("invalid"),
        "{}",
        o.describe()
    );
    let bad = f.write(
        "bad.toml",
        &example().replace("batch_max_messages", "batch_max_mesages"),
    );
    let o = f.sandmine(&["query", "--config", bad.to_str().unwrap(), "images"]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let line = common::one_error_line(&o);
    assert!(line.contains("unknown field `batch_max_mesages`"), "{line}");
}
