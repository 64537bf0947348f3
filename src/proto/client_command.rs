//! TODO: client_command
