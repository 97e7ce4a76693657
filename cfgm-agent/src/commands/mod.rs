//! One file per agent command: parse its arguments, call the library, render.

pub mod apply;
pub mod facts;
pub mod install;
pub mod progress;
pub mod run;
