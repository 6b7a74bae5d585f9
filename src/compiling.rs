//! What `compile`, `explain` and `publish` share: the policy (file plus
//! the measured runtime base), and compiling images read from the store.

use aggregator::store::Store;
use anyhow::{bail, Context, Result};
use collector::docker::DockerClient;
use collector::ebpf::{EbpfCollector, EbpfOptions};
use collector::mining::runtime_base;
use policy_compiler::policy::{Runtime, RuntimeName};
use policy_compiler::{Compiled, Policy};
use schemas::fleet::ImageObservations;
use schemas::Abi;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The flags that pick the policy.
#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Policy file (TOML; see policy-compiler/README.md). Without it the
    /// documented safe defaults apply.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The runtime's must-allow base: `auto` (the measurement cached for
    /// the local Docker engine's runc, measured now if missing), `none`
    /// (only what the fleet observed the runtime do), or a FILE written by
    /// an earlier measurement (/var/lib/sandmine/runtime-base/*.json). A
    /// `[runtime]` section in the policy file wins over this.
    #[arg(long, value_name = "auto|none|FILE", default_value = "auto")]
    pub runtime_base: String,
}

impl PolicyArgs {
    pub fn load(&self) -> Result<Policy> {
        let mut policy = match &self.policy {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read policy {}", p.display()))?;
                Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            }
            None => Policy::default(),
        };
        if policy.runtime.is_none() {
            policy.runtime = self.runtime()?;
        }
        policy
            .validate()
            .map_err(|e| anyhow::anyhow!("policy: {e}"))?;
        Ok(policy)
    }

    fn runtime(&self) -> Result<Option<Runtime>> {
        let base = match self.runtime_base.as_str() {
            "none" => return Ok(None),
            "auto" => {
                let docker = DockerClient::connect(None).context(
                    "--runtime-base auto needs the local Docker engine to find runc's measured base; \
                     pass --runtime-base FILE, or --runtime-base none",
                )?;
                // Loading the collector is only needed to measure; the
                // cached measurement is used when present.
                let collector = EbpfCollector::load(&EbpfOptions { auto_track: true })
                    .context("measuring the runtime base needs the eBPF collector")?;
                runtime_base::load_or_measure(
                    &docker,
                    &collector,
                    Path::new(runtime_base::DEFAULT_CACHE_DIR),
                    20,
                    &mut |_| {},
                )?
            }
            file => runtime_base::load_file(Path::new(file))?,
        };
        let mut by_abi: BTreeMap<Abi, Vec<String>> = BTreeMap::new();
        for k in &base.syscalls {
            if let Some(name) = schemas::syscalls::name(k.abi, k.nr) {
                by_abi.entry(k.abi).or_default().push(name.to_string());
            }
        }
        Ok(Some(Runtime {
            name: RuntimeName::Runc,
            version: base.runtime.clone(),
            base: by_abi,
        }))
    }
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

/// Reads and compiles one image; returns what was read with the result
/// (the publisher needs both).
pub async fn compile_one(
    store: &Store,
    image: &str,
    policy: &Policy,
    now_ms: u64,
) -> Result<(ImageObservations, Compiled)> {
    let obs = store
        .image_observations(image)
        .await
        .with_context(|| format!("cannot read {image:?} from the store"))?
        .with_context(|| format!("image {image:?} is not in the store"))?;
    let compiled = policy_compiler::compile_image(&obs, policy, now_ms)
        .with_context(|| format!("cannot compile {image:?}"))?;
    Ok((obs, compiled))
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
