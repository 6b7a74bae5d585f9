//! What a publication changes in the allowed set.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Syscalls added to and removed from the allowed set, per ABI. ABIs with
/// no change are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SyscallDiff {
    pub added: BTreeMap<String, BTreeSet<String>>,
    pub removed: BTreeMap<String, BTreeSet<String>>,
}

impl SyscallDiff {
    pub fn between(
        old: &BTreeMap<String, BTreeSet<String>>,
        new: &BTreeMap<String, BTreeSet<String>>,
    ) -> SyscallDiff {
        let empty = BTreeSet::new();
        let mut d = SyscallDiff::default();
        let abis: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for abi in abis {
            let o = old.get(abi).unwrap_or(&empty);
            let n = new.get(abi).unwrap_or(&empty);
            let added: BTreeSet<String> = n.difference(o).cloned().collect();
            let removed: BTreeSet<String> = o.difference(n).cloned().collect();
            if !added.is_empty() {
                d.added.insert(abi.clone(), added);
            }
            if !removed.is_empty() {
                d.removed.insert(abi.clone(), removed);
            }
        }
        d
    }

    pub fn added_count(&self) -> usize {
        self.added.values().map(BTreeSet::len).sum()
    }

    pub fn removed_count(&self) -> usize {
        self.removed.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// One line per change, additions first, each sorted by ABI then name:
    /// `+ x86_64 openat`, `- x86_64 ptrace`. `(no syscall changes)` when
    /// empty. Ends with a newline.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (sign, map) in [('+', &self.added), ('-', &self.removed)] {
            for (abi, names) in map {
                for n in names {
                    s.push_str(&format!("{sign} {abi} {n}\n"));
                }
            }
        }
        if s.is_empty() {
            s.push_str("(no syscall changes)\n");
        }
        s
    }

    /// `{"added":{abi:[names]},"removed":{...}}`, pretty-printed, newline
    /// at the end.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(abi: &str, names: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
        BTreeMap::from([(
            abi.to_string(),
            names.iter().map(|s| s.to_string()).collect(),
        )])
    }

    #[test]
    fn per_abi_changes() {
        let mut old = set("x86_64", &["read", "write", "ptrace"]);
        old.insert("i386".into(), ["read".to_string()].into());
        let mut new = set("x86_64", &["read", "write", "openat", "close"]);
        new.insert("aarch64".into(), ["read".to_string()].into());
        let d = SyscallDiff::between(&old, &new);
        assert_eq!(d.added_count(), 3);
        assert_eq!(d.removed_count(), 2);
        assert_eq!(
            d.to_text(),
            "+ aarch64 read\n+ x86_64 close\n+ x86_64 openat\n- i386 read\n- x86_64 ptrace\n"
        );
        let v: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "added": {"aarch64": ["read"], "x86_64": ["close", "openat"]},
                "removed": {"i386": ["read"], "x86_64": ["ptrace"]}
            })
        );
    }

    #[test]
    fn no_change() {
        let a = set("x86_64", &["read"]);
        let d = SyscallDiff::between(&a, &a);
        assert!(d.is_empty());
        assert_eq!(d.to_text(), "(no syscall changes)\n");
        assert_eq!(d.to_json(), "{\n  \"added\": {},\n  \"removed\": {}\n}\n");
    }
}
