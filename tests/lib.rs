//! One integration test binary (one link of polars), with a module per area.

mod agents;
mod common;
mod generate;
mod hardening;
mod library;
mod load;
mod mcp;
mod mine;
mod notebook;
mod oracle;
mod outcomes;
mod real_data;
mod report;
mod run;
mod savings;
mod serve;
mod spark;
mod structure;
mod suggest;
mod workflows;
