//! The wire format against committed byte-level fixtures: every version
//! ever released must still decode to the same envelope, and today's
//! encoder must still produce the same bytes.
//!
//! Regenerate the fixtures (only when adding a version!) with
//! `SANDMINE_BLESS=1 cargo test -p schemas --test wire`.

use schemas::wire::{
    decode, decode_unchecked, encode, encode_version, peek_version, ContainerDelta, ContainerRef,
    Envelope, PodRef, SeccompFilter, SyscallDelta, WireError, CURRENT_VERSION,
};
use schemas::{Abi, PhaseSet};
use std::path::PathBuf;

fn sample() -> Envelope {
    let sc = |abi, nr, calls, phases, first| SyscallDelta {
        abi,
        nr,
        calls,
        phases: PhaseSet(phases),
        first_seen_ms: first,
    };
    Envelope {
        host_id: "host-a".into(),
        boot_id: "6f1c0f1e-7d1b-4c55-9d1e-2b8e3a6c9f00".into(),
        seq: 42,
        interval_start_ms: 1_764_000_000_000,
        interval_end_ms: 1_764_000_010_000,
        containers: vec![
            ContainerDelta {
                container: ContainerRef {
                    runtime: "docker".into(),
                    id: "c0ffee".repeat(10) + "abcd",
                    image: "nginx:1.25".into(),
                    image_digest: "sha256:".to_string() + &"ab".repeat(32),
                    pod: Some(PodRef {
                        namespace: "web".into(),
                        pod: "nginx-7d9f".into(),
                        container: "nginx".into(),
                    }),
                    seccomp: SeccompFilter::RuntimeDefault,
                },
                started_at_ms: 1_764_000_001_000,
                last_seen_ms: 1_764_000_009_999,
                exited_at_ms: None,
                incomplete: false,
                unverified: true,
                syscalls: vec![
                    sc(Abi::X86_64, 0, 1000, 0b1000, 1_764_000_001_000),
                    sc(Abi::X86_64, 59, 1, 0b0010, 1_764_000_001_000),
                    sc(Abi::I386, 1, 3, 0b1000, 1_764_000_005_000),
                ],
            },
            ContainerDelta {
                container: ContainerRef {
                    runtime: "containerd".into(),
                    id: "1234".into(),
                    image: "".into(),
                    image_digest: "".into(),
                    pod: None,
                    seccomp: SeccompFilter::Profile("sha256:00ff".into()),
                },
                started_at_ms: 1_764_000_002_000,
                last_seen_ms: 1_764_000_002_500,
                exited_at_ms: Some(1_764_000_002_600),
                incomplete: true,
                unverified: false,
                syscalls: vec![sc(Abi::X32, 0x4000_0001, u64::MAX, 0b1100, 0)],
            },
        ],
    }
}

/// What a message of `version` can carry of `e`: v1 has no pod and no
/// filter, v1 and v2 have no `incomplete` (they decode as complete), and
/// v1 to v3 have no `unverified` (they decode as verified).
fn as_version(mut e: Envelope, version: u16) -> Envelope {
    for c in &mut e.containers {
        if version < 2 {
            c.container.pod = None;
            c.container.seccomp = SeccompFilter::Unknown;
        }
        if version < 3 {
            c.incomplete = false;
        }
        if version < 4 {
            c.unverified = false;
        }
    }
    e
}

/// The sample a fixture of `version` was written from (an older encoder
/// refuses an incomplete or unverified container: the flag cannot travel).
fn sample_for(version: u16) -> Envelope {
    as_version(sample(), version.max(2))
}

fn fixture(version: u16) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/wire/v{version}.bin"))
}

