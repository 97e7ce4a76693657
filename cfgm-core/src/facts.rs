//! The facts document: what an agent knows about its host, as data.
//!
//! `cfgm-agent facts --json` writes it (and the agent keeps it in
//! `STATE_DIR/facts.json` after every run); `cfgm plan` reads it to plan a
//! host without touching it. Gathering it is the agent's business (it reads
//! the host); this module only owns the shape, its version, and the value
//! templates see as `facts`, so the agent and a plan render alike.

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

/// Everything the agent knows about its host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Facts {
    pub schema_version: u32,
    /// The host's short name (the inventory name, unless configured).
    pub host: String,
    /// When the facts were gathered: Unix seconds, and as UTC text.
    pub time: i64,
    pub time_utc: String,
    pub applied: Applied,
    pub system: System,
    pub packages: Vec<Package>,
    pub services: Vec<Service>,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// Every resource of the last run's catalog with what was observed.
    pub resources: Vec<ObservedResource>,
    /// Resources that owe a refresh (an earlier run's watched change whose
    /// refresh did not happen): the next run performs it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owed_refresh: Vec<crate::ResourceId>,
    /// What could not be read (`path: why`).
    pub problems: Vec<String>,
}

/// What the host last converged to.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Applied {
    /// The last applied commit (`STATE_DIR/applied-commit`).
    pub commit: Option<String>,
    /// The catalog id of the last run.
    pub catalog_id: Option<String>,
    /// The tree id of the last run (a commit or a content hash).
    pub tree_id: Option<String>,
    /// How the last run ended (`converged`, `failed`, …).
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct System {
    pub hostname: Option<String>,
    pub fqdn: Option<String>,
    pub os: Os,
    /// The kernel release (`6.1.0-18-amd64`).
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub cpu_count: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub interfaces: Vec<Interface>,
    /// Unix seconds.
    pub boot_time: Option<i64>,
}

/// From os-release.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Os {
    pub id: Option<String>,
    pub version_id: Option<String>,
    pub codename: Option<String>,
    pub pretty_name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// `up`, `down`, `unknown` … (operstate).
    pub state: Option<String>,
    /// `ADDRESS/PREFIX`, IPv4 then IPv6.
    pub addresses: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Service {
    /// The unit name (`ssh.service`).
    pub name: String,
    /// `enabled`, `disabled`, `static`, `indirect` or `masked`.
    pub enabled: String,
    /// systemd's ActiveState (`active`, `inactive`, `failed` …), when read.
    pub active: Option<String>,
    /// systemd's SubState (`running`, `exited`, `dead` …), when read.
    pub sub: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    /// The GECOS field (the `user` kind's `comment`).
    #[serde(default)]
    pub comment: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObservedResource {
    pub id: crate::ResourceId,
    pub outcome: crate::Outcome,
    pub observed: Option<serde_json::Value>,
}

/// What templates see as `facts`: the system facts (`facts.os.id`,
/// `facts.kernel`, …) and `facts.pkgs`, each installed package's version
/// by name. `cfgm plan` builds the same value from a facts document, so a
/// plan renders templates as the agent does.
pub fn template_facts(f: &Facts) -> serde_json::Value {
    let mut v = serde_json::to_value(&f.system).unwrap_or_else(|_| serde_json::json!({}));
    let pkgs: serde_json::Map<String, serde_json::Value> = f
        .packages
        .iter()
        .map(|p| (p.name.clone(), serde_json::Value::String(p.version.clone())))
        .collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("pkgs".into(), serde_json::Value::Object(pkgs));
    }
    v
}
