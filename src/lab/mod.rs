//! TODO: lab
