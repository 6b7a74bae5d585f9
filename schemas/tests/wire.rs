//! The wire format against committed byte-level fixtures: every version
//! ever released must still decode to the same envelope, and today's
//! encoder must still produce the same bytes.
//!
//! Regenerate the fixtures (only when adding a version!) with
//! `SANDMINE_BLESS=1 cargo test -p schemas --test wire`.

use schemas::wire::{
    decode, decode_unchecked, decode_with_signer, encode, encode_as, encode_signed, encode_version,
    encoded_len, message_id, peek_version, ContainerDelta, ContainerRef, Envelope, HostKey, PodRef,
    PublicKey, SeccompFilter, SyscallDelta, WireError, CURRENT_VERSION, TRAILER,
};
use schemas::{
    Abi, ArgField, ArgSet, ArgSets, DenialKey, Denials, DenyAction, ExecKind, ExecutedFile,
    ExecutedFiles, PhaseSet, SyscallKey,
};
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
                denials: Denials::from([
                    (
                        DenialKey {
                            abi: Abi::X86_64,
                            nr: 165,
                            action: DenyAction::Errno(1),
                        },
                        3,
                    ),
                    (
                        DenialKey {
                            abi: Abi::X86_64,
                            nr: 165,
                            action: DenyAction::Trap,
                        },
                        1,
                    ),
                    (
                        DenialKey {
                            abi: Abi::I386,
                            nr: 26,
                            action: DenyAction::Kill,
                        },
                        1 << 48,
                    ),
                ]),
                args: ArgSets::from([
                    (
                        SyscallKey {
                            abi: Abi::X86_64,
                            nr: 41,
                        },
                        ArgSet {
                            fields: vec![
                                ArgField {
                                    index: 0,
                                    mask: 0xffff_ffff,
                                },
                                ArgField {
                                    index: 1,
                                    mask: 0xf,
                                },
                            ],
                            values: [vec![1, 2], vec![2, 1], vec![10, 2]].into(),
                            overflow: 0,
                        },
                    ),
                    (
                        SyscallKey {
                            abi: Abi::X86_64,
                            nr: 135,
                        },
                        ArgSet {
                            fields: vec![ArgField {
                                index: 0,
                                mask: 0xffff_ffff,
                            }],
                            values: [vec![0xffff_ffff]].into(),
                            overflow: 1 << 48,
                        },
                    ),
                ]),
                executed: ExecutedFiles::from([
                    ExecutedFile {
                        path: "/usr/sbin/nginx".into(),
                        kind: ExecKind::Exec,
                        dev: 0x803,
                        ino: 1_234_567,
                    },
                    ExecutedFile {
                        path: "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
                        kind: ExecKind::Mapped,
                        dev: 0x803,
                        ino: u64::MAX,
                    },
                ]),
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
                denials: Denials::new(),
                args: ArgSets::new(),
                executed: ExecutedFiles::new(),
                syscalls: vec![sc(Abi::X32, 0x4000_0001, u64::MAX, 0b1100, 0)],
            },
        ],
    }
}

