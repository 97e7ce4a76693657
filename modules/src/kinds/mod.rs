//! One module per resource kind.

pub mod cmd;
pub mod directory;
pub mod file;
pub mod group;
pub mod line;
pub mod pkg;
pub mod service;
pub mod symlink;
pub mod sysctl;
pub mod user;
