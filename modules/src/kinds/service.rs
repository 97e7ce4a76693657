//! `service`: a system service running or stopped, enabled or disabled;
//! a refresh restarts it, or reloads it when `reload = true`.
//!
//! Two providers, chosen per host: systemd (`systemctl`) when it is PID 1,
//! sysvinit (`/etc/init.d/NAME`, `update-rc.d`, S links in /etc/rc[2-5].d)
//! otherwise, which is always the case for a root other than "/". Only the
//! attributes given are managed. A static systemd unit (no [Install]
//! section) cannot be enabled or disabled: `enabled = false` is satisfied
//! by it, `enabled = true` fails at observe, so the plan says so too. A
//! service that does not exist is observed as stopped and disabled; asking
//! it to run (or be enabled) fails with "no unit NAME.service" / "no
//! /etc/init.d/NAME" — at observe, so a dry run says so, unless a `pkg` it
//! comes after is declared to bring it. Installing the service's package
//! is the `pkg` kind's job (a service comes after the package of its name).

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, AutoDep, KindSpec, Problem};
use cfgm_core::ResourceId;

pub static SPEC: KindSpec = KindSpec {
    kind: "service",
    doc:
        "A service: running or stopped, enabled at boot or not; restarted (or reloaded) on refresh.",
    attrs: &[
        AttrSpec::opt("running", AttrType::Bool, "whether the service runs now"),
        AttrSpec::opt(
            "enabled",
            AttrType::Bool,
            "whether the service starts at boot",
        ),
        AttrSpec::opt(
            "reload",
            AttrType::Bool,
            "refresh by reload instead of restart",
        ),
        AttrSpec::opt(
            "masked",
            AttrType::Bool,
            "masked: its unit linked to /dev/null, so nothing can start it (false: unmasked)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps,
    claims: cfgm_core::schema::no_claims,
};

/// A unit or init-script name: it becomes an argument (after `--` where
/// the tool takes one; update-rc.d does not) and a path, so no `/`, no
/// leading `-` or `.`.
fn check(name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = masked_conflicts(attrs);
    let valid = !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.@-".contains(c));
    if !valid {
        out.push(Problem::resource(format!(
            "`{name}` is not a service name (letters, digits and : _ . @ -; no `/`)"
        )));
    }
    out
}

/// A masked service can neither run nor be enabled.
fn masked_conflicts(attrs: &Attrs) -> Vec<Problem> {
    if attrs.get("masked") != Some(&serde_json::Value::Bool(true)) {
        return Vec::new();
    }
    ["running", "enabled"]
        .into_iter()
        .filter(|a| attrs.get(*a) == Some(&serde_json::Value::Bool(true)))
        .map(|a| {
            Problem::attr(
                a,
                format!("`{a} = true` contradicts `masked = true`: nothing starts a masked service"),
            )
        })
        .collect()
}

/// A service comes after the package of the same name, when both are declared.
fn auto_deps(name: &str, _: &Attrs) -> Vec<AutoDep> {
    vec![AutoDep {
        candidates: vec![ResourceId::new("pkg", name)],
    }]
}

// ---- behaviour -----------------------------------------------------------

use crate::host::{Host, HostRead};
use crate::module::{KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Service>();

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub running: Option<bool>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub reload: Option<bool>,
    #[serde(default)]
    pub masked: Option<bool>,
}

/// The service as its init system reports it. A service that does not
/// exist is neither running nor enabled (`exists = false`); making it run
/// or enabled then fails in apply with a clear error.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    /// "systemd" or "sysvinit".
    pub provider: String,
    pub exists: bool,
    pub running: bool,
    pub enabled: bool,
    /// Its unit file is a link to /dev/null in /etc/systemd/system.
    #[serde(default)]
    pub masked: bool,
}

#[derive(Default)]
pub struct Service;

/// How a service differs.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceChange {
    /// Start (`to` true) or stop it.
    Running { from: bool, to: bool },
    /// Enable (`to` true) or disable it at boot.
    Enabled { from: bool, to: bool },
    /// Mask (`to` true) or unmask it.
    Masked { from: bool, to: bool },
}

