//! What `compile`, `explain` and `publish` share: the policy (file plus
//! the runtime base), and compiling images read from the store.

use aggregator::runtime_base::ObservedRuntimeBases;
use aggregator::store::Store;
use anyhow::{bail, Context, Result};
use policy_compiler::policy::{Runtime, RuntimeName};
use policy_compiler::{Compiled, Policy, ResolvedPolicy};
use schemas::fleet::ImageObservations;
use schemas::{Abi, SyscallKey};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The flags that pick the policy.
#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Policy file (TOML; see policy-compiler/README.md). Without it the
    /// documented safe defaults apply.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The runtime's must-allow base: `auto` (derived from the store: per
    /// runtime, every syscall its containers made after the runtime's
    /// filter and before their entrypoint; no probe containers, no eBPF,
    /// no Docker), `none` (only what each image's own containers did), or a
    /// FILE written by `sandmine mine-image`'s measurement
    /// (/var/lib/sandmine/runtime-base/*.json). A `[runtime]` section in
    /// the policy file wins over this.
    #[arg(long, value_name = "auto|none|FILE", default_value = "auto")]
    pub runtime_base: String,
    #[command(flatten)]
    pub reach: crate::reaching::ReachArgs,
}

/// The policy, and where each image's runtime base comes from.
pub struct Compiler {
    /// Validated and resolved once.
    policy: ResolvedPolicy,
    /// `auto` (and no `[runtime]` in the policy file).
    observe_base: bool,
    /// The bases observed in the store, applied per image.
    observed: Option<ObservedRuntimeBases>,
    /// Static reachability (`--reach-engine`).
    reach: Option<crate::reaching::FleetReach>,
}

impl PolicyArgs {
    /// Reads the policy file and a runtime base FILE; with `auto`, the
    /// base is read from the store by [`Compiler::read_observed`].
    pub fn load(&self) -> Result<Compiler> {
        let mut policy = match &self.policy {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read policy {}", p.display()))?;
                Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            }
            None => Policy::default(),
        };
        let mut observe_base = false;
        if policy.runtime.is_none() {
            match self.runtime_base.as_str() {
                "none" => {}
                "auto" => observe_base = true,
                file => {
                    let base = collector::mining::runtime_base::load_file(Path::new(file))?;
                    policy.runtime = Some(runtime(base.runtime.clone(), &base.syscalls));
                }
            }
        }
        let policy = policy
            .resolve()
            .map_err(|e| anyhow::anyhow!("policy: {e}"))?;
        Ok(Compiler {
            policy,
            observe_base,
            observed: None,
            reach: self.reach.load()?,
        })
    }
}

/// The policy's runtime section for a base.
fn runtime(version: String, syscalls: &BTreeSet<SyscallKey>) -> Runtime {
    let mut by_abi: BTreeMap<Abi, Vec<String>> = BTreeMap::new();
    for k in syscalls {
        if let Some(name) = schemas::syscalls::name(k.abi, k.nr) {
            by_abi.entry(k.abi).or_default().push(name.to_string());
        }
    }
    Runtime {
        // The wire names the engine, not its OCI runtime: runc is what
        // Docker, podman, containerd and CRI-O run by default.
        name: RuntimeName::Runc,
        version,
        base: by_abi,
    }
}

impl Compiler {
    /// With `auto`, (re)reads the runtime-phase calls from the store: call
    /// before compiling, and again before each publishing round.
    pub async fn read_observed(&mut self, store: &Store) -> Result<()> {
        if self.observe_base {
            let rows = store
                .runtime_syscalls()
                .await
                .context("cannot read the runtime-phase calls from the store")?;
            self.observed = Some(ObservedRuntimeBases::from_rows(&rows));
        }
        Ok(())
    }

    /// The policy, as for every image (without the per-image observed
    /// runtime base).
    pub fn policy(&self) -> &Policy {
        self.policy.policy()
    }

