//! What the kernel does with a pushed extension: check it was built
//! against this kernel, verify it like any other object, add it to the
//! catalogue and load it — replacing a loaded extension of the same name
//! only when asked — or refuse and leave everything as it was.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use loader::{CatalogueEntry, LoadReport, ObjectBytes, Origin};
use spindle_package::push::{Answer, PushRequest, short_hex};
use spindle_package::{Digest256, Kind};

use crate::boot_data;

/// The running kernel's build id (computed once, on the first `Hello`).
pub fn build_id() -> Digest256 {
    static ID: spin::Once<Digest256> = spin::Once::new();
    *ID.call_once(|| {
        spindle_package::push::build_id(boot_data::kernel_elf().bytes)
            .expect("the kernel's own symbol table is valid (the loader read it at boot)")
    })
}

/// Why a push was refused.
enum Refusal {
    OtherBuild { theirs: Digest256, ours: Digest256 },
    LoaderBusy(Option<String>),
    Verify(spindle_package::VerifyError),
    Loaded(String),
    InUse { name: String, users: Vec<String> },
    Unload(loader::UnloadError),
    Catalogue(loader::CatalogueError),
    Load(Box<loader::LoadError>, Option<String>),
}

impl Refusal {
    fn text(&self) -> String {
        match self {
            Self::OtherBuild { theirs, ours } => format!(
                "object was linked against kernel build {}, but this kernel is build {}: \
                 rebuild and restart the kernel (`cargo xtask run`), then push again",
                short_hex(theirs, 8),
                short_hex(ours, 8)
            ),
            Self::LoaderBusy(Some(what)) => {
                format!("a load is in progress ({what}); push again when it has finished")
            }
            Self::LoaderBusy(None) => {
                String::from("the loader is busy; push again when it has finished")
            }
            Self::Verify(e) => format!("verify: {e}"),
            Self::Loaded(name) => {
                format!("'{name}' is loaded (push with --replace to unload and replace it)")
            }
            Self::InUse { name, users } => format!(
                "cannot replace '{name}': {} import(s) from it; unload {} first",
                users.join(", "),
                if users.len() == 1 { "it" } else { "them" }
            ),
            Self::Unload(e) => format!("cannot unload the old version: {e}"),
            Self::Catalogue(e) => format!("{e}"),
            Self::Load(e, restored) => match restored {
                Some(note) => format!("load failed: {e}; {note}"),
                None => format!("load failed: {e}"),
            },
        }
    }
}

/// Handles one push: `bytes` is the frame's payload size, `receive_us`
/// how long the frame took to arrive.
pub fn handle(push: PushRequest, bytes: usize, receive_us: u64) -> Answer {
    let name = push.name.clone();
    match install(push) {
        Ok((report, replaced)) => Answer {
            loaded: true,
            text: format!(
                "{}loaded {name}: received {} KiB in {} ms; load {} ms ({})",
                if replaced { "replaced and " } else { "" },
                bytes / 1024,
                receive_us / 1000,
                cycles_ms(report.cycles.total()),
                stage_times(&report)
            ),
        },
        Err(refusal) => Answer {
            loaded: false,
            text: format!("{name}: {}", refusal.text()),
        },
    }
}

fn cycles_ms(cycles: u64) -> String {
    let hz = crate::time::tsc_hz().max(1);
    let us = u128::from(cycles) * 1_000_000 / u128::from(hz);
    format!("{}.{}", us / 1000, (us % 1000) / 100)
}

fn stage_times(report: &LoadReport) -> String {
    let c = &report.cycles;
    format!(
        "verify {}, parse {}, resolve {}, link {}, map {}, init {} ms",
        cycles_ms(c.verify),
        cycles_ms(c.parse),
        cycles_ms(c.resolve),
        cycles_ms(c.link),
        cycles_ms(c.map),
        cycles_ms(c.init)
    )
}

/// Checks, adds and loads; on any refusal the catalogue and the loaded
/// extensions are as they were. Returns the load report and whether an
/// older version was replaced.
fn install(push: PushRequest) -> Result<(LoadReport, bool), Refusal> {
    let ours = build_id();
    if push.build_id != ours {
        return Err(Refusal::OtherBuild {
            theirs: push.build_id,
            ours,
        });
    }
    let entry = CatalogueEntry {
        name: push.name,
        version: push.version,
        kind: Kind::Extension,
        autoload: false,
        origin: Origin::Pushed,
        object: ObjectBytes::Owned(push.object),
        digest: push.digest,
        signature: push.signature,
    };
    let replace = push.replace;
    crate::loader::try_with(|loader| {
        entry
            .verify(crate::loader::public_key())
            .map_err(Refusal::Verify)?;
        let name = entry.name.clone();
        let was_loaded = loader.is_loaded(&name);
        if was_loaded && !replace {
            return Err(Refusal::Loaded(name));
        }
        // An entry that is not loaded (the ramdisk's build of the same
        // extension, an earlier push) is simply superseded.
        let exists = loader.catalogue().get(&name).is_some();
        if was_loaded {
            let users = loader.dependents(&name);
            if !users.is_empty() {
                return Err(Refusal::InUse { name, users });
            }
            loader.unload(&name).map_err(Refusal::Unload)?;
        }
        let old = loader.push(entry, exists).map_err(Refusal::Catalogue)?;
        match loader.load(&name) {
            Ok(report) => Ok((report, was_loaded)),
            Err(error) => {
                // Put back what was there: the old entry (loaded again if
                // it was loaded), or nothing.
                let note = match old {
                    Some(old) => {
                        let _ = loader.push(old, true);
                        if was_loaded {
                            Some(match loader.load(&name) {
                                Ok(_) => String::from("the previous version is loaded again"),
                                Err(e) => format!("reloading the previous version failed: {e}"),
                            })
                        } else {
                            Some(String::from("the previous version stays in the catalogue"))
                        }
                    }
                    None => {
                        let _ = loader.withdraw(&name);
                        None
                    }
                };
                Err(Refusal::Load(Box::new(error), note))
            }
        }
    })
    .unwrap_or_else(|busy| Err(Refusal::LoaderBusy(busy)))
}