fn golden(version: u16) -> Vec<u8> {
    let path = fixture(version);
    // A fixture is a released format: SANDMINE_BLESS writes the fixture of
    // a new version once and never rewrites one that exists (delete it by
    // hand, in the commit that takes the version, to write it again).
    if std::env::var_os("SANDMINE_BLESS").is_some() && !path.exists() {
        let bytes = encode_version(&sample_for(version), version).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_version_decodes_from_its_golden_bytes() {
    assert_eq!(
        decode_unchecked(&golden(1)).unwrap(),
        as_version(sample(), 1)
    );
    assert_eq!(
        decode_unchecked(&golden(2)).unwrap(),
        as_version(sample(), 2)
    );
    assert_eq!(
        decode_unchecked(&golden(3)).unwrap(),
        as_version(sample(), 3)
    );
    assert_eq!(decode_unchecked(&golden(4)).unwrap(), sample());
    assert_eq!(CURRENT_VERSION, 4, "a new version needs a new fixture here");
    // v1 and v2 decode as complete; v3 carries the flag.
    let flags = |v: u16| -> Vec<bool> {
        decode_unchecked(&golden(v))
            .unwrap()
            .containers
            .iter()
            .map(|c| c.incomplete)
            .collect()
    };
    assert_eq!(flags(1), [false, false]);
    assert_eq!(flags(2), [false, false]);
    assert_eq!(flags(3), [false, true]);
    assert_eq!(flags(4), [false, true]);
    // v1 to v3 decode as verified; v4 carries the flag.
    let unverified = |v: u16| -> Vec<bool> {
        decode_unchecked(&golden(v))
            .unwrap()
            .containers
            .iter()
            .map(|c| c.unverified)
            .collect()
    };
    for v in [1, 2, 3] {
        assert_eq!(unverified(v), [false, false], "v{v}");
    }
    assert_eq!(unverified(4), [true, false]);
    // The sample's extremes (calls = u64::MAX, a zero timestamp) are
    // outside today's ranges: `decode` says so.
    for v in [1, 2, 3, 4] {
        assert_eq!(
            decode(&golden(v)).map_err(|e| e.to_string()),
            Err(format!(
                "version-{v} message out of range: container 1 syscall 0: calls {} not in 1..=281474976710656",
                u64::MAX
            ))
        );
    }
}

#[test]
fn the_encoder_still_writes_the_golden_bytes() {
    assert_eq!(encode(&sample()).unwrap(), golden(CURRENT_VERSION));
    assert_eq!(encode_version(&sample_for(3), 3).unwrap(), golden(3));
    assert_eq!(encode_version(&sample_for(2), 2).unwrap(), golden(2));
    assert_eq!(encode_version(&sample_for(1), 1).unwrap(), golden(1));
}

#[test]
fn header_is_magic_and_little_endian_version() {
    let b = golden(2);
    assert_eq!(&b[..6], b"SMDW\x02\x00");
    assert_eq!(peek_version(&b), Ok(2));
    // Pinned sizes: a change here is a wire change.
    assert_eq!(b.len(), 409, "v2 fixture size changed");
    let b = golden(3);
    assert_eq!(&b[..6], b"SMDW\x03\x00");
    assert_eq!(peek_version(&b), Ok(3));
    // v2 plus one byte per container (the flag).
    assert_eq!(b.len(), 411, "v3 fixture size changed");
    let b = golden(4);
    assert_eq!(&b[..6], b"SMDW\x04\x00");
    assert_eq!(peek_version(&b), Ok(4));
    // v3 plus one byte per container (the second flag).
    assert_eq!(b.len(), 413, "v4 fixture size changed");
}

#[test]
fn an_unverified_container_cannot_travel_below_version_4() {
    let mut e = sample();
    e.containers[1].incomplete = false;
    for v in [1, 2, 3] {
        assert_eq!(
            encode_version(&e, v).map_err(|err| err.to_string()),
            Err(format!(
                "cannot encode: container {} is unverified and wire version {v} cannot say so; leave it out of the message",
                e.containers[0].container.id
            ))
        );
    }
    // Without it, the older versions encode.
    e.containers.remove(0);
    assert_eq!(decode_unchecked(&encode_version(&e, 3).unwrap()), Ok(e));
}

#[test]
fn the_v4_flag_is_a_strict_bool() {
    // One container, no syscalls: the body ends with the two flags and
    // the empty syscall list's length.
    let mut e = in_range();
    e.containers.truncate(1);
    e.containers[0].syscalls.clear();
    e.containers[0].unverified = true;
    let mut b = encode(&e).unwrap();
    let n = b.len();
    assert_eq!(&b[n - 3..], [0, 1, 0]);
    assert_eq!(decode(&b), Ok(e.clone()));
    b[n - 2] = 0;
    e.containers[0].unverified = false;
    assert_eq!(decode(&b), Ok(e));
    b[n - 2] = 2;
    let err = decode(&b).unwrap_err();
    assert!(
        matches!(err, WireError::Malformed { version: 4, .. }),
        "{err}"
    );
}

#[test]
fn an_incomplete_container_cannot_travel_below_version_3() {
    for v in [1, 2] {
        assert_eq!(
            encode_version(&sample(), v).map_err(|e| e.to_string()),
            Err(format!(
                "cannot encode: container 1234 is incomplete and wire version {v} cannot say so; leave it out of the message"
            ))
        );
    }
    // Without it, the older versions encode.
    let mut e = as_version(sample(), 3);
    e.containers.truncate(1);
    assert_eq!(decode(&encode_version(&e, 2).unwrap()), Ok(e));
}

#[test]
fn the_v3_flag_is_a_strict_bool() {
    // One container, no syscalls: the body ends with the flag and the
    // empty syscall list's length.
    let mut e = as_version(in_range(), 3);
    e.containers.truncate(1);
    e.containers[0].syscalls.clear();
    e.containers[0].incomplete = true;
    let mut b = encode_version(&e, 3).unwrap();
    let n = b.len();
    assert_eq!(&b[n - 2..], [1, 0]);
    assert_eq!(decode(&b), Ok(e.clone()));
    b[n - 2] = 0;
    e.containers[0].incomplete = false;
    assert_eq!(decode(&b), Ok(e));
    b[n - 2] = 2;
    let err = decode(&b).unwrap_err();
    assert!(
        matches!(err, WireError::Malformed { version: 3, .. }),
        "{err}"
    );
}

#[test]
fn a_future_version_is_rejected_clearly() {
    let mut b = golden(4);
    b[4] = 5;
    let err = decode(&b).unwrap_err();
    assert_eq!(
        err,
        WireError::UnknownVersion {
            version: 5,
            oldest: 1,
            newest: 4
        }
    );
    assert!(err.is_unknown_version());
    assert!(err.to_string().contains("upgrade the aggregator"), "{err}");
}

#[test]
fn garbage_is_rejected_never_panics() {
    assert_eq!(decode(b"SMD"), Err(WireError::TooShort(3)));
    assert_eq!(
        decode(b"{\"json\": 1}"),
        Err(WireError::BadMagic(*b"{\"js"))
    );
    let good = golden(3);
    // Every truncation is an error, never a panic or a partial envelope.
    for n in 6..good.len() {
        let err = decode(&good[..n]).unwrap_err();
        assert!(
            matches!(err, WireError::Malformed { version: 3, .. }),
            "{n}: {err}"
        );
    }
    let mut trailing = good.clone();
    trailing.push(0);
    let err = decode(&trailing).unwrap_err();
    assert!(err.to_string().contains("1 trailing bytes"), "{err}");
    // Flip every byte of the body: decoding may fail or succeed, but it
    // never panics.
    for i in 6..good.len() {
        let mut b = good.clone();
        b[i] ^= 0xff;
        let _ = decode(&b);
    }
}

#[test]
fn invalid_fields_are_malformed() {
    let mut e = sample();
    e.seq = 0;
    let err = decode(&encode(&e).unwrap()).unwrap_err();
    assert!(err.to_string().contains("sequence 0"), "{err}");
    let mut e = sample();
    e.host_id.clear();
    let err = decode(&encode(&e).unwrap()).unwrap_err();
    assert!(err.to_string().contains("empty host id"), "{err}");
}

#[test]
fn dedupe_id_names_host_boot_and_sequence() {
    assert_eq!(
        sample().dedupe_id(),
        "host-a.6f1c0f1e-7d1b-4c55-9d1e-2b8e3a6c9f00.42"
    );
}

/// `sample()` with every value inside the documented ranges (the golden
/// sample deliberately carries `calls = u64::MAX` and a zero timestamp).
fn in_range() -> Envelope {
    let mut e = sample();
    e.containers[1].syscalls[0].calls = 7;
    e.containers[1].syscalls[0].first_seen_ms = 1_764_000_002_000;
    e
}

#[test]
fn out_of_range_values_are_rejected_at_decode() {
    const MAX_CALLS: u64 = 1 << 48;
    const MIN_MS: u64 = 1_577_836_800_000; // 2020-01-01T00:00:00Z
    const END_MS: u64 = 4_102_444_800_000; // 2100-01-01T00:00:00Z
    let window = "not in 1577836800000..4102444800000 (2020-01-01 to 2100-01-01 UTC)";
    for version in [1, 2, 3] {
        // The edges of every range are accepted.
        let mut e = as_version(in_range(), version);
        e.containers[0].syscalls[0].calls = 1;
        e.containers[0].syscalls[1].calls = MAX_CALLS;
        e.interval_start_ms = MIN_MS;
        e.containers[0].started_at_ms = MIN_MS;
        e.containers[0].syscalls[0].first_seen_ms = MIN_MS;
        e.containers[1].exited_at_ms = Some(END_MS - 1);
        e.seq = i64::MAX as u64;
        let bytes = encode_version(&e, version).unwrap();
        assert_eq!(
            decode(&bytes),
            Ok(as_version(e, version)),
            "v{version} edges"
        );

        type Edit = fn(&mut Envelope);
        let cases: Vec<(Edit, String)> = vec![
            (
                |e| e.containers[0].syscalls[1].calls = 0,
                "container 0 syscall 1: calls 0 not in 1..=281474976710656".into(),
            ),
            (
                |e| e.containers[1].syscalls[0].calls = MAX_CALLS + 1,
                "container 1 syscall 0: calls 281474976710657 not in 1..=281474976710656".into(),
            ),
            (
                |e| e.containers[0].syscalls[2].calls = u64::MAX,
                format!(
                    "container 0 syscall 2: calls {} not in 1..=281474976710656",
                    u64::MAX
                ),
            ),
            (
                |e| e.seq = i64::MAX as u64 + 1,
                "seq 9223372036854775808 not in 1..=9223372036854775807".into(),
            ),
            (
                |e| e.interval_start_ms = 0,
                format!("interval_start_ms 0 {window}"),
            ),
            (
                |e| e.interval_end_ms = u64::MAX,
                format!("interval_end_ms {} {window}", u64::MAX),
            ),
            (
                |e| e.interval_start_ms = e.interval_end_ms + 1,
                "interval_start_ms 1764000010001 after interval_end_ms 1764000010000".into(),
            ),
            (
                |e| e.containers[1].started_at_ms = MIN_MS - 1,
                format!("container 1: started_at_ms 1577836799999 {window}"),
            ),
            (
                |e| e.containers[0].last_seen_ms = END_MS,
                format!("container 0: last_seen_ms 4102444800000 {window}"),
            ),
            (
                |e| e.containers[0].exited_at_ms = Some(0),
                format!("container 0: exited_at_ms 0 {window}"),
            ),
            (
                |e| e.containers[0].syscalls[1].first_seen_ms = u64::MAX,
                format!("container 0 syscall 1: first_seen_ms {} {window}", u64::MAX),
            ),
        ];
        for (edit, what) in cases {
            let mut e = as_version(in_range(), version);
            edit(&mut e);
            let err = decode(&encode_version(&e, version).unwrap()).map(|_| ());
            assert_eq!(
                err.map_err(|e| e.to_string()),
                Err(format!("version-{version} message out of range: {what}")),
                "v{version}"
            );
        }
    }
}
