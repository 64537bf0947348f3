//! TODO: mutf7
