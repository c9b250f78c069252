//! One module per subcommand: its arguments and a `run` that is glue over the engine.

pub mod generate;
pub mod library;
pub mod mine;
pub mod suggest;
mod table;
