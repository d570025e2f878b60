//! Build script: links libtorch with an rpath and compiles the ATen shim (csrc/jem_ops.cpp).
fn main() {
    jem_build::link_libtorch();
    jem_build::compile_cpp("jem_ops", &["csrc/jem_ops.cpp", "csrc/jem_pickle.cpp"]);
}
