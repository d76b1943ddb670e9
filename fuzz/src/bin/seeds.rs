//! Writes fuzzing seeds from a built ramdisk:
//! `seeds RAMDISK OBJECT_DIR RAMDISK_DIR MAX_BYTES` puts each signed object
//! of at most MAX_BYTES into OBJECT_DIR (named after the extension), and a
//! small ramdisk of those objects (signatures kept) into RAMDISK_DIR.

use std::path::PathBuf;

use spindle_package::{NewEntry, Ramdisk, RamdiskWriter};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ramdisk, objects, ramdisks, max] = args.as_slice() else {
        eprintln!("usage: seeds RAMDISK OBJECT_DIR RAMDISK_DIR MAX_BYTES");
        std::process::exit(2);
    };
    let max: usize = max.parse().expect("MAX_BYTES is a number");
    let bytes = std::fs::read(ramdisk).expect("read the ramdisk");
    let ramdisk = Ramdisk::parse(&bytes).expect("a well-formed ramdisk");
    std::fs::create_dir_all(objects).expect("create OBJECT_DIR");
    std::fs::create_dir_all(ramdisks).expect("create RAMDISK_DIR");
    let mut small = RamdiskWriter::new();
    for entry in ramdisk.entries().iter().filter(|e| e.object.len() <= max) {
        let path = PathBuf::from(objects).join(entry.name);
        std::fs::write(&path, entry.object).expect("write a seed");
        println!("{} ({} bytes)", path.display(), entry.object.len());
        small.add(NewEntry {
            name: entry.name,
            version: entry.version,
            kind: entry.kind,
            autoload: entry.autoload,
            object: entry.object.to_vec(),
            digest: entry.digest,
            signature: entry.signature,
        });
    }
    let path = PathBuf::from(ramdisks).join("small-ramdisk");
    let small = small.finish();
    println!("{} ({} bytes)", path.display(), small.len());
    std::fs::write(path, small).expect("write the ramdisk seed");
}
