//! Generates the gRPC code. `protoc` comes from `protoc-bin-vendored`, so a
//! fresh machine needs nothing but cargo.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY of intent: build scripts are single-threaded; this only tells
    // prost-build which compiler to run.
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=failover.proto");
    tonic_prost_build::configure().compile_protos(&["failover.proto"], &["."])?;
    Ok(())
}
