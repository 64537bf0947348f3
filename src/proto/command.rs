//! TODO: command
