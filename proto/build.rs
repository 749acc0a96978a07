//! Generates the gRPC code. `protoc` comes from `protoc-bin-vendored`, so a
//! fresh machine needs nothing but cargo.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Tells prost-build which protoc to run (build scripts are single-threaded).
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=failover.proto");
    tonic_prost_build::configure().compile_protos(&["failover.proto"], &["."])?;
    Ok(())
}
