//! Compiles the repository's proto/hark/v1/recognizer.proto into the gRPC server's types with
//! protox, a protobuf compiler in Rust, so building needs no `protoc`. The
//! encoded descriptors go to OUT_DIR too, for server reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let descriptors = protox::compile(["hark/v1/recognizer.proto"], ["../../proto"])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("hark_descriptor.bin"), descriptors.encode_to_vec())?;
    // Messages are read by the server's own codec: a request that does not
    // parse is the client's error (INVALID_ARGUMENT), not the server's.
    tonic_prost_build::configure().build_client(false).codec_path("crate::grpc::Codec").compile_fds(descriptors)?;
    Ok(())
}
