//! The input side: where tiles come from and how they are read. A [`TileSource`] catalogues
//! tiles and reads their files; the local tree is the first source, a tree in an object store the second, TESSERA's global
//! zone store (a Zarr hierarchy of UTM-zone groups) the third. Also the file formats
//! (`.npy`, GeoTIFF) and synthetic TESSERA trees for tests and benchmarks.

mod catalogue;
mod cf_time;
mod dataset;
pub mod geotiff;
mod landmasks;
mod local;
mod manifest;
pub mod npy;
mod remote;
mod source;
pub mod synth;
mod zone_axes;
mod zone_cache;
mod zones;

pub use catalogue::{
    Catalogue, InputTile, LANDMASK_DIR, ScalesLayout, ScanError, ScanOptions, TileProblem,
};
pub use dataset::{
    DEFAULT_VERSION, DatasetChoice, DatasetRequest, dataset_from_dir, default_variant,
    normalise_version,
};
pub use landmasks::{
    LANDMASKS_NAME, LandmaskRow, LandmasksError, parse_landmasks, read_landmasks_file,
    write_landmasks,
};
pub use local::LocalTree;
pub use manifest::{
    MANIFEST_NAME, ManifestError, ManifestRow, parse_manifest, read_manifest_file, write_manifest,
};
pub use remote::RemoteTree;
pub use source::{LANDMASK_TOLERANCE_M, TileSource, read_landmask_for, read_tile};
pub use zones::{ZoneStore, ZoneStoreError, zone_group_name};
