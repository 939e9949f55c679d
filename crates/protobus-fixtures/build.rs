fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    for version in ["v1", "v2"] {
        protobus_build::configure()
            .out_dir(out.join(version))
            .compile(format!("proto/{version}"))?;
    }
    // The golden contract of protobus-build's snapshot test: its code must compile too.
    protobus_build::configure()
        .out_dir(out.join("golden"))
        .compile("../protobus-build/tests/fixtures/golden")?;
    Ok(())
}
