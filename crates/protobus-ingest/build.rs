//! Compiles the ingest API (`proto/protobus/ingest/v1/ingest.proto`) with
//! protox and generates its tonic server and client.
use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto/protobus/ingest");
    let descriptors = protox::compile(["protobus/ingest/v1/ingest.proto"], ["../../proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("ingest_descriptors.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        // Payloads as `Bytes`: decoded as slices of the request, not copied.
        .bytes(".protobus.ingest.v1.Event.binary")
        // Requests are looked at before they are decoded (event count).
        .codec_path("crate::codec::IngestCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
