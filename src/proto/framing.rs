//! TODO: framing
