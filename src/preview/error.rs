//! What can go wrong drawing a picture.

use std::path::PathBuf;

use crate::zarr::FormatError;

/// Errors of a picture; each names the array, chunk or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("reading {what}")]
    Read {
        what: String,
        #[source]
        source: Box<zarrs::array::ArrayError>,
    },
    #[error("{0}")]
    Empty(String),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {path} as PNG")]
    Encode {
        path: PathBuf,
        #[source]
        source: png::EncodingError,
    },
}

impl PreviewError {
    /// A read of `what` that failed.
    pub fn read(what: impl Into<String>) -> impl FnOnce(zarrs::array::ArrayError) -> PreviewError {
        move |source| PreviewError::Read {
            what: what.into(),
            source: Box::new(source),
        }
    }
}
