use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    for version in ["v1", "v2"] {
        protobus_build::configure()
            .out_dir(out.join(version))
            .compile(format!("proto/{version}"))?;
    }
    // The golden contract of protobus-build's snapshot test: its code must compile too.
    protobus_build::configure()
        .out_dir(out.join("golden"))
        .compile("../protobus-build/tests/fixtures/golden")?;
    // The project's contract plus the event types of `proto/returns`, as a
    // team would extend it: what an ingest service loads at run time.
    let extended = out.join("extended-proto");
    let _ = std::fs::remove_dir_all(&extended);
    for dir in ["../../proto", "proto/returns"] {
        println!("cargo:rerun-if-changed={dir}");
        copy_dir(Path::new(dir), &extended)?;
    }
    protobus_build::configure()
        .out_dir(out.join("extended"))
        .emit_rerun_if_changed(false)
        .compile(&extended)?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            println!("cargo:rerun-if-changed={}", entry.path().display());
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