impl KindChange for ServiceChange {
    fn show(&self) -> Change {
        match *self {
            ServiceChange::Running { from, to } => Change::new("running", from, to),
            ServiceChange::Enabled { from, to } => Change::new("enabled", from, to),
            ServiceChange::Masked { from, to } => Change::new("masked", from, to),
        }
    }
}

/// The init system of the host: systemd when it is PID 1, else sysvinit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Init {
    Systemd,
    Sysv,
}

impl Init {
    fn of(host: &HostRead) -> Init {
        if host.systemd() {
            Init::Systemd
        } else {
            Init::Sysv
        }
    }

    fn exists(self, host: &HostRead, name: &str) -> Result<bool, ModuleError> {
        match self {
            Init::Systemd => {
                let argv = [
                    "systemctl",
                    "show",
                    "-p",
                    "LoadState",
                    "--value",
                    "--",
                    name,
                ];
                let out = host.query(&argv)?;
                if !out.status.success() {
                    return Err(crate::host::command_error(&argv, &out));
                }
                Ok(String::from_utf8_lossy(&out.stdout).trim() != "not-found")
            }
            Init::Sysv => Ok(host
                .lstat(&init_script(name))?
                .is_some_and(|m| m.is_file || m.is_symlink)),
        }
    }

    fn missing(self, name: &str) -> ModuleError {
        ModuleError::Invalid(match self {
            Init::Systemd => format!("no unit {}", unit(name)),
            Init::Sysv => format!("no {}", init_script(name)),
        })
    }

    fn running(self, host: &HostRead, name: &str) -> Result<bool, ModuleError> {
        let out = match self {
            Init::Systemd => host.query(&["systemctl", "is-active", "--quiet", "--", name])?,
            Init::Sysv => host.query(&[init_script(name).as_str(), "status"])?,
        };
        Ok(out.status.success())
    }

