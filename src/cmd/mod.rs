//! One module per subcommand: its arguments and a `run` that is glue over the engine.

pub mod generate;
pub mod mine;
mod table;