    /// The policy for one image: with `auto`, the runtime base observed
    /// under the runtimes its containers ran under (only that part is
    /// resolved per image).
    pub fn policy_for(&self, image: &str) -> Result<std::borrow::Cow<'_, ResolvedPolicy>> {
        match self.observed.as_ref().and_then(|o| o.for_image(image)) {
            Some((runtimes, base)) => {
                let version = format!("{} (observed in the store)", runtimes.join("+"));
                let p = self
                    .policy
                    .with_runtime(runtime(version, &base))
                    .map_err(|e| anyhow::anyhow!("the runtime base observed for {image:?}: {e}"))?;
                Ok(std::borrow::Cow::Owned(p))
            }
            None => Ok(std::borrow::Cow::Borrowed(&self.policy)),
        }
    }

    /// Reads and compiles one image; returns what was read with the result
    /// (the publisher needs both).
    pub async fn compile(
        &self,
        store: &Store,
        image: &str,
        now_ms: u64,
    ) -> Result<(ImageObservations, Compiled)> {
        let obs = store
            .image_observations(image)
            .await
            .with_context(|| format!("cannot read {image:?} from the store"))?
            .with_context(|| format!("image {image:?} is not in the store"))?;
        let policy = self.policy_for(image)?;
        let reach = self.reach_of(&obs)?;
        let compiled =
            policy_compiler::compile::compile_image_with(&obs, reach.as_ref(), &policy, now_ms)
                .with_context(|| format!("cannot compile {image:?}"))?;
        Ok((obs, compiled))
    }

    /// The image's static reachability, with `--reach-engine`.
    fn reach_of(
        &self,
        obs: &ImageObservations,
    ) -> Result<Option<policy_compiler::reachable::Reachability>> {
        match &self.reach {
            Some(r) => r.of(obs),
            None => Ok(None),
        }
    }

    /// The publisher's candidate for one image; with `log_variant`, its
    /// log-mode compile attached (an image an operator forced into log
    /// mode, `sandmine lever force-log`). `after_denials` are compiled in
    /// (and carried in the candidate): syscalls the publisher added after
    /// denials under the image's enforced profile (`on_denials = "add"`).
    pub async fn candidate(
        &self,
        store: &Store,
        image: &str,
        now_ms: u64,
        log_variant: bool,
        after_denials: &[publish::AddedAfterDenials],
    ) -> Result<publish::Candidate> {
        let obs = store
            .image_observations(image)
            .await
            .with_context(|| format!("cannot read {image:?} from the store"))?
            .with_context(|| format!("image {image:?} is not in the store"))?;
        let policy = self
            .policy_for(image)?
            .with_after_denials(after_denials_keys(image, after_denials));
        let reach = self.reach_of(&obs)?;
        let c = policy_compiler::compile::compile_image_with(&obs, reach.as_ref(), &policy, now_ms)
            .with_context(|| format!("cannot compile {image:?}"))?;
        let mut cand = publish::candidate(&obs, &c, self.policy());
        cand.after_denials = after_denials.to_vec();
        if !log_variant {
            return Ok(cand);
        }
        let log = policy_compiler::compile::compile_image_with(
            &obs,
            reach.as_ref(),
            &policy.with_mode(policy_compiler::Mode::Log),
            now_ms,
        )
        .with_context(|| format!("cannot compile {image:?} in log mode"))?;
        let mut log = publish::candidate(&obs, &log, self.policy());
        log.after_denials = after_denials.to_vec();
        Ok(publish::with_log_variant(cand, log))
    }
}

/// The keys of `added` (ABI and name, as a meta records them), each with
/// why; one the table does not know is left out with a warning.
fn after_denials_keys(
    image: &str,
    added: &[publish::AddedAfterDenials],
) -> Vec<(SyscallKey, String)> {
    added
        .iter()
        .filter_map(|a| {
            let key = a.abi.parse::<Abi>().ok().and_then(|abi| {
                schemas::syscalls::number(abi, &a.name).map(|nr| SyscallKey { abi, nr })
            });
            if key.is_none() {
                log::warn!(
                    "{image}: the meta's after_denials names {} {}, which this build does not know; not compiled in",
                    a.abi,
                    a.name
                );
            }
            key.map(|k| (k, a.reason.clone()))
        })
        .collect()
}

