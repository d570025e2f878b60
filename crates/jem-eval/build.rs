//! Build script: links libtorch with an rpath (see jem-build).
fn main() {
    // Only the `torch` feature links libtorch; the metric math must build without it.
    if std::env::var_os("CARGO_FEATURE_TORCH").is_some() {
        jem_build::link_libtorch();
    }
}
