//! TODO: code
