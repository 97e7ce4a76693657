//! `cfgm-agent facts`: what this host is, as plans see it.

use cfgm_agent::facts;
use cfgm_agent::RunError;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Print the whole document as JSON (what `cfgm plan` reads).
    #[arg(long)]
    json: bool,
    /// The host root to read ("/" for this machine).
    #[arg(long, default_value = "/", value_name = "DIR")]
    root: PathBuf,
    /// The agent's state directory (last report, applied commit).
    #[arg(long, default_value = "/var/lib/cfgm", value_name = "DIR")]
    state_dir: PathBuf,
}

pub fn run(a: Args) -> Result<u8, RunError> {
    let f = facts::gather(&a.root, &a.state_dir);
    if a.json {
        let text = serde_json::to_string_pretty(&f).map_err(|e| RunError::Io(e.to_string()))?;
        println!("{text}");
        return Ok(cfgm_core::exit::OK);
    }
    let s = &f.system;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    println!("host        {}", f.host);
    println!(
        "os          {} {} ({})",
        or(&s.os.id),
        or(&s.os.version_id),
        or(&s.os.codename)
    );
    println!("kernel      {} {}", or(&s.kernel), or(&s.arch));
    println!(
        "cpus/memory {} / {} MiB",
        s.cpu_count.map(|c| c.to_string()).unwrap_or("?".into()),
        s.memory_bytes
            .map(|m| (m >> 20).to_string())
            .unwrap_or("?".into())
    );
    for i in &s.interfaces {
        println!("interface   {} {}", i.name, i.addresses.join(" "));
    }
    println!(
        "applied     {} (catalog {})",
        or(&f.applied.commit),
        or(&f.applied.catalog_id)
    );
    println!(
        "inventory   {} packages, {} services, {} users, {} groups",
        f.packages.len(),
        f.services.len(),
        f.users.len(),
        f.groups.len()
    );
    println!("resources   {} observed in the last run", f.resources.len());
    for p in &f.problems {
        println!("problem     {p}");
    }
    Ok(cfgm_core::exit::OK)
}
