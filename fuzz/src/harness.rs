//! What each fuzz target does with one input: the real parser, and the
//! invariants its result must keep. Shared, as this one file, by the fuzz
//! targets (`fuzz/fuzz_targets/`) and by the corpus replay that
//! `cargo test` runs (`tests/fuzz_corpus.rs`), so that CI checks every
//! committed input exactly as the campaigns did, without fuzz tooling.
//!
//! Every function here panics on a broken invariant, and only then: any
//! input, however malformed, must come back as an error value.

use collector::daemon::cgpath;
use collector::docker::http::{demux, HttpError, Response, ResponseParser};
use policy_compiler::bpf::{self, SeccompData};
use policy_compiler::effective::{Conditions, EffectiveProfile, Judgement};
use policy_compiler::filter::{self, DefaultOverride, FilterError, UNLISTED_ABI_RET};
use policy_compiler::oci::KernelVersion;
use policy_compiler::{OciProfile, Policy};
use schemas::abi::X32_SYSCALL_BIT;
use schemas::{wire, Abi};
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "libseccomp.rs"]
mod libseccomp;

/// How many libseccomp programs the profile target compared so far (the
/// corpus replay checks that the second oracle ran).
pub static LIBSECCOMP_PROGRAMS: AtomicUsize = AtomicUsize::new(0);

/// The wire decoder: any bytes decode to an envelope or an error. A
/// decoded envelope round-trips: at its own version when unsigned (v1 to
/// v4), and signed at v5 and v6 with the fuzzer's own host key (any
/// version: what an old collector's fields say, a new one can sign). A
/// signed input names its signer, and re-signed with the fuzzer's key it
/// decodes back equal.
///
/// Random bytes almost never carry a valid ed25519 signature, so on their
/// own they would stop at the v5/v6 signature check. Hence [`wire_signed`]:
/// an input that starts like a v5 or v6 message is also taken as its
/// header and body, signed with the fuzzer's key, and decoded: the body
/// decoders of v5 and v6 see every mutation.
pub fn wire(data: &[u8]) {
    let _ = wire::peek_version(data);
    let _ = wire::decode_unchecked(data);
    wire_signed(data);
    let Ok((env, signer)) = wire::decode_with_signer(data) else {
        return;
    };
    let version = wire::peek_version(data).expect("decoded bytes have a version");
    if version >= wire::SIGNED_VERSION {
        assert!(signer.is_some(), "a v{version} envelope decoded unsigned");
        resign_round_trip(&env, version);
    } else {
        assert!(signer.is_none(), "a v{version} envelope decoded signed");
        let again = wire::encode_version(&env, version)
            .unwrap_or_else(|e| panic!("a decoded v{version} envelope does not re-encode: {e}"));
        let back = wire::decode(&again)
            .unwrap_or_else(|e| panic!("a re-encoded v{version} envelope does not decode: {e}"));
        assert_eq!(back, env, "v{version} round trip changed the envelope");
        // Signed at v5 (no denials before v6: none to drop) or v6, by the
        // input's length (signing costs: one version per input).
        let v = if data.len() % 2 == 0 {
            wire::SIGNED_VERSION
        } else {
            wire::DENIALS_VERSION
        };
        resign_round_trip(&env, v);
    }
    let _ = env.dedupe_id();
}

/// The fuzzer's host key (a fixed seed: reproducible inputs).
fn fuzz_key() -> wire::HostKey {
    wire::HostKey::from_seed([0x5a; 32])
}

/// `env` signed at `version` with the fuzzer's key decodes back equal,
/// signed by that key, and `encoded_len` knows its length.
fn resign_round_trip(env: &wire::Envelope, version: u16) {
    let key = fuzz_key();
    let bytes = wire::encode_as(env, version, Some(&key))
        .unwrap_or_else(|e| panic!("a decoded envelope does not encode at v{version}: {e}"));
    assert_eq!(wire::peek_version(&bytes).ok(), Some(version));
    assert_eq!(
        wire::encoded_len(env, version).ok(),
        Some(bytes.len()),
        "encoded_len disagrees with the v{version} encoding"
    );
    let (back, signer) = wire::decode_with_signer(&bytes)
        .unwrap_or_else(|e| panic!("a signed v{version} envelope does not decode: {e}"));
    assert_eq!(
        signer,
        Some(key.public_key()),
        "v{version}: the wrong signer"
    );
    assert_eq!(
        &back, env,
        "the signed v{version} round trip changed the envelope"
    );
}

