//! cfgm-core: the state language and its compiler.
//!
//! The pipeline, one module per step: [`tree`] loads a states tree
//! through a [`source::TreeSource`] (a directory read as a closed world),
//! [`render`] runs each state through minijinja keeping line origins,
//! [`parse`] turns rendered TOML into typed resources checked against the
//! kinds' [`schema`], [`compile`] builds one dependency DAG per host and
//! orders it, and [`catalog`] is the content-addressed result. [`engine`]
//! converges a catalog through the providers it is handed and [`report`]
//! says what happened. Problems are
//! [`diag::Diagnostic`]s, collected so one run reports them all.
//!
//! Architecture invariant: cfgm-core makes no OS calls beyond reading the
//! tree, and that only through `source`, confined to the tree root. It never writes files, runs commands or inspects the host it runs
//! on; everything that touches a host lives in `cfgm-modules`.

pub mod catalog;
pub mod compile;
pub mod diag;
pub mod engine;
pub mod exit;
pub mod facts;
pub mod fleet;
pub mod gitsource;
pub(crate) mod graph;
pub mod parse;
pub mod plan;
pub mod provider;
pub mod render;
pub mod report;
pub mod rollout;
pub mod schema;
pub mod select;
pub mod source;
pub mod tree;
pub mod unused;
pub mod version;

pub use catalog::{Catalog, CatalogId, DepKind, Resource, ResourceId};
pub use compile::{Compiler, Parts, Validation};
pub use diag::{Diagnostic, Sources, Span};
pub use plan::{Change, Mode};
pub use provider::{ModuleError, Provider, Providers};
pub use report::{Outcome, Report, RunStatus};
pub use schema::{KindSpec, Registry};
pub use select::Selector;
pub use source::{DirSource, TreeSource};
pub use tree::Tree;
