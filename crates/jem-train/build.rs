//! Build script: links libtorch with an rpath (see jem-build).
fn main() {
    jem_build::link_libtorch();
}
