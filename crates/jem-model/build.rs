fn main() {
    jem_build::link_libtorch();
    jem_build::compile_cpp("jem_ops", &["csrc/jem_ops.cpp"]);
}
