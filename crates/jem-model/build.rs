//! Build script: links libtorch with an rpath and compiles the ATen shim (csrc/jem_ops.cpp) and
//! the `torch.save` reader (csrc/jem_pickle.cpp, csrc/pickle_machine.cpp).
fn main() {
    jem_build::link_libtorch();
    println!("cargo:rerun-if-changed=csrc/pickle_value.h");
    jem_build::compile_cpp(
        "jem_ops",
        &[
            "csrc/jem_ops.cpp",
            "csrc/jem_pickle.cpp",
            "csrc/pickle_machine.cpp",
        ],
    );
}
