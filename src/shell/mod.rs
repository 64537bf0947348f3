//! TODO: shell