/// The images to compile: the given ones (each must be in the store), or
/// every image in the store (which must not be empty).
pub async fn select_images(store: &Store, wanted: &[String]) -> Result<Vec<String>> {
    let all = store
        .images()
        .await
        .context("cannot list the store's images")?;
    if all.is_empty() {
        bail!("the store has no observations yet (is a collector publishing, and the aggregator running?)");
    }
    if wanted.is_empty() {
        return Ok(all);
    }
    for w in wanted {
        if !all.contains(w) {
            bail!("image {w:?} is not in the store (`sandmine query images` lists them)");
        }
    }
    Ok(wanted.to_vec())
}

/// Runs `f` with the configured store on a fresh async runtime: what every
/// one-shot store command (query, compile, explain, publish) starts with.
pub fn with_store<T, F, Fut>(cfg: &aggregator::store::StoreConfig, f: F) -> Result<T>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        let store = Store::open(cfg).await.context("cannot open the store")?;
        f(store).await
    })
}

/// One image's surface (`query surface`, `report`): compiled now, by the
/// same compiler and inputs as `compile`.
pub struct Surface {
    pub image: String,
    pub state: policy_compiler::State,
    /// The x86_64 names the profile allows.
    pub allowed: BTreeSet<&'static str>,
    /// Allowed names Docker's default profile does not allow.
    pub beyond_default: BTreeSet<&'static str>,
    /// Allowed names of the high-risk catalogue, in its order.
    pub high_risk: Vec<&'static str>,
    /// Every seccomp denial the store holds for the image (wire v6
    /// collectors; `query denials` shows the same rows).
    pub denials: Vec<aggregator::store::analytics::ImageDenials>,
    /// What the compiler read.
    pub observations: ImageObservations,
    /// What it decided.
    pub compiled: Compiled,
}

impl Compiler {
    /// One image's surface, compiled now.
    pub async fn surface(&self, store: &Store, image: &str, now_ms: u64) -> Result<Surface> {
        let docker = policy_compiler::risk::docker_default_x86_64();
        let (observations, compiled) = self.compile(store, image, now_ms).await?;
        let allowed: BTreeSet<&'static str> = compiled
            .decision
            .allowed_names()
            .remove(&Abi::X86_64)
            .unwrap_or_default();
        let beyond_default = allowed
            .iter()
            .copied()
            .filter(|n| !docker.contains(n))
            .collect();
        let high_risk = policy_compiler::risk::CATALOGUE
            .iter()
            .filter(|r| allowed.contains(r.name))
            .map(|r| r.name)
            .collect();
        let denials = store
            .denials(Some(image), None)
            .await
            .context("cannot read the store's denials")?;
        Ok(Surface {
            image: image.to_string(),
            state: compiled.decision.state,
            allowed,
            beyond_default,
            high_risk,
            denials,
            observations,
            compiled,
        })
    }
}

impl Surface {
    /// Calls the image's containers had denied, every action and profile.
    pub fn denied_calls(&self) -> u64 {
        self.denials
            .iter()
            .fold(0u64, |n, d| n.saturating_add(d.denials))
    }

    /// The denied syscalls' names, sorted, once each: the name, followed by
    /// `(abi)` when not x86_64, with no space (list cells are joined by
    /// spaces).
    pub fn denied_syscalls(&self) -> BTreeSet<String> {
        self.denials
            .iter()
            .map(|d| shown(d.abi, d.nr).replace(' ', ""))
            .collect()
    }
}

/// A syscall's name for people: the name (or `#nr`), with its ABI when not
/// x86_64.
pub fn shown(abi: Abi, nr: u32) -> String {
    let name = schemas::syscalls::name(abi, nr)
        .map(str::to_string)
        .unwrap_or_else(|| format!("#{nr}"));
    if abi == Abi::X86_64 {
        name
    } else {
        format!("{name} ({abi})")
    }
}
