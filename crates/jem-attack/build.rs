fn main() {
    jem_build::link_libtorch();
}