/// What a message of `version` can carry of `e`: v1 has no pod and no
/// filter, v1 and v2 have no `incomplete` (they decode as complete),
/// v1 to v3 have no `unverified` (they decode as verified), v1 to v5
/// no denials, v1 to v6 no argument sets and v1 to v7 no executed files.
fn as_version(mut e: Envelope, version: u16) -> Envelope {
    for c in &mut e.containers {
        if version < 8 {
            c.executed.clear();
        }
        if version < 7 {
            c.args.clear();
        }
        if version < 6 {
            c.denials.clear();
        }
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

/// The key the v5 fixture is signed with (a fixed seed: ed25519
/// signatures are deterministic, so the bytes are too).
fn fixture_key() -> HostKey {
    HostKey::from_seed(*b"sandmine wire v5 golden fixture!")
}

fn golden(version: u16) -> Vec<u8> {
    let path = fixture(version);
    // A fixture is a released format: SANDMINE_BLESS writes the fixture of
    // a new version once and never rewrites one that exists (delete it by
    // hand, in the commit that takes the version, to write it again).
    if std::env::var_os("SANDMINE_BLESS").is_some() && !path.exists() {
        let bytes = encode_as(&sample_for(version), version, Some(&fixture_key())).unwrap();
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
    assert_eq!(
        decode_unchecked(&golden(4)).unwrap(),
        as_version(sample(), 4)
    );
    assert_eq!(
        decode_unchecked(&golden(5)).unwrap(),
        as_version(sample(), 5)
    );
    assert_eq!(
        decode_unchecked(&golden(6)).unwrap(),
        as_version(sample(), 6)
    );
    assert_eq!(
        decode_unchecked(&golden(7)).unwrap(),
        as_version(sample(), 7)
    );
    assert_eq!(decode_unchecked(&golden(8)).unwrap(), sample());
    assert_eq!(CURRENT_VERSION, 8, "a new version needs a new fixture here");
    // v8 carries the executed files; older versions decode with none.
    let executed = |v: u16| -> usize {
        decode_unchecked(&golden(v))
            .unwrap()
            .containers
            .iter()
            .map(|c| c.executed.len())
            .sum()
    };
    for v in 1..=7 {
        assert_eq!(executed(v), 0, "v{v}");
    }
    assert_eq!(executed(8), 2);
    // v7 carries the argument sets; older versions decode with none.
    let args = |v: u16| -> usize {
        decode_unchecked(&golden(v))
            .unwrap()
            .containers
            .iter()
            .map(|c| c.args.len())
            .sum()
    };
    for v in 1..=6 {
        assert_eq!(args(v), 0, "v{v}");
    }
    assert_eq!(args(7), 2);
    assert_eq!(args(8), 2);
    // v6 carries the denials; older versions decode with none.
    let denials = |v: u16| -> usize {
        decode_unchecked(&golden(v))
            .unwrap()
            .containers
            .iter()
            .map(|c| c.denials.len())
            .sum()
    };
    for v in 1..=5 {
        assert_eq!(denials(v), 0, "v{v}");
    }
    assert_eq!(denials(6), 3);
    assert_eq!(denials(7), 3);
    assert_eq!(denials(8), 3);
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
    assert_eq!(flags(5), [false, true]);
    assert_eq!(flags(6), [false, true]);
    assert_eq!(flags(7), [false, true]);
    assert_eq!(flags(8), [false, true]);
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
    assert_eq!(unverified(5), [true, false]);
    assert_eq!(unverified(6), [true, false]);
    assert_eq!(unverified(7), [true, false]);
    assert_eq!(unverified(8), [true, false]);
    // The sample's extremes (calls = u64::MAX, a zero timestamp) are
    // outside today's ranges: `decode` says so.
    for v in [1, 2, 3, 4, 5, 6, 7, 8] {
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
    assert_eq!(
        encode_signed(&sample(), &fixture_key()).unwrap(),
        golden(CURRENT_VERSION)
    );
    // Below v8 the executed files are dropped, below v7 the argument
    // sets, below v6 the denials: the same bytes as before them.
    assert_eq!(
        encode_as(&sample(), 7, Some(&fixture_key())).unwrap(),
        golden(7)
    );
    assert_eq!(
        encode_as(&sample(), 6, Some(&fixture_key())).unwrap(),
        golden(6)
    );
    assert_eq!(
        encode_as(&sample(), 5, Some(&fixture_key())).unwrap(),
        golden(5)
    );
    assert_eq!(encode(&sample()).unwrap(), golden(4));
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
    let b = golden(5);
    assert_eq!(&b[..6], b"SMDW\x05\x00");
    assert_eq!(peek_version(&b), Ok(5));
    // The v4 body, then the public key and the signature.
    assert_eq!(b.len(), 413 + 96, "v5 fixture size changed");
    assert_eq!(TRAILER, 96);
    assert_eq!(b[6..413], golden(4)[6..]);
    assert_eq!(b[413..445], fixture_key().public_key().0);
    let b = golden(6);
    assert_eq!(&b[..6], b"SMDW\x06\x00");
    assert_eq!(peek_version(&b), Ok(6));
    // The v4 body, a denial count per container and the denials (abi,
    // nr, action, errno, count: 5 bytes each, 13 for the one whose count
    // 2^48 is a 9-byte varint), then the trailer.
    assert_eq!(
        b.len(),
        413 + 2 + 5 + 5 + 13 + 96,
        "v6 fixture size changed"
    );
    assert_eq!(b[b.len() - 96..b.len() - 64], fixture_key().public_key().0);
    let b7 = golden(7);
    assert_eq!(&b7[..6], b"SMDW\x07\x00");
    assert_eq!(peek_version(&b7), Ok(7));
    // The v6 body, a set count per container (1 byte each) and the
    // sets, then the trailer. Socket: abi 1, nr 1, fields (count 1,
    // (0, 0xffffffff) 1 + 5, (1, 0xf) 1 + 1), values (count 1, three
    // values of count 1 and two 1-byte elements), overflow 0 in 1.
    // Personality: abi 1, nr 1, fields (1, 1 + 5), values (1, 1 + 5),
    // overflow 2^48 in 9.
    let socket = 1 + 1 + (1 + 6 + 2) + (1 + 3 * 3) + 1;
    let personality = 1 + 1 + (1 + 6) + (1 + 6) + 9;
    assert_eq!((socket, personality), (22, 25));
    assert_eq!(
        b7.len(),
        413 + 2 + 5 + 5 + 13 + 2 + socket + personality + 96,
        "v7 fixture size changed"
    );
    assert_eq!(
        b7[b7.len() - 96..b7.len() - 64],
        fixture_key().public_key().0
    );
    let b8 = golden(8);
    assert_eq!(&b8[..6], b"SMDW\x08\x00");
    assert_eq!(peek_version(&b8), Ok(8));
    // The v7 body, a file count per container (1 byte each) and the
    // files, then the trailer. libc: path (1 + 35), kind 1, dev 0x803 (3),
    // ino u64::MAX (9). nginx: path (1 + 15), kind 1, dev 3, ino
    // 1,234,567 (5).
    let libc = 1 + 35 + 1 + 3 + 9;
    let nginx = 1 + 15 + 1 + 3 + 5;
    assert_eq!((libc, nginx), (49, 25));
    assert_eq!(
        b8.len(),
        b7.len() + 2 + libc + nginx,
        "v8 fixture size changed"
    );
    assert_eq!(
        b8[b8.len() - 96..b8.len() - 64],
        fixture_key().public_key().0
    );
}

/// Who signed a v5 message is known and checked; v1 to v4 are unsigned.
#[test]
fn a_signed_message_names_its_signer() {
    let key = fixture_key();
    let e = in_range();
    let b = encode_signed(&e, &key).unwrap();
    assert_eq!(
        decode_with_signer(&b),
        Ok((e.clone(), Some(key.public_key())))
    );
    assert_eq!(key.public_key().to_string().len(), 64);
    assert_eq!(
        key.public_key().to_string().parse::<PublicKey>(),
        Ok(key.public_key())
    );
    for v in 1..=4 {
        let mut e = as_version(in_range(), v);
        if v < 4 {
            e.containers.retain(|c| !c.unverified);
        }
        let b = encode_version(&e, v).unwrap();
        assert_eq!(decode_with_signer(&b), Ok((e, None)), "v{v}");
    }
    // The seed round-trips through its file text.
    let again = HostKey::from_seed_hex(&format!("{}\n", key.seed_hex())).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    assert!(HostKey::from_seed_hex("abc").is_none());
    // Debug never shows the seed.
    assert!(!format!("{key:?}").contains(&key.seed_hex()));
    // v5 needs a key, and is what encode_as writes with one.
    assert_eq!(
        encode_as(&e, 5, None).map_err(|e| e.to_string()),
        Err("cannot encode: wire version 5 is signed and no host key was given".into())
    );
    assert!(encode_version(&e, 5).is_err());
    assert_eq!(encode_as(&e, 8, Some(&key)), encode_signed(&e, &key));
    assert_eq!(encode_as(&e, 4, Some(&key)), encode(&e));
    assert!(encode_as(&e, 9, Some(&key)).is_err());
    assert!(encode_version(&e, 6).is_err());
    assert!(encode_version(&e, 7).is_err());
    assert!(encode_version(&e, 8).is_err());
    // v5 is signed too, without the denials.
    let b5 = encode_as(&e, 5, Some(&key)).unwrap();
    assert_eq!(
        decode_with_signer(&b5),
        Ok((as_version(e.clone(), 5), Some(key.public_key())))
    );
    for v in [3, 4, 5, 6, 7, 8] {
        let mut e = in_range();
        e.containers.retain(|c| !c.unverified);
        assert_eq!(
            encoded_len(&e, v).unwrap(),
            encode_as(&e, v, Some(&key)).unwrap().len(),
            "v{v}"
        );
    }
}

/// Any change to a signed message, its key or its signature is refused
/// with the reason; so is a truncated trailer; nothing panics.
#[test]
fn a_bad_signature_or_a_truncated_trailer_is_refused() {
    let key = fixture_key();
    let other = HostKey::from_seed([9; 32]);
    let e = in_range();
    let good = encode_signed(&e, &key).unwrap();
    let n = good.len();
    let bad_sig = |b: &[u8]| match decode(b) {
        Err(WireError::BadSignature { version: 8, reason }) => reason,
        other => panic!("not a bad signature: {other:?}"),
    };
    // A body byte changed (a count raised on the way).
    let mut b = good.clone();
    b[40] ^= 1;
    assert_eq!(
        bad_sig(&b),
        format!(
            "bad signature: the message was not signed by the key it carries ({})",
            key.public_key()
        )
    );
    // Another key put in the trailer, the signature kept.
    let mut b = good.clone();
    b[n - TRAILER..n - 64].copy_from_slice(&other.public_key().0);
    assert!(bad_sig(&b).starts_with("bad signature"), "{}", bad_sig(&b));
    // Every byte of the signature and of the key matters.
    for i in n - TRAILER..n {
        let mut b = good.clone();
        b[i] ^= 0x40;
        assert!(
            matches!(decode(&b), Err(WireError::BadSignature { .. })),
            "byte {i}"
        );
    }
    // The same body signed by another key is valid, but names that key.
    let theirs = encode_signed(&e, &other).unwrap();
    assert_eq!(
        decode_with_signer(&theirs).map(|(_, k)| k),
        Ok(Some(other.public_key()))
    );
    // A v4 message relabelled v5 has no valid trailer.
    let mut b = encode(&e).unwrap();
    b[4] = 5;
    assert!(decode(&b).is_err());
    // Truncations: within the trailer, a bad signature; shorter than a
    // trailer, malformed; never a panic.
    for cut in 1..n - 6 {
        let err = decode(&good[..n - cut]).unwrap_err();
        if n - cut - 6 < TRAILER {
            assert_eq!(
                err,
                WireError::Malformed {
                    version: 8,
                    reason: format!(
                        "{} bytes after the header: too short for the 96-byte signature trailer",
                        n - cut - 6
                    )
                }
            );
        } else {
            assert!(
                matches!(err, WireError::BadSignature { version: 8, .. }),
                "{cut}: {err}"
            );
        }
    }
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(
        decode(&longer),
        Err(WireError::BadSignature { .. })
    ));
}

/// The broker's id adds a hash of the bytes to `host.boot.seq`: a forgery
/// with a victim's next seq has an id of its own.
#[test]
fn the_message_id_hashes_the_bytes() {
    let key = fixture_key();
    let e = in_range();
    let real = encode_signed(&e, &key).unwrap();
    let id = message_id(&e, &real);
    let prefix = "host-a.6f1c0f1e-7d1b-4c55-9d1e-2b8e3a6c9f00.42.";
    assert!(id.starts_with(prefix), "{id}");
    let hash = &id[prefix.len()..];
    assert_eq!(hash.len(), 16);
    assert!(hash
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // The same message again (a retry) has the same id.
    assert_eq!(message_id(&e, &encode_signed(&e, &key).unwrap()), id);
    // A forgery of the same (host, boot, seq) does not.
    let mut forged = e.clone();
    forged.containers[0].syscalls[0].calls += 1;
    let f = encode_signed(&forged, &HostKey::from_seed([9; 32])).unwrap();
    assert_ne!(message_id(&forged, &f), id);
    assert_eq!(forged.dedupe_id(), e.dedupe_id());
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
    let mut e = as_version(in_range(), 4);
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
    let mut b = golden(8);
    b[4] = 9;
    let err = decode(&b).unwrap_err();
    assert_eq!(
        err,
        WireError::UnknownVersion {
            version: 9,
            oldest: 1,
            newest: 8
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

/// v6 carries each container's denials exactly; their counts have the
/// calls' range, their actions are checked, and v5 drops them.
#[test]
fn denials_travel_from_version_6() {
    let key = fixture_key();
    let mut e = in_range();
    e.containers[1].denials.insert(
        DenialKey {
            abi: Abi::X32,
            nr: 0x4000_0001,
            action: DenyAction::Errno(38),
        },
        7,
    );
    let b = encode_as(&e, 6, Some(&key)).unwrap();
    assert_eq!(peek_version(&b), Ok(6));
    assert_eq!(decode(&b), Ok(as_version(e.clone(), 6)));
    assert_eq!(
        decode(&encode_as(&e, 5, Some(&key)).unwrap()),
        Ok(as_version(e.clone(), 5))
    );
    let range = |n: u64| {
        let mut e = in_range();
        e.containers[0].denials.insert(
            DenialKey {
                abi: Abi::X86_64,
                nr: 1,
                action: DenyAction::Kill,
            },
            n,
        );
        decode(&encode_as(&e, 6, Some(&key)).unwrap()).map(|_| ())
    };
    assert_eq!(range(1), Ok(()));
    assert_eq!(range(1 << 48), Ok(()));
    assert_eq!(
        range(0).map_err(|e| e.to_string()),
        Err("version-6 message out of range: container 0 denial 0: count 0 not in 1..=281474976710656".into())
    );
    assert_eq!(
        range((1 << 48) + 1).map_err(|e| e.to_string()),
        Err("version-6 message out of range: container 0 denial 0: count 281474976710657 not in 1..=281474976710656".into())
    );
    // A trap or kill with an errno, or an unknown action, is malformed.
    assert_eq!(schemas::wire::action_from_code(1, 1), None);
    assert_eq!(schemas::wire::action_from_code(2, 5), None);
    assert_eq!(schemas::wire::action_from_code(3, 0), None);
    for a in [
        DenyAction::Errno(0),
        DenyAction::Errno(1),
        DenyAction::Errno(65535),
        DenyAction::Trap,
        DenyAction::Kill,
    ] {
        let (c, n) = schemas::wire::action_code(a);
        assert_eq!(schemas::wire::action_from_code(c, n), Some(a));
    }
    // Patch the sample's first denial (errno 1 -> a trap with errno 1).
    let mut e = in_range();
    e.containers.truncate(1);
    e.containers[0]
        .denials
        .retain(|k, _| k.action == DenyAction::Errno(1));
    let good = encode_as(&e, 6, Some(&key)).unwrap();
    let body = &good[..good.len() - TRAILER];
    // The body ends with the one denial (bincode varints below 251 are
    // one byte): abi 0, nr 165, action 0, errno 1, count 3.
    let at = body.len() - 5;
    assert_eq!(body[at - 1..], [1, 0, 165, 0, 1, 3]);
    let mut patched = body.to_vec();
    patched[at + 2] = 1;
    let resigned = {
        use ed25519_dalek::Signer;
        let _ = key;
        let sk = ed25519_dalek::SigningKey::from_bytes(b"sandmine wire v5 golden fixture!");
        patched.extend_from_slice(&sk.verifying_key().to_bytes());
        let sig = sk.sign(&patched);
        patched.extend_from_slice(&sig.to_bytes());
        patched
    };
    let err = decode(&resigned).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed version-6 body: bad denial action 1 (errno 1)"
    );
}

/// A profile file's version is that of its compacted JSON, which is what
/// the engine reports and the collector hashes.
#[test]
fn a_profile_file_has_the_version_of_its_compacted_json() {
    let spaced = b"{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"x\": \"a \\\" b\" }\n";
    let compact = br#"{"defaultAction":"SCMP_ACT_ALLOW","x":"a \" b"}"#;
    let v = schemas::wire::profile_version(spaced);
    assert_eq!(v, schemas::wire::profile_version(compact));
    assert_eq!(v.len(), 16);
    let full = SeccompFilter::Profile(format!("sha256:{}", {
        use sha2::Digest;
        let h = sha2::Sha256::digest(compact);
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    }));
    assert_eq!(full.version(), v);
    assert_eq!(SeccompFilter::RuntimeDefault.version(), "runtime/default");
    assert_eq!(SeccompFilter::Unknown.version(), "unknown");
}

/// `body` (header and body of a signed message) with the fixture key's
/// trailer: a patched message whose signature is valid, so that what
/// decides is the body decoder.
fn resign(body: &[u8]) -> Vec<u8> {
    let key = fixture_key();
    let mut out = body.to_vec();
    out.extend_from_slice(&key.public_key().0);
    let sig = key.sign(&out);
    out.extend_from_slice(&sig);
    out
}

fn one_set(fields: &[(u8, u32)], values: &[&[u32]], overflow: u64) -> ArgSet {
    ArgSet {
        fields: fields
            .iter()
            .map(|&(index, mask)| ArgField { index, mask })
            .collect(),
        values: values.iter().map(|v| v.to_vec()).collect(),
        overflow,
    }
}

/// v7 carries each container's argument sets exactly; what no collector
/// records is out of range, a repeated syscall or value or an unknown ABI
/// is malformed, and v6 drops the sets.
#[test]
fn argument_sets_travel_from_version_7() {
    let key = fixture_key();
    let e = in_range();
    let b = encode_as(&e, 7, Some(&key)).unwrap();
    assert_eq!(peek_version(&b), Ok(7));
    assert_eq!(decode(&b), Ok(as_version(e.clone(), 7)));
    assert_eq!(e.containers[0].args.len(), 2);
    assert_eq!(
        decode(&encode_as(&e, 6, Some(&key)).unwrap()),
        Ok(as_version(e.clone(), 6))
    );
    let with = |set: ArgSet| {
        let mut e = in_range();
        e.containers[1].args.insert(
            SyscallKey {
                abi: Abi::X32,
                nr: 0x4000_0029,
            },
            set,
        );
        decode(&encode_as(&e, 7, Some(&key)).unwrap())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let out = |what: &str| {
        Err(format!(
            "version-7 message out of range: container 1 args of x32 1073741865: {what}"
        ))
    };
    assert_eq!(with(one_set(&[(5, 1)], &[&[1], &[0]], 1 << 48)), Ok(()));
    assert_eq!(
        with(one_set(&[(1, 0xf)], &[&[0x10]], 0)),
        out("argument 1 value 0x10 has bits outside its mask 0xf")
    );
    assert_eq!(
        with(one_set(&[(0, 1), (1, 1), (2, 1)], &[], 0)),
        out("3 argument fields (1 to 2)")
    );
    assert_eq!(
        with(one_set(&[(0, 1)], &[&[1]], (1 << 48) + 1)),
        out("overflow 281474976710657 not in 0..=281474976710656")
    );
    assert_eq!(
        with(one_set(&[(0, !0)], &[&[1, 2]], 0)),
        out("an argument value of 2 elements for 1 fields")
    );
    // Patched bodies: the one container's sets end the body (a set count,
    // then each set: abi, nr, fields, values, overflow).
    let mut e = in_range();
    e.containers.truncate(1);
    e.containers[0].args = ArgSets::from([
        (
            SyscallKey {
                abi: Abi::X86_64,
                nr: 41,
            },
            one_set(&[(0, 0xff)], &[&[1], &[2]], 0),
        ),
        (
            SyscallKey {
                abi: Abi::X86_64,
                nr: 42,
            },
            one_set(&[(0, 0xff)], &[&[1]], 0),
        ),
    ]);
    let good = encode_as(&e, 7, Some(&key)).unwrap();
    let body = &good[..good.len() - TRAILER];
    let n = body.len();
    // 2 sets: [0, 41, 1, (0, 255 = 251 then 2 bytes), 2, [1, 1], [1, 2], 0]
    // and [0, 42, 1, (0, 251 255 0), 1, [1, 1], 0].
    let set41 = [0, 41, 1, 0, 251, 255, 0, 2, 1, 1, 1, 2, 0];
    let set42 = [0, 42, 1, 0, 251, 255, 0, 1, 1, 1, 0];
    assert_eq!(body[n - 11..], set42);
    assert_eq!(body[n - 24..n - 11], set41);
    assert_eq!(body[n - 25], 2);
    assert_eq!(decode(&resign(body)), Ok(as_version(e.clone(), 7)));
    let patched = |at: usize, byte: u8| {
        let mut b = body.to_vec();
        b[at] = byte;
        decode(&resign(&b)).map(|_| ()).map_err(|e| e.to_string())
    };
    assert_eq!(
        patched(n - 10, 41),
        Err("malformed version-7 body: arguments of syscall (x86_64, 41) listed twice in one container".into())
    );
    assert_eq!(
        patched(n - 24 + 11, 1),
        Err(
            "malformed version-7 body: arguments of syscall (x86_64, 41): a value listed twice"
                .into()
        )
    );
    assert_eq!(
        patched(n - 11, 9),
        Err("malformed version-7 body: unknown ABI code 9".into())
    );
}

/// v8 carries each container's executed files exactly; a relative path
/// or too many files is out of range, a repeated file or an unknown kind
/// is malformed, and v7 drops the files.
#[test]
fn executed_files_travel_from_version_8() {
    let key = fixture_key();
    let file = |path: &str, kind| ExecutedFile {
        path: path.into(),
        kind,
        dev: 2049,
        ino: 77,
    };
    let mut e = in_range();
    e.containers[1].executed = ExecutedFiles::from([
        file("/bin/sh", ExecKind::Exec),
        file("/bin/sh", ExecKind::Mapped),
    ]);
    let b = encode_signed(&e, &key).unwrap();
    assert_eq!(peek_version(&b), Ok(8));
    assert_eq!(decode(&b), Ok(e.clone()));
    assert_eq!(
        decode(&encode_as(&e, 7, Some(&key)).unwrap()),
        Ok(as_version(e.clone(), 7))
    );
    let with = |files: ExecutedFiles| {
        let mut e = in_range();
        e.containers[1].executed = files;
        decode(&encode_signed(&e, &key).unwrap())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        with(ExecutedFiles::from([file("bin/sh", ExecKind::Exec)])),
        Err("version-8 message out of range: container 1 executed file 0: path \"bin/sh\" is not absolute".into())
    );
    let many: ExecutedFiles = (0..=schemas::executed::MAX_FILES_PER_MESSAGE)
        .map(|i| file(&format!("/lib/m{i}.so"), ExecKind::Mapped))
        .collect();
    assert_eq!(
        with(many),
        Err("version-8 message out of range: container 1: 1025 executed files (at most 1024 per message)".into())
    );
    // Patched bodies: the one container's files end the body (a count,
    // then each file: path, kind, dev, ino).
    let mut e = in_range();
    e.containers.truncate(1);
    e.containers[0].executed =
        ExecutedFiles::from([file("/a", ExecKind::Exec), file("/b", ExecKind::Exec)]);
    let good = encode_signed(&e, &key).unwrap();
    let body = &good[..good.len() - TRAILER];
    let n = body.len();
    // [2, (1 "/a" 0 [2049 = 251 1 8] 77), (1 "/b" 0 251 1 8 77)]
    let fa = [2, b'/', b'a', 0, 251, 1, 8, 77];
    let fb = [2, b'/', b'b', 0, 251, 1, 8, 77];
    assert_eq!(body[n - 8..], fb);
    assert_eq!(body[n - 16..n - 8], fa);
    assert_eq!(body[n - 17], 2);
    assert_eq!(decode(&resign(body)), Ok(e.clone()));
    let patched = |at: usize, byte: u8| {
        let mut b = body.to_vec();
        b[at] = byte;
        decode(&resign(&b)).map(|_| ()).map_err(|e| e.to_string())
    };
    assert_eq!(
        patched(n - 6, b'a'),
        Err(
            "malformed version-8 body: executed file \"/a\" (exec) listed twice in one container"
                .into()
        )
    );
    assert_eq!(
        patched(n - 5, 2),
        Err("malformed version-8 body: unknown file kind 2".into())
    );
}
