//! The ramdisk as the boot image carries it: deflated.
//!
//! The BIOS loader reads the boot image through real-mode disk calls, which
//! under QEMU's TCG cost about 0.9 s per MiB; extension objects deflate to
//! about a fifth. So the image holds
//!
//! ```text
//! SPINDLE-RAMDISK-DEFLATED 1\n
//! inflated-bytes 10005456\n
//! <raw DEFLATE stream of the ramdisk>
//! ```
//!
//! and the kernel inflates it once at boot into memory of its own, then
//! parses it as a [`Ramdisk`](crate::Ramdisk). Nothing here is trusted:
//! every object keeps its own digest and signature, checked at load.

use alloc::format;
use alloc::vec::Vec;

use crate::FormatError;

/// First line of a deflated ramdisk.
pub const MAGIC: &str = "SPINDLE-RAMDISK-DEFLATED 1\n";

/// Largest ramdisk the kernel inflates: 256 MiB.
pub const MAX_INFLATED: usize = 256 << 20;

/// Deflates `ramdisk` (build side).
pub fn deflate(ramdisk: &[u8]) -> Vec<u8> {
    let stream = miniz_oxide::deflate::compress_to_vec(ramdisk, 6);
    let mut out = Vec::with_capacity(MAGIC.len() + 32 + stream.len());
    out.extend_from_slice(MAGIC.as_bytes());
    out.extend_from_slice(format!("inflated-bytes {}\n", ramdisk.len()).as_bytes());
    out.extend_from_slice(&stream);
    out
}

/// A deflated ramdisk's header, read but not yet inflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deflated<'a> {
    inflated_len: usize,
    stream: &'a [u8],
}

impl<'a> Deflated<'a> {
    /// Reads the header of `bytes`: `None` if they are not a deflated
    /// ramdisk (a plain one, say), an error if the header is malformed or
    /// announces more than [`MAX_INFLATED`].
    pub fn parse(bytes: &'a [u8]) -> Option<Result<Self, FormatError>> {
        let rest = bytes.strip_prefix(MAGIC.as_bytes())?;
        Some(Self::header(rest))
    }

    fn header(rest: &'a [u8]) -> Result<Self, FormatError> {
        let bad = |why: &str| FormatError::BadManifest(format!("deflated ramdisk: {why}"));
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no inflated-bytes line"))?;
        let inflated_len: usize = core::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|line| line.strip_prefix("inflated-bytes "))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("expected 'inflated-bytes N'"))?;
        if inflated_len > MAX_INFLATED {
            return Err(bad(&format!(
                "{inflated_len} bytes inflated is more than {MAX_INFLATED}"
            )));
        }
        Ok(Self {
            inflated_len,
            stream: &rest[end + 1..],
        })
    }

    /// The size of the DEFLATE stream.
    pub fn deflated_len(&self) -> usize {
        self.stream.len()
    }

    /// The size of the ramdisk once inflated.
    pub fn inflated_len(&self) -> usize {
        self.inflated_len
    }

    /// Inflates into `out`, which must be exactly [`Self::inflated_len`]
    /// bytes: an error if the stream is not DEFLATE data or does not
    /// inflate to exactly that many bytes.
    pub fn inflate_into(&self, out: &mut [u8]) -> Result<(), FormatError> {
        let bad = |why: &str| FormatError::BadManifest(format!("deflated ramdisk: {why}"));
        if out.len() != self.inflated_len {
            return Err(bad("the output buffer is not the announced size"));
        }
        let produced = miniz_oxide::inflate::decompress_slice_iter_to_slice(
            out,
            core::iter::once(self.stream),
            false,
            true,
        );
        match produced {
            Ok(n) if n == self.inflated_len => Ok(()),
            Ok(n) => Err(bad(&format!(
                "inflates to {n} bytes, not the announced {}",
                self.inflated_len
            ))),
            Err(miniz_oxide::inflate::TINFLStatus::HasMoreOutput) => Err(bad(&format!(
                "inflates to more than the announced {} bytes",
                self.inflated_len
            ))),
            Err(e) => Err(bad(&format!("not DEFLATE data ({e:?})"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|n| (n % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn a_deflated_ramdisk_inflates_to_the_original_bytes() {
        let original = sample();
        let deflated = deflate(&original);
        assert!(deflated.len() < original.len() / 4, "{}", deflated.len());
        let header = Deflated::parse(&deflated).unwrap().unwrap();
        assert_eq!(header.inflated_len(), original.len());
        let mut out = vec![0u8; header.inflated_len()];
        header.inflate_into(&mut out).unwrap();
        assert_eq!(out, original);
    }

    #[test]
    fn a_plain_ramdisk_is_not_a_deflated_one() {
        assert_eq!(Deflated::parse(crate::MAGIC.as_bytes()), None);
        assert_eq!(Deflated::parse(b""), None);
    }

    fn error(result: Result<(), FormatError>) -> alloc::string::String {
        match result {
            Err(FormatError::BadManifest(why)) => why,
            other => panic!("expected BadManifest, got {other:?}"),
        }
    }

    #[test]
    fn a_truncated_stream_is_an_error() {
        let deflated = deflate(&sample());
        let cut = &deflated[..deflated.len() / 2];
        let header = Deflated::parse(cut).unwrap().unwrap();
        let mut out = vec![0u8; header.inflated_len()];
        assert!(error(header.inflate_into(&mut out)).contains("not DEFLATE data"));
    }

    #[test]
    fn a_wrong_announced_size_is_an_error_either_way() {
        let original = sample();
        let stream = &deflate(&original)[MAGIC.len()..];
        let stream = &stream[stream.iter().position(|&b| b == b'\n').unwrap() + 1..];
        for announced in [original.len() - 1, original.len() + 1] {
            let mut bytes = Vec::from(MAGIC.as_bytes());
            bytes.extend_from_slice(format!("inflated-bytes {announced}\n").as_bytes());
            bytes.extend_from_slice(stream);
            let header = Deflated::parse(&bytes).unwrap().unwrap();
            let mut out = vec![0u8; announced];
            let why = error(header.inflate_into(&mut out));
            assert!(why.contains("announced"), "{why}");
        }
    }

    #[test]
    fn a_bad_header_is_an_error() {
        for header in [
            "inflated-bytes ten\n",
            "no newline",
            "inflated-bytes 999999999999\n",
        ] {
            let mut bytes = Vec::from(MAGIC.as_bytes());
            bytes.extend_from_slice(header.as_bytes());
            match Deflated::parse(&bytes) {
                Some(Err(FormatError::BadManifest(why))) => {
                    assert!(why.starts_with("deflated ramdisk: "), "{why}")
                }
                other => panic!("{header:?}: expected BadManifest, got {other:?}"),
            }
        }
    }
}
