//! One module per subcommand.
pub mod dev;
pub mod replay;
pub mod up;
