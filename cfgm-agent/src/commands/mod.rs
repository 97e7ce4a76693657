//! One file per agent command.

pub mod apply;
pub mod debts;
pub mod lock;
