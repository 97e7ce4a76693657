//! cfgm-core (being written).
