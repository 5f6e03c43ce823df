//! Compiles proto/*.proto with the protoc shipped by protoc-bin-vendored, so building needs no
//! system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &["proto/flowmesh.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/flowmesh.proto");
    Ok(())
}
