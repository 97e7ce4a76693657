//! cfgm-modules (being written).
