//! The command line: one file per command, each with its argument struct and its `run`, and
//! the pieces they share (progress bars, input scanning, printing problems).

pub mod build;
pub mod finalize;
pub mod manifest;
pub mod plan;
pub mod preview;
pub mod query;
pub mod sample;
pub mod shared;
pub mod stac;
pub mod status;
pub mod synth;
pub mod verify;
