//! `sandmine query`: what the store knows, for people and scripts.

use crate::config::ConfigArgs;
use crate::settings::Settings;
use anyhow::{bail, Result};
use schemas::syscalls;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    about = "Show what the store (ClickHouse or embedded) knows about images and syscalls",
    long_about = "Reads the store named by the configuration ([store.clickhouse] or \
[store.embedded]; e.g. --set store.embedded.path=/var/lib/sandmine/standalone.db).\n\n\
  sandmine query images          one image per line\n\
  sandmine query image IMAGE     JSON: exposure (hosts, containers, container-seconds), \
per syscall hosts, containers, calls, first and last seen, and per-container incidence\n\
  sandmine query totals          TSV: image, abi, syscall, calls, hosts, containers"
)]
pub struct QueryArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// images | image IMAGE | totals
    #[arg(value_name = "WHAT", required = true, num_args = 1..=2)]
    pub what: Vec<String>,
}

pub fn main(args: QueryArgs) -> Result<ExitCode> {
    let s: Settings = args.config.load()?;
    crate::compiling::with_store(&s.store, |store| async move {
        let mut out = std::io::stdout().lock();
        match args.what.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["images"] => {
                for i in store.images().await? {
                    writeln!(out, "{i}")?;
                }
            }
            ["image", image] => {
                let Some(obs) = store.image_observations(image).await? else {
                    bail!("image {image:?} is not in the store (see `sandmine query images`)");
                };
                let mut v = serde_json::to_value(&obs)?;
                // Names next to numbers, for people; numbers stay the key.
                if let Some(list) = v.get_mut("syscalls").and_then(|s| s.as_array_mut()) {
                    for (j, s) in list.iter_mut().enumerate() {
                        let t = &obs.syscalls[j];
                        let name = syscalls::name(t.abi, t.nr).unwrap_or("?");
                        s["name"] = serde_json::Value::from(name);
                    }
                }
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            }
            ["totals"] => {
                writeln!(out, "image\tabi\tsyscall\tcalls\thosts\tcontainers")?;
                for (image, abi, nr, calls, hosts, containers) in store.syscall_totals().await? {
                    let name = syscalls::name(abi, nr)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("#{nr}"));
                    writeln!(
                        out,
                        "{image}\t{abi}\t{name}\t{calls}\t{hosts}\t{containers}"
                    )?;
                }
            }
            _ => bail!(
                "unknown query {:?} (images, image IMAGE, totals)",
                args.what.join(" ")
            ),
        }
        Ok(ExitCode::SUCCESS)
    })
}
