//! The build: every tile of a band placed into the outputs, in parallel, resumable, shared
//! among workers; what it reports and records; finalize, the steps after every worker; and the ceiling benchmark that measures what the hardware
//! allows.

mod band;
mod ceiling;
mod finalize;
mod overview_sink;
mod report;
mod resume;
mod share;
mod sink;
mod threads;

pub use band::{BuildError, BuildOptions, build_band};
pub use ceiling::{Ceiling, ceiling};
pub use finalize::{FinalizeReport, block_in_share, finalize_band, finalize_share, finalize_store};
pub use overview_sink::OverviewSink;
pub use report::{BuildReport, FailedTile, FailureRecord, NoDataTile, PhaseSeconds};
pub use share::{id_in_share, in_worker_share};
pub use sink::{BandArraysSink, BuiltCells, GatheredTile, ShardSink, SinkError, SinkFailure};
