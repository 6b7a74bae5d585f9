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

/// The `[broker]` defaults the example shows are the config types' own
/// defaults, for NATS and for the commented-out Kafka block (so a new key,
/// like the stream bounds, cannot be documented with a wrong default).
#[test]
fn the_documented_broker_defaults_are_the_real_ones() {
    let doc: toml::Table = toml::from_str(&example()).expect("the example parses");
    let nats: transport::BrokerConfig = doc["broker"]
        .clone()
        .try_into()
        .expect("[broker] is a broker config");
    assert_eq!(nats, transport::BrokerConfig::default());

    let text = example();
    let start = text.find("# [broker]\n").expect("the Kafka block");
    let end = start
        + text[start..]
            .find("# [broker.properties]")
            .expect("its end");
    let kafka: String = text[start..end]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let kafka: toml::Table = toml::from_str(&kafka).expect("the Kafka block parses");
    let kafka: transport::BrokerConfig = kafka["broker"]
        .clone()
        .try_into()
        .expect("a Kafka broker config");
    assert_eq!(
        kafka,
        transport::BrokerConfig::Kafka(transport::KafkaConfig::default())
    );
}
