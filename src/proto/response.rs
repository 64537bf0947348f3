//! TODO: response
