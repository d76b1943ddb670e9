//! The stages of a load that need no kernel: verify → inspect (parse and
//! descriptor) → link (plan, relocate, place, entry points). Each returns a
//! value that only it can make, so no stage can run on input the previous
//! one did not accept; [`crate::Loader::load`] strings them together with
//! resolution, mapping and `init`.

use domains::{Domain, Limits, LinkOptions, LinkPlan, LinkedImage, Object, SegmentKind};
use spindle_sdk::{ExtensionDescriptor, RawDescriptor};

use crate::catalogue::CatalogueEntry;
use crate::error::LoadError;
use crate::platform::EntryPoints;

/// An object whose signature verified: the only input [`inspect`] takes.
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a> {
    name: &'a str,
    object: &'a [u8],
}

impl<'a> Verified<'a> {
    /// The name the signature covers.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The object's bytes.
    pub fn object(&self) -> &'a [u8] {
        self.object
    }

    /// Skips the signature check. Exists only in fuzzing builds (cargo-fuzz
    /// sets `--cfg fuzzing`), so that mutated objects reach the parser.
    #[cfg(fuzzing)]
    pub fn assume_verified(name: &'a str, object: &'a [u8]) -> Self {
        Self { name, object }
    }
}

/// Stage 1: the signature, before anything else is read.
pub fn verify<'a>(
    entry: &'a CatalogueEntry,
    public_key: &[u8; 32],
) -> Result<Verified<'a>, LoadError> {
    entry.verify(public_key).map_err(LoadError::Signature)?;
    Ok(Verified {
        name: &entry.name,
        object: entry.object(),
    })
}

/// A parsed, validated object and its checked descriptor.
#[derive(Debug)]
pub struct Inspected<'a> {
    /// The object.
    pub object: Object<'a>,
    /// Its descriptor, read from the unlinked `.spindle_ext` section.
    pub descriptor: RawDescriptor,
}

/// Stage 2: parses and validates the ELF object, then reads the descriptor
/// from the *unlinked* descriptor section and checks that it names the
/// signed name and that every interface fingerprint is the kernel's
/// (`interfaces`).
pub fn inspect<'a>(
    verified: Verified<'a>,
    limits: &Limits,
    interfaces: &[(&str, u64)],
) -> Result<Inspected<'a>, LoadError> {
    let object = Object::parse(verified.object, limits).map_err(LoadError::Object)?;
    let bytes = object
        .section_bytes(spindle_sdk::DESCRIPTOR_SECTION)
        .ok_or(LoadError::MissingDescriptor)?;
    let descriptor = RawDescriptor::parse(bytes).map_err(LoadError::Descriptor)?;
    if let Some((interface, found, expected)) = descriptor.mismatch(interfaces) {
        return Err(LoadError::Fingerprint {
            interface,
            found,
            expected,
        });
    }
    if descriptor.name != verified.name {
        return Err(LoadError::NameMismatch {
            manifest: verified.name.into(),
            descriptor: descriptor.name,
        });
    }
    Ok(Inspected { object, descriptor })
}

/// Stage 3's layout: sizes, GOT and stubs (before any address is chosen).
pub fn plan<'o, 'a>(object: &'o Object<'a>) -> Result<LinkPlan<'o, 'a>, LoadError> {
    object
        .plan(&LinkOptions::default())
        .map_err(LoadError::Link)
}

/// A linked image and its checked entry points.
#[derive(Debug)]
pub struct Linked {
    /// The relocated segments.
    pub image: LinkedImage,
    /// `init` and `exit`, checked to lie in the text segment.
    pub entry: EntryPoints,
}

/// Stage 3: links the planned object for the contiguous range starting at
/// `base` against its resolved `domain`, gives the domain's exports their
/// addresses, and checks the entry points — all before anything is mapped.
pub fn link(
    plan: &LinkPlan<'_, '_>,
    base: u64,
    page: u64,
    domain: &mut Domain,
) -> Result<Linked, LoadError> {
    let bases = plan.contiguous_bases(base, page).map_err(LoadError::Link)?;
    let image = plan.link(bases, domain).map_err(LoadError::Link)?;
    domain.place(&image).map_err(LoadError::Link)?;
    let entry = entry_points(&image)?;
    Ok(Linked { image, entry })
}

/// Reads the relocated `init`/`exit` addresses from the linked descriptor
/// and checks that both lie in the image's text segment.
pub fn entry_points(image: &LinkedImage) -> Result<EntryPoints, LoadError> {
    let descriptor = image
        .require_symbol(spindle_sdk::DESCRIPTOR_SYMBOL)
        .map_err(|_| LoadError::MissingDescriptor)?;
    let text = image.segment(SegmentKind::Text).range();
    let read = |offset: usize, which: &'static str| -> Result<u64, LoadError> {
        let address = descriptor
            .checked_add(offset as u64)
            .ok_or(LoadError::BadEntryPoint {
                which,
                address: descriptor,
            })
            .and_then(|at| image.read_u64(at).map_err(LoadError::Link))?;
        if text.contains(&address) {
            Ok(address)
        } else {
            Err(LoadError::BadEntryPoint { which, address })
        }
    };
    let init = read(ExtensionDescriptor::INIT_OFFSET, "init")?;
    let exit = read(ExtensionDescriptor::EXIT_OFFSET, "exit")?;
    Ok(EntryPoints::new(init, exit, text))
}
