//! `sysctl`: a kernel parameter, live (/proc/sys) and persisted in
//! /etc/sysctl.d/90-cfgm-KEY.conf.
//!
//! The live value is managed only where the host's /proc/sys is reachable
//! (the root is "/", or ROOT/proc/sys exists); values compare with their
//! whitespace normalised ("10240\t65000" equals "10240 65000"), booleans
//! as 1/0. Without /proc/sys in the root nothing says whether its kernel
//! has the key, so the resource fails ("could not check") rather than
//! persist a file for a key that may not exist; `persist = false` (removing
//! the file) still works there. `persist = false` removes cfgm's own file for the key; other
//! files in /etc/sysctl.d are never touched.

use cfgm_core::schema::{no_auto_deps, AttrSpec, AttrType, Attrs, KindSpec, Problem};

pub static SPEC: KindSpec = KindSpec {
    kind: "sysctl",
    doc: "A kernel parameter: set live and persisted in /etc/sysctl.d/.",
    attrs: &[
        AttrSpec::req(
            "value",
            AttrType::Scalar,
            "the value, e.g. 1 or \"4096 87380 6291456\"",
        ),
        AttrSpec::opt(
            "persist",
            AttrType::Bool,
            "also write /etc/sysctl.d/ (default true)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps: no_auto_deps,
    claims: cfgm_core::schema::no_claims,
};

/// The key becomes a path under /proc/sys and a file name; the value a
/// line of that file: one line, no control characters.
fn check(name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    if !valid {
        out.push(Problem::resource(format!(
            "`{name}` is not a sysctl key (e.g. net.core.somaxconn)"
        )));
    }
    if let Some(serde_json::Value::String(v)) = attrs.get("value") {
        if v.chars().any(|c| c.is_control() && c != '\t') {
            out.push(Problem::attr(
                "value",
                "a value is one line (no newline or control characters)",
            ));
        }
    }
    out
}

// ---- behaviour -----------------------------------------------------------

use crate::host::{Host, HostRead};
use crate::module::{KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Sysctl>();

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    pub value: Value,
    #[serde(default)]
    pub persist: Option<bool>,
}

impl Desired {
    /// The value as the kernel prints it: booleans as 1/0, whitespace
    /// between fields normalised to one space.
    fn value(&self) -> String {
        let s = match &self.value {
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        normalise(&s)
    }

    fn persist(&self) -> bool {
        self.persist != Some(false)
    }
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `net.core.somaxconn` → `/proc/sys/net/core/somaxconn` (a key written
/// with slashes is taken as is).
fn proc_path(key: &str) -> String {
    if key.contains('/') {
        format!("/proc/sys/{}", key.trim_start_matches('/'))
    } else {
        format!("/proc/sys/{}", key.replace('.', "/"))
    }
}

/// cfgm's own file for the key in /etc/sysctl.d/.
pub fn conf_path(key: &str) -> String {
    format!("/etc/sysctl.d/90-cfgm-{}.conf", key.replace('/', "."))
}

fn conf_content(key: &str, value: &str) -> String {
    format!("{key} = {value}\n")
}

/// The live value (when the host's /proc/sys is there to read) and cfgm's
/// persisted file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    /// Whether the live value is managed here: the root is "/" or ROOT/proc/sys exists.
    pub live_managed: bool,
    /// The live value, whitespace normalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
    /// The content of /etc/sysctl.d/90-cfgm-KEY.conf, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persisted: Option<String>,
}

#[derive(Default)]
pub struct Sysctl;

/// How a kernel parameter differs.
#[derive(Clone, Debug, PartialEq)]
pub enum SysctlChange {
    /// The live value (whitespace normalised).
    Value { from: Option<String>, to: String },
    /// cfgm's file in /etc/sysctl.d: its line, or none (no file).
    Persist {
        from: Option<String>,
        to: Option<String>,
    },
}

impl KindChange for SysctlChange {
    fn show(&self) -> Change {
        match self {
            SysctlChange::Value { from, to } => Change::new("value", from.clone(), to.as_str()),
            SysctlChange::Persist { from, to } => {
                let line = |s: &Option<String>| s.as_deref().map(str::trim_end).map(str::to_string);
                Change::new("persist", line(from), line(to))
            }
        }
    }
}

fn live_managed(host: &HostRead) -> bool {
    !host.is_chroot() || host.is_dir("/proc/sys")
}

impl Module for Sysctl {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = SysctlChange;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        _: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        let managed = live_managed(host);
        if !managed && d.persist() {
            // Persisting a key no kernel has would succeed and mean
            // nothing: without the root's /proc/sys, nothing is written.
            return Err(ModuleError::Invalid(format!(
                "could not check kernel parameter {name}: the root has no /proc/sys \
                 (nothing persisted; mount proc in the root to set it)"
            )));
        }
        let live = if managed {
            let p = proc_path(name);
            let bytes = host.read(&p)?.ok_or_else(|| {
                ModuleError::Invalid(format!("no kernel parameter {name} (no {p})"))
            })?;
            Some(normalise(&String::from_utf8_lossy(&bytes)))
        } else {
            None
        };
        let persisted = host
            .read(&conf_path(name))?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(Observed {
            live_managed: managed,
            live,
            persisted,
        })
    }

    fn diff(name: &str, d: &Desired, o: &Observed) -> Vec<SysctlChange> {
        let want = d.value();
        let mut out = Vec::new();
        if o.live_managed && o.live.as_deref() != Some(want.as_str()) {
            out.push(SysctlChange::Value {
                from: o.live.clone(),
                to: want.clone(),
            });
        }
        let file = if d.persist() {
            Some(conf_content(name, &want))
        } else {
            None
        };
        if o.persisted != file {
            out.push(SysctlChange::Persist {
                from: o.persisted.clone(),
                to: file,
            });
        }
        out
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        _: &Desired,
        changes: &[SysctlChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        for c in changes {
            match c {
                SysctlChange::Value { to, .. } => {
                    let p = proc_path(name);
                    host.write_in_place(&p, format!("{to}\n").as_bytes())?
                }
                SysctlChange::Persist { to: Some(file), .. } => {
                    host.write_atomic(&conf_path(name), file.as_bytes(), 0o644, 0, 0)?
                }
                SysctlChange::Persist { to: None, .. } => host.remove_file(&conf_path(name))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::diff_table;
    use serde_json::json;

    fn d(v: Value, persist: Option<bool>) -> Desired {
        Desired { value: v, persist }
    }

    #[test]
    fn values_compare_as_the_kernel_prints_them() {
        assert_eq!(d(Value::Bool(true), None).value(), "1");
        assert_eq!(d(Value::from(1024), None).value(), "1024");
        assert_eq!(
            d(Value::from(" 10240\t 65000 "), None).value(),
            "10240 65000"
        );
        assert_eq!(
            proc_path("net.core.somaxconn"),
            "/proc/sys/net/core/somaxconn"
        );
        assert_eq!(
            proc_path("net/ipv4/conf/eth0.100/rp_filter"),
            "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"
        );
    }

    /// Values compare with whitespace normalised; the live value only
    /// where /proc/sys is in reach; `persist = false` removes cfgm's file.
    #[test]
    fn diff() {
        let o = json!({
            "live_managed": true, "live": "10240 65000", "persisted": "k = 10240 65000\n",
        });
        diff_table(
            "sysctl",
            &[
                ("k", json!({"value": "10240    65000"}), o.clone(), &[]),
                (
                    "k",
                    json!({"value": "10240 65000", "persist": false}),
                    o.clone(),
                    &[r#"persist: "k = 10240 65000" → null"#],
                ),
                (
                    "k",
                    json!({"value": "1024 65000"}),
                    o,
                    &[
                        r#"value: "10240 65000" → "1024 65000""#,
                        r#"persist: "k = 10240 65000" → "k = 1024 65000""#,
                    ],
                ),
                (
                    "k",
                    json!({"value": true}),
                    json!({"live_managed": true, "live": "0"}),
                    &[r#"value: "0" → "1""#, r#"persist: null → "k = 1""#],
                ),
                // The live value is not managed when /proc/sys is out of reach.
                (
                    "k",
                    json!({"value": 1}),
                    json!({"live_managed": false}),
                    &[r#"persist: null → "k = 1""#],
                ),
            ],
        );
    }
}