    /// Whether the service starts at boot. `want` is the desired value: a
    /// static systemd unit has no [Install] section, so nothing can enable
    /// it — it counts as not enabled, and wanting it enabled is an error
    /// here rather than a change that would never take.
    fn enabled(self, host: &HostRead, name: &str, want: Option<bool>) -> Result<bool, ModuleError> {
        match self {
            Init::Systemd => {
                let out = host.query(&["systemctl", "is-enabled", "--", name])?;
                let state = String::from_utf8_lossy(&out.stdout);
                match state.trim() {
                    "static" if want == Some(true) => Err(ModuleError::Invalid(format!(
                        "{} is a static unit (it has no [Install] section), so it cannot be \
                         enabled; start it from a unit that is, or drop `enabled = true`",
                        unit(name)
                    ))),
                    "static" => Ok(false),
                    s => Ok(matches!(
                        s,
                        "enabled" | "enabled-runtime" | "alias" | "indirect"
                    )),
                }
            }
            Init::Sysv => {
                for level in 2..=5 {
                    let dir = format!("/etc/rc{level}.d");
                    if host.lstat(&dir)?.is_none() {
                        continue;
                    }
                    if host
                        .list_dir(&dir)?
                        .iter()
                        .any(|e| sysv_start_link(e, name))
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    /// Runs an action: start, stop, restart, reload, enable, disable.
    fn act(self, host: &Host, name: &str, action: &str) -> Result<(), ModuleError> {
        match (self, action) {
            (Init::Systemd, _) => host.run(&["systemctl", action, "--", name]).map(drop),
            (Init::Sysv, "enable") => {
                // `defaults` makes the links from the script's LSB header when
                // there are none yet; `enable` turns existing K links into S links.
                host.run(&["update-rc.d", name, "defaults"])?;
                host.run(&["update-rc.d", name, "enable"]).map(drop)
            }
            (Init::Sysv, "disable") => host.run(&["update-rc.d", name, "disable"]).map(drop),
            (Init::Sysv, _) => host.run(&[init_script(name).as_str(), action]).map(drop),
        }
    }
}

/// Where masking a unit links it to /dev/null.
fn mask_link(name: &str) -> String {
    format!("/etc/systemd/system/{}", unit(name))
}

/// Whether the unit is masked (its link in /etc/systemd/system points to
/// /dev/null): read off the file, so it is the same under either init.
fn masked(host: &HostRead, name: &str) -> Result<bool, ModuleError> {
    Ok(host.read_link(&mask_link(name))?.as_deref() == Some("/dev/null"))
}

/// Masks or unmasks: `systemctl mask`/`unmask` under systemd (which also
/// reloads the manager); otherwise (a root that is not booted, sysvinit)
/// the link itself, which is all masking is.
fn set_masked(host: &Host, init: Init, name: &str, to: bool) -> Result<(), ModuleError> {
    match (init, to) {
        (Init::Systemd, true) => host.run(&["systemctl", "mask", "--", name]).map(drop),
        (Init::Systemd, false) => host.run(&["systemctl", "unmask", "--", name]).map(drop),
        (Init::Sysv, true) => {
            let link = mask_link(name);
            if let Some(m) = host.lstat(&link)? {
                if !m.is_symlink {
                    return Err(ModuleError::Invalid(format!(
                        "{link} is a unit file, not a link; masking would replace it (remove it first)"
                    )));
                }
            }
            host.create_dir_all("/etc/systemd/system")?;
            host.symlink(&link, "/dev/null")
        }
        (Init::Sysv, false) => {
            if masked(host, name)? {
                host.remove_file(&mask_link(name))?;
            }
            Ok(())
        }
    }
}

/// A systemd unit's full name: `NAME.service` unless NAME has a suffix.
fn unit(name: &str) -> String {
    if name.contains('.') {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

fn init_script(name: &str) -> String {
    format!("/etc/init.d/{name}")
}

/// `S01name` in /etc/rcN.d starts `name` in runlevel N.
fn sysv_start_link(entry: &str, name: &str) -> bool {
    entry
        .strip_prefix('S')
        .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
        == Some(name)
}

impl Module for Service {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = ServiceChange;

    /// From the facts' unit inventory, on a host whose facts were gathered
    /// under systemd (they then carry each unit's active state): whether
    /// the unit exists, is active, starts at boot. Anything else (sysvinit,
    /// a unit whose state was not read) is unknown until apply.
    fn observe_facts(name: &str, d: &Desired, facts: &cfgm_core::facts::Facts) -> Option<Observed> {
        if !facts.services.iter().any(|s| s.active.is_some()) {
            return None;
        }
        let unit = unit(name);
        let Some(s) = facts.services.iter().find(|s| s.name == unit) else {
            return Some(Observed {
                provider: "systemd".into(),
                ..Observed::default()
            });
        };
        if d.enabled == Some(true) && s.enabled == "static" {
            // observe fails for this (a static unit cannot be enabled):
            // the plan cannot promise a change.
            return None;
        }
        Some(Observed {
            provider: "systemd".into(),
            exists: true,
            masked: s.enabled == "masked",
            running: s.active.as_deref() == Some("active"),
            enabled: matches!(
                s.enabled.as_str(),
                "enabled" | "enabled-runtime" | "alias" | "indirect"
            ),
        })
    }

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        ctx: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        let init = Init::of(host);
        // A service asked to run or be enabled that does not exist fails
        // here, so a dry run sees it (apply says the same) — unless a
        // package it comes after (its own name's, or one it requires) is
        // declared to bring it.
        let wanted = d.running == Some(true) || d.enabled == Some(true);
        if wanted
            && !ctx.declares("pkg", name)
            && !ctx.comes_after("service", name, &["pkg"])
            && !init.exists(host, name)?
        {
            return Err(init.missing(name));
        }
        let provider = match init {
            Init::Systemd => "systemd",
            Init::Sysv => "sysvinit",
        }
        .to_string();
        let masked = if d.masked.is_some() {
            masked(host, name)?
        } else {
            false
        };
        if !init.exists(host, name)? {
            return Ok(Observed {
                provider,
                masked,
                ..Observed::default()
            });
        }
        Ok(Observed {
            provider,
            exists: true,
            running: init.running(host, name)?,
            enabled: if masked {
                false
            } else {
                init.enabled(host, name, d.enabled)?
            },
            masked,
        })
    }

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<ServiceChange> {
        let mut out = Vec::new();
        // Unmasked before it is started or enabled.
        if d.masked == Some(false) && o.masked {
            out.push(ServiceChange::Masked {
                from: true,
                to: false,
            });
        }
        if let Some(r) = d.running {
            if r != o.running {
                out.push(ServiceChange::Running {
                    from: o.running,
                    to: r,
                });
            }
        }
        if let Some(e) = d.enabled {
            if e != o.enabled {
                out.push(ServiceChange::Enabled {
                    from: o.enabled,
                    to: e,
                });
            }
        }
        // Masked after it is stopped.
        if d.masked == Some(true) && !o.masked {
            out.push(ServiceChange::Masked {
                from: false,
                to: true,
            });
        }
        out
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        _: &Desired,
        changes: &[ServiceChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        let init = Init::of(host);
        // A unit is masked or unmasked whether it exists or not.
        let only_mask = changes
            .iter()
            .all(|c| matches!(c, ServiceChange::Masked { .. }));
        if !only_mask && !init.exists(host, name)? {
            return Err(init.missing(name));
        }
        for c in changes {
            let action = match c {
                ServiceChange::Enabled { to: true, .. } => "enable",
                ServiceChange::Enabled { to: false, .. } => "disable",
                ServiceChange::Running { to: true, .. } => "start",
                ServiceChange::Running { to: false, .. } => "stop",
                ServiceChange::Masked { to, .. } => {
                    set_masked(host, init, name, *to)?;
                    continue;
                }
            };
            init.act(host, name, action)?;
        }
        Ok(())
    }

    /// Restarts (or reloads) a service that runs or is meant to; a service
    /// meant to be stopped stays stopped.
    fn refresh(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        _: &RunCtx,
    ) -> Result<bool, ModuleError> {
        let init = Init::of(host);
        if !init.exists(host, name)? {
            return Err(init.missing(name));
        }
        let due = match d.running {
            Some(r) => r,
            None => init.running(host, name)?,
        };
        if due {
            let action = if d.reload == Some(true) {
                "reload"
            } else {
                "restart"
            };
            init.act(host, name, action)?;
        }
        Ok(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::diff_table;
    use serde_json::json;

    #[test]
    fn start_links() {
        assert!(sysv_start_link("S01nginx", "nginx"));
        assert!(sysv_start_link("S20nginx", "nginx"));
        assert!(!sysv_start_link("K01nginx", "nginx"));
        assert!(!sysv_start_link("S01nginx-debug", "nginx"));
        assert!(!sysv_start_link("S01ssh", "sshd"));
    }

    /// Only the attributes given are managed; `reload` is no state.
    #[test]
    fn diff() {
        let o = |running: bool, enabled: bool| {
            json!({"provider": "sysvinit", "exists": true, "running": running, "enabled": enabled})
        };
        diff_table(
            "service",
            &[
                ("s", json!({"reload": true}), o(true, false), &[]),
                (
                    "s",
                    json!({"running": false, "enabled": true}),
                    o(true, false),
                    &["running: true → false", "enabled: false → true"],
                ),
                ("s", json!({"running": true}), o(true, false), &[]),
                (
                    "s",
                    json!({"enabled": false}),
                    o(false, true),
                    &["enabled: true → false"],
                ),
                // Stopped before it is masked; unmasked before it starts.
                (
                    "s",
                    json!({"running": false, "masked": true}),
                    o(true, false),
                    &["running: true → false", "masked: false → true"],
                ),
                (
                    "s",
                    json!({"running": true, "masked": false}),
                    json!({"provider": "systemd", "exists": true, "running": false, "enabled": false, "masked": true}),
                    &["masked: true → false", "running: false → true"],
                ),
                // Not managed unless given.
                (
                    "s",
                    json!({"running": false}),
                    json!({"provider": "systemd", "exists": true, "running": false, "enabled": false, "masked": true}),
                    &[],
                ),
                // A service that does not exist is stopped and disabled.
                (
                    "s",
                    json!({"running": true}),
                    json!({"provider": "systemd", "exists": false, "running": false, "enabled": false}),
                    &["running: false → true"],
                ),
            ],
        );
    }
}