/// `data` as the header and body of a v5 or v6 message (it starts with the
/// magic and version 5 or 6): the fuzzer's key and signature are appended
/// and the result decoded. Its signature is valid, so what decides is the
/// body decoder: an envelope or an error, never a panic; an envelope
/// names the fuzzer's key and round-trips signed.
fn wire_signed(data: &[u8]) {
    let Ok(version) = wire::peek_version(data) else {
        return;
    };
    if !(wire::SIGNED_VERSION..=wire::CURRENT_VERSION).contains(&version) {
        return;
    }
    let key = fuzz_key();
    let mut msg = data.to_vec();
    msg.extend_from_slice(&key.public_key().0);
    let sig = key.sign(&msg);
    msg.extend_from_slice(&sig);
    match wire::decode_with_signer(&msg) {
        Ok((env, signer)) => {
            assert_eq!(
                signer,
                Some(key.public_key()),
                "v{version}: the wrong signer"
            );
            resign_round_trip(&env, version);
        }
        Err(wire::WireError::BadSignature { .. }) => {
            panic!("v{version}: a message signed with the fuzzer's key failed its check")
        }
        Err(wire::WireError::OutOfRange { .. }) => {
            if let Ok(env) = wire::decode_unchecked(&msg) {
                // Out of range only: the format round-trips all the same.
                resign_round_trip_unchecked(&env, version);
            } else {
                panic!("v{version}: out of range, yet the format does not decode");
            }
        }
        Err(_) => {}
    }
}

/// [`resign_round_trip`] for an envelope outside the ranges (the golden
/// fixtures' extreme values): the format alone.
fn resign_round_trip_unchecked(env: &wire::Envelope, version: u16) {
    let bytes = wire::encode_as(env, version, Some(&fuzz_key()))
        .unwrap_or_else(|e| panic!("a decoded envelope does not encode at v{version}: {e}"));
    let back = wire::decode_unchecked(&bytes)
        .unwrap_or_else(|e| panic!("a signed v{version} envelope does not decode unchecked: {e}"));
    assert_eq!(
        &back, env,
        "the unchecked v{version} round trip changed the envelope"
    );
}

/// The Docker Engine's HTTP response parser and stream demux. The first
/// byte picks where the rest is cut into reads (as a socket might deliver
/// it); the answer must not depend on the cuts, except that a head that
/// is still incomplete past `MAX_HEAD` is refused as soon as that is seen.
/// A complete body is then demultiplexed.
pub fn docker_http(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let whole = parse_in_reads(rest, rest.len().max(1));
    let step = usize::from(cut % 32) + 1;
    let pieces = parse_in_reads(rest, step);
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "reads of {step} bytes changed the response"),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(HttpError::TooLarge { .. })) => {}
        (a, b) => panic!("whole: {a:?}; in reads of {step} bytes: {b:?}"),
    }
    if let Ok(resp) = whole {
        if let Ok(out) = demux(&resp.body) {
            assert!(out.len() <= resp.body.len(), "demux grew the stream");
        }
    }
    let _ = demux(rest);
}

/// Feeds `bytes` to a [`ResponseParser`] `step` bytes at a time, then ends
/// the stream.
fn parse_in_reads(bytes: &[u8], step: usize) -> Result<Response, HttpError> {
    let mut parser = ResponseParser::default();
    for read in bytes.chunks(step) {
        if let Some(resp) = parser.feed(read)? {
            return Ok(resp);
        }
    }
    parser.finish()
}

/// The cgroup path parser. Input: the path, then optionally a NUL and the
/// configured `cgroup_parent`. A container found has a 64-hex id, is the
/// path's last component, and is found again from the names the kernel
/// program records.
pub fn cgroup_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, parent) = match text.split_once('\0') {
        Some((p, c)) => (p, Some(c)),
        None => (text, None),
    };
    let Some(c) = cgpath::parse(path, parent) else {
        return;
    };
    assert!(
        c.id.len() == 64
            && c.id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "id {:?} from {path:?}",
        c.id
    );
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    assert_eq!(Some(&c.leaf.as_str()), parts.last(), "leaf of {path:?}");
    assert!(c.leaf.contains(&c.id), "{:?} is not in {:?}", c.id, c.leaf);
    let above = &parts[..parts.len() - 1];
    let recorded = cgpath::parse_recorded(
        above.last().copied().unwrap_or(""),
        &c.leaf,
        parts.len() as u32,
        parent,
    );
    assert_eq!(recorded.as_ref(), Some(&c), "recorded names of {path:?}");
    assert!(
        c.parent_paths.contains(&format!("/{}", above.join("/"))),
        "{path:?} is not under {:?}",
        c.parent_paths
    );
}

/// The policy TOML (`--policy FILE`): parsed and validated, then resolved.
pub fn policy_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_toml(text) else {
        return;
    };
    let _ = policy.resolve();
}

