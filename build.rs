fn main() -> Result<(), Box<dyn std::error::Error>> {
    protobus_build::configure().compile("proto")?;
    Ok(())
}
