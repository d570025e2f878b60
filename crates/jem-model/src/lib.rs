#![doc = include_str!("../README.md")]

pub mod config;
pub mod energy;
pub mod error;
pub mod io;
pub mod ops;
pub mod reference;
pub mod spectral;
pub mod torch_pickle;
pub mod wrn;

pub use config::{Activation, Norm, WrnConfig};
pub use energy::JointEnergyModel;
pub use error::{ModelError, Result};
pub use io::{load_safetensors, save_safetensors};
pub use jem_params::InvalidParam;
pub use ops::Precision;
pub use wrn::{parameter_count, variable_shapes, WideResNet};
