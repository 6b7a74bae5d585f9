//! Fast syscall name lookups over the `schemas` tables: binary search by
//! number (the tables are sorted by number) and by name (an index sorted by
//! name, built once). Same answers as `schemas::syscalls::{name, number}`,
//! which scan linearly; the fleet compiler resolves thousands of names per
//! image.

use schemas::{syscalls, Abi};
use std::sync::OnceLock;

fn abi_index(abi: Abi) -> usize {
    match abi {
        Abi::X86_64 => 0,
        Abi::I386 => 1,
        Abi::X32 => 2,
        Abi::Aarch64 => 3,
    }
}

type ByName = [Vec<(&'static str, u32)>; 4];

fn by_name() -> &'static ByName {
    static INDEX: OnceLock<ByName> = OnceLock::new();
    INDEX.get_or_init(|| {
        Abi::ALL.map(|abi| {
            let mut v: Vec<(&'static str, u32)> =
                syscalls::table(abi).iter().map(|(n, s)| (*s, *n)).collect();
            v.sort_unstable();
            v
        })
    })
}

/// Name of syscall `nr` under `abi`.
pub fn name(abi: Abi, nr: u32) -> Option<&'static str> {
    let t = syscalls::table(abi);
    t.binary_search_by_key(&nr, |(n, _)| *n)
        .ok()
        .map(|i| t[i].1)
}

/// Number of syscall `name` under `abi`.
pub fn number(abi: Abi, name: &str) -> Option<u32> {
    let v = &by_name()[abi_index(abi)];
    v.binary_search_by(|(s, _)| (*s).cmp(name))
        .ok()
        .map(|i| v[i].1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_answers_as_the_linear_lookups() {
        for abi in schemas::Abi::ALL {
            for &(nr, nm) in schemas::syscalls::table(abi) {
                assert_eq!(super::name(abi, nr), Some(nm));
                assert_eq!(super::number(abi, nm), schemas::syscalls::number(abi, nm));
            }
            for nr in 0..1100 {
                assert_eq!(super::name(abi, nr), schemas::syscalls::name(abi, nr));
            }
            assert_eq!(super::number(abi, "nope"), None);
        }
    }
}
