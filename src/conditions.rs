//! What dockerd judges a profile's `includes`/`excludes` against: this
//! host's (for `sandmine run`: its own bounding set, native ABI and kernel
//! release), or what `sandmine query breaks`'s flags say.

use crate::enforce::os_error_text;
use anyhow::{anyhow, bail, Result};
use policy_compiler::effective::Conditions;
use policy_compiler::oci::{KernelVersion, CAPABILITIES, DOCKER_DEFAULT_CAPS};
use schemas::Abi;
use std::collections::BTreeSet;

/// This process's bounding capability set (`CapBnd` in
/// /proc/self/status), the native ABI and the kernel release (uname's).
pub fn host(native: Abi) -> Result<Conditions> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| anyhow!("cannot read /proc/self/status: {}", os_error_text(&e)))?;
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| anyhow!("no CapBnd line in /proc/self/status"))?;
    Ok(Conditions::from_bounding_mask(
        bounding,
        native,
        host_kernel()?,
    ))
}

/// The kernel release, as uname gives it and dockerd reads it.
pub fn host_kernel() -> Result<KernelVersion> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_err(|e| {
        anyhow!(
            "cannot read the kernel release from /proc/sys/kernel/osrelease: {}",
            os_error_text(&e)
        )
    })?;
    Ok(KernelVersion::from_release(release.trim())?)
}

/// This machine's native ABI (the first a filter tests).
pub fn host_native() -> Result<Abi> {
    match Abi::host_abis().first() {
        Some(a) => Ok(*a),
        None => bail!("seccomp filters are not supported on this architecture by sandmine"),
    }
}

/// A capability name as Docker writes it: `CAP_SYS_ADMIN` (also taken as
/// `sys_admin` or `cap_sys_admin`).
pub fn capability(s: &str) -> Result<String, String> {
    let up = s.trim().to_ascii_uppercase();
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if CAPABILITIES.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(format!(
            "{s:?} is not a capability name (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE)"
        ))
    }
}

/// A bounding set: `host` (this process's), `docker` (Docker's default,
/// `docker run` without --cap-add), `none`, or capability names separated
/// by commas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapSet {
    Host,
    Docker,
    Listed(BTreeSet<String>),
}

pub fn parse_cap_set(s: &str) -> Result<CapSet, String> {
    match s {
        "host" => Ok(CapSet::Host),
        "docker" => Ok(CapSet::Docker),
        "none" | "" => Ok(CapSet::Listed(BTreeSet::new())),
        list => list
            .split(',')
            .map(capability)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(CapSet::Listed),
    }
}

/// Conditions from the flags: the bounding set (`caps` plus `add`), the
/// kernel (this host's when `None`) and the native ABI.
pub fn chosen(
    caps: &CapSet,
    add: &[String],
    kernel: Option<KernelVersion>,
    native: Abi,
) -> Result<Conditions> {
    let kernel = match kernel {
        Some(k) => k,
        None => host_kernel()?,
    };
    let mut c = match caps {
        CapSet::Host => host(native)?,
        CapSet::Docker => Conditions {
            caps: DOCKER_DEFAULT_CAPS.iter().map(|c| c.to_string()).collect(),
            native,
            kernel,
        },
        CapSet::Listed(set) => Conditions {
            caps: set.clone(),
            native,
            kernel,
        },
    };
    c.kernel = kernel;
    c.caps.extend(add.iter().cloned());
    Ok(c)
}