/// The host ABIs a profile is compiled for, with the native one first.
const HOSTS: [&[Abi]; 2] = [&[Abi::X86_64, Abi::I386, Abi::X32], &[Abi::Aarch64]];

/// How many calls each compiled program is judged on.
const CALLS: usize = 48;

/// The OCI profile parser and the BPF filter compiler. Input: 8 bytes of
/// seed, then the profile's JSON. A profile that parses emits JSON that
/// parses back to the same JSON; resolved for each host (bounding set,
/// kernel and `--action` from the seed), it compiles to a program the
/// kernel accepts ([`bpf::check`]), whose verdict on random calls (ABI,
/// number, arguments from the seed, biased to the numbers and values the
/// profile names) is [`EffectiveProfile::verdict`]'s.
pub fn profile(data: &[u8]) {
    let (seed, text) = match data.split_first_chunk::<8>() {
        Some((s, t)) => (u64::from_le_bytes(*s), t),
        None => return,
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(profile) = OciProfile::parse(text) else {
        return;
    };
    let json = profile.to_json().expect("a parsed profile serialises");
    let again = OciProfile::parse(&json)
        .unwrap_or_else(|e| panic!("emitted JSON does not parse: {e}\n{json}"));
    assert_eq!(
        again.to_json().expect("serialises"),
        json,
        "emit, parse, emit changed it"
    );
    let mut rng = Rng(seed);
    for host in HOSTS {
        let native = host[0];
        let conditions = Conditions::from_bounding_mask(
            rng.next(),
            native,
            KernelVersion {
                kernel: rng.below(8),
                major: rng.below(24),
            },
        );
        let over = [
            DefaultOverride::Errno,
            DefaultOverride::Kill,
            DefaultOverride::Log,
        ][rng.below(3) as usize];
        // The unresolved entry points must not panic either.
        let _ = filter::build_for(&profile, over, host);
        let _ = filter::verdict(&profile, over, host, native, "read");
        let Ok(eff) = profile.resolve_with(&conditions, over) else {
            continue;
        };
        let prog = match filter::build_effective(&eff, host) {
            Ok(p) => p,
            Err(FilterError::TooLong { .. }) => continue,
            Err(e) => panic!("a resolved profile does not compile: {e}"),
        };
        if let Err(e) = bpf::check(&prog) {
            panic!("the kernel would refuse the program: {e}");
        }
        let calls = Calls::new(&eff, host);
        for _ in 0..CALLS {
            let (data, want) = calls.pick(&eff, &mut rng, None);
            let got = bpf::run(&prog, &data).expect("checked above");
            assert_eq!(
                got, want,
                "arch {:#x} nr {:#x} args {:x?}: BPF {got:#x}, evaluator {want:#x}",
                data.arch, data.nr, data.args
            );
        }
        against_libseccomp(&eff, &calls, &mut rng);
    }
}

/// A call, and the return value the evaluator gives it.
pub type Judged = (SeccompData, u32);

/// For the kernel check (`tests/fuzz_corpus.rs`,
/// `profile_verdicts_hold_in_the_kernel`): a profile input resolved for an
/// x86 host as the target does, its compiled program, and `n` random
/// x86_64 and x32 calls (the `syscall` instruction's ABIs) with the return
/// value the evaluator gives each. `None` when the input is no profile, or
/// does not resolve or compile.
pub fn x86_program_and_calls(
    data: &[u8],
    n: usize,
) -> Option<(Vec<filter::SockFilter>, Vec<Judged>)> {
    let (seed, text) = data.split_first_chunk::<8>()?;
    let profile = OciProfile::parse(std::str::from_utf8(text).ok()?).ok()?;
    let mut rng = Rng(u64::from_le_bytes(*seed));
    let host = HOSTS[0];
    let conditions = Conditions::from_bounding_mask(
        rng.next(),
        host[0],
        KernelVersion {
            kernel: rng.below(8),
            major: rng.below(24),
        },
    );
    let eff = profile
        .resolve_with(&conditions, DefaultOverride::Errno)
        .ok()?;
    let prog = filter::build_effective(&eff, host).ok()?;
    let calls = Calls::new(&eff, host);
    let picked = (0..n)
        .map(|_| {
            let abi = if rng.below(4) == 0 {
                Abi::X32
            } else {
                Abi::X86_64
            };
            calls.pick(&eff, &mut rng, Some(abi))
        })
        .collect();
    Some((prog, picked))
}

/// The second oracle: per listed ABI of the host, libseccomp's program for
/// the same rules ([`libseccomp`]) answers random calls of that ABI as the
/// evaluator does, runc's ENOSYS stub left out of both.
fn against_libseccomp(eff: &EffectiveProfile, calls: &Calls, rng: &mut Rng) {
    let mut plain = eff.clone();
    plain.enosys_above.clear();
    for abi in calls.host.iter().filter(|a| eff.abis.contains(a)) {
        let (prog, left_out) = match libseccomp::program(&plain, *abi) {
            Ok(p) => p,
            Err(e) => panic!("libseccomp refuses the {abi} rules sandmine compiles: {e}"),
        };
        if let Err(e) = bpf::check(&prog) {
            panic!("libseccomp's {abi} program is refused: {e}");
        }
        for _ in 0..CALLS / 2 {
            let (data, want) = calls.pick(&plain, rng, Some(*abi));
            if left_out.contains(&data.nr) {
                continue;
            }
            let got = bpf::run(&prog, &data).expect("checked above");
            assert_eq!(
                got, want,
                "{abi} nr {:#x} args {:x?}: libseccomp {got:#x}, evaluator {want:#x}",
                data.nr, data.args
            );
        }
        LIBSECCOMP_PROGRAMS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Random calls for one resolved profile on one host, and what the
/// evaluator says each gets.
struct Calls<'a> {
    host: &'a [Abi],
    /// Per host ABI, the numbers the profile judges and the stub's edges.
    numbers: Vec<(Abi, Vec<u32>)>,
    /// Every comparison constant, with its neighbours.
    values: Vec<u64>,
}

impl<'a> Calls<'a> {
    fn new(eff: &EffectiveProfile, host: &'a [Abi]) -> Calls<'a> {
        let numbers = host
            .iter()
            .map(|abi| {
                let mut n: Vec<u32> = eff
                    .syscalls
                    .get(abi)
                    .map(|t| t.keys().copied().collect())
                    .unwrap_or_default();
                if let Some(t) = eff.enosys_above.get(abi) {
                    n.extend([*t, t.wrapping_add(1)]);
                }
                (*abi, n)
            })
            .collect();
        let mut values = vec![0, 1, u64::from(u32::MAX), 1 << 32, u64::MAX];
        for rules in eff.syscalls.values().flat_map(|t| t.values()) {
            if let Judgement::Args(rules) = rules {
                for c in rules.iter().flat_map(|r| &r.cmps) {
                    for v in [c.value, c.value_two] {
                        values.extend([v, v.wrapping_add(1), v.wrapping_sub(1), v ^ (1 << 32)]);
                        values.push(v | 0xffff_ffff_0000_0000);
                    }
                }
            }
        }
        Calls {
            host,
            numbers,
            values,
        }
    }

    /// A random call and the evaluator's verdict on it: of any host ABI
    /// (one in 16 of an arch the host cannot produce), or with `only`, of
    /// that ABI alone (an x86_64 number or -1, an x32 number).
    fn pick(&self, eff: &EffectiveProfile, rng: &mut Rng, only: Option<Abi>) -> (SeccompData, u32) {
        let mut args = [0u64; 6];
        for a in &mut args {
            *a = match rng.below(4) {
                0 => rng.next(),
                1 => rng.below(16),
                _ => self.values[rng.below(self.values.len() as u64) as usize],
            };
        }
        if only.is_none() && rng.below(16) == 0 {
            let arch = rng.next() as u32;
            if !self.host.iter().any(|a| a.audit_arch() == arch) {
                let data = SeccompData {
                    nr: rng.next() as u32,
                    arch,
                    instruction_pointer: 0,
                    args,
                };
                return (data, UNLISTED_ABI_RET);
            }
        }
        let (abi, named) = match only {
            Some(abi) => self
                .numbers
                .iter()
                .find(|(a, _)| *a == abi)
                .expect("a host ABI"),
            None => &self.numbers[rng.below(self.numbers.len() as u64) as usize],
        };
        let x32 = if *abi == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
        let mut nr = match rng.below(8) {
            0..=3 if !named.is_empty() => named[rng.below(named.len() as u64) as usize],
            0..=4 => rng.below(600) as u32 | x32,
            5 => u32::MAX,
            6 => (rng.next() as u32) | x32,
            _ => rng.next() as u32,
        };
        match only {
            Some(Abi::X32) if nr == u32::MAX => nr = X32_SYSCALL_BIT,
            Some(Abi::X32) => nr |= X32_SYSCALL_BIT,
            Some(Abi::X86_64) if nr != u32::MAX => nr &= X32_SYSCALL_BIT - 1,
            _ => {}
        }
        let data = SeccompData {
            nr,
            arch: abi.audit_arch(),
            instruction_pointer: rng.next(),
            args,
        };
        let (action, errno) = eff.verdict(*abi, nr, args);
        (data, filter::ret_value(action, errno))
    }
}

/// splitmix64: the seed's stream of calls.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough below `n` (> 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
