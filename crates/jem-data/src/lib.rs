#![doc = include_str!("../README.md")]

mod bytes;
pub mod celeba;
pub mod cifar;
pub mod config;
pub mod csv;
pub mod custom;
pub mod dataset;
pub mod decode;
pub mod error;
pub mod folder;
pub mod grid;
pub mod idx;
pub mod load;
pub mod mat;
pub mod npy;
pub mod ood;
pub mod preprocess;
pub mod resolve;
pub mod split;
pub mod svhn;

pub use bytes::MAX_DECOMPRESSED_BYTES;
pub use config::{CheckedDataConfig, DataConfig, ImageSize};
pub use custom::DataShape;
pub use dataset::{Dataset, RawImages};
pub use error::{DataError, Result};
pub use jem_params::InvalidParam;
pub use load::{load, load_from, load_raw_from, LoadOptions, Split};
pub use npy::{read_npy, write_npy, NpyArray, NpyData};
pub use resolve::{resolve_dataset_dir, DatasetKind, DATA_DIR_ENV};
