//! `service`: a system service running or stopped, enabled or disabled
//! (systemd when it is PID 1, else sysvinit); a refresh restarts it, or
//! reloads it when `reload = true`.

use cfgm_core::schema::{no_check, AttrSpec, AttrType, Attrs, AutoDep, KindSpec};
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
    ],
    name_is_path: false,
    secret_attrs: &[],
    check: no_check,
    auto_deps,
};

/// A service comes after the package of the same name, when both are declared.
fn auto_deps(name: &str, _: &Attrs) -> Vec<AutoDep> {
    vec![AutoDep {
        candidates: vec![ResourceId::new("pkg", name)],
    }]
}
