//! Tests of the targets' assembly on fake run directories, of the plan and of the outputs.

mod attacks;
mod calibration;
#[cfg(unix)]
mod exec;
mod generative;
mod ood;
mod plan;
mod results;
mod samples;
#[cfg(unix)]
mod smoke;
