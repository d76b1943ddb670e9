//! The push channel's wire format: how `cargo xtask push` hands a signed
//! extension to the running kernel over a byte stream (the second serial
//! port), and how the kernel answers.
//!
//! # Frames
//!
//! Both directions use the same frame:
//!
//! ```text
//! "SPSH" | kind u8 | flags u8 | 0u16 | payload length u32 LE | payload | BLAKE3(header + payload)
//! ```
//!
//! The receiver ([`FrameDecoder`]) takes bytes as they arrive, refuses a
//! declared length above [`MAX_PAYLOAD`] before storing any payload,
//! checks the digest, and after any error resynchronises on the next magic.
//! A frame that stops arriving half way is abandoned by the receiver's
//! caller ([`FrameDecoder::abandon`]) after a silence.
//!
//! # Conversation
//!
//! The host sends [`FrameKind::Hello`]; the kernel answers
//! [`FrameKind::BuildId`] with its [`build_id`]. The host builds the
//! extension only against a kernel with that build id, then sends
//! [`FrameKind::Push`] with a [`PushRequest`]; the kernel answers
//! [`FrameKind::Answer`] with an [`Answer`]: loaded (with its timings) or
//! the exact refusal.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::Digest256;

/// First bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"SPSH";
/// Bytes before the payload.
pub const HEADER_LEN: usize = 12;
/// Bytes after the payload (the BLAKE3 digest of header and payload).
pub const TRAILER_LEN: usize = 32;
/// Largest payload the channel accepts: 4 MiB. A push of a bigger object
/// is refused from its header, before anything is stored.
pub const MAX_PAYLOAD: usize = 4 << 20;
/// [`FrameKind::Push`] flag: unload and replace an extension of that name.
pub const FLAG_REPLACE: u8 = 1;
/// Largest object a push may inflate to: 16 MiB.
pub const MAX_OBJECT: usize = 16 << 20;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Host → kernel: which build are you? (empty payload)
    Hello,
    /// Host → kernel: a [`PushRequest`].
    Push,
    /// Kernel → host: the kernel's [`build_id`] (32 bytes).
    BuildId,
    /// Kernel → host: an [`Answer`].
    Answer,
}

impl FrameKind {
    /// The byte on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::Hello => 1,
            Self::Push => 2,
            Self::BuildId => 0x81,
            Self::Answer => 0x82,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        [Self::Hello, Self::Push, Self::BuildId, Self::Answer]
            .into_iter()
            .find(|k| k.code() == code)
    }
}

/// One complete, checked frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What it carries.
    pub kind: FrameKind,
    /// Flags ([`FLAG_REPLACE`]).
    pub flags: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Encodes a frame.
pub fn encode_frame(kind: FrameKind, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
    out.extend_from_slice(&FRAME_MAGIC);
    out.push(kind.code());
    out.push(flags);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let digest: Digest256 = blake3::hash(&out).into();
    out.extend_from_slice(&digest);
    out
}

/// Why a frame was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Bytes that do not start a frame were skipped.
    NoMagic {
        /// How many.
        skipped: usize,
    },
    /// The header names a kind this side does not know.
    UnknownKind(u8),
    /// The declared payload is larger than [`MAX_PAYLOAD`].
    TooLarge {
        /// Declared length.
        declared: usize,
        /// The limit.
        max: usize,
    },
    /// The digest after the payload does not match its bytes.
    BadChecksum,
    /// The sender stopped half way.
    CutOff {
        /// Frame bytes received.
        received: usize,
        /// Frame bytes announced (header + payload + digest).
        expected: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMagic { skipped } => write!(f, "skipped {skipped} byte(s) that start no frame"),
            Self::UnknownKind(code) => write!(f, "unknown frame kind {code:#04x}"),
            Self::TooLarge { declared, max } => write!(
                f,
                "frame of {declared} bytes refused: the channel takes at most {max} bytes"
            ),
            Self::BadChecksum => f.write_str("corrupted frame: its BLAKE3 digest does not match"),
            Self::CutOff { received, expected } => write!(
                f,
                "push cut off: {received} of {expected} frame bytes arrived"
            ),
        }
    }
}

enum State {
    /// Looking for the magic; `matched` bytes of it seen, `skipped` junk.
    Magic { matched: usize, skipped: usize },
    /// Reading the rest of the header.
    Header {
        header: [u8; HEADER_LEN],
        have: usize,
    },
    /// Reading the payload.
    Payload {
        kind: FrameKind,
        flags: u8,
        payload: Vec<u8>,
        expected: usize,
    },
    /// Reading the digest.
    Trailer {
        kind: FrameKind,
        flags: u8,
        payload: Vec<u8>,
        digest: [u8; TRAILER_LEN],
        have: usize,
    },
}

/// Reassembles frames from a byte stream. See the [module docs](self).
pub struct FrameDecoder {
    state: State,
    hasher: blake3::Hasher,
    limit: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_PAYLOAD)
    }
}

impl FrameDecoder {
    /// A decoder refusing payloads above `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            state: State::Magic {
                matched: 0,
                skipped: 0,
            },
            hasher: blake3::Hasher::new(),
            limit,
        }
    }

    /// Frame bytes received of the frame in progress (0 between frames).
    pub fn received(&self) -> usize {
        match &self.state {
            State::Magic { matched, .. } => *matched,
            State::Header { have, .. } => *have,
            State::Payload { payload, .. } => HEADER_LEN + payload.len(),
            State::Trailer { payload, have, .. } => HEADER_LEN + payload.len() + have,
        }
    }

    /// Whether a frame has begun and not ended.
    pub fn in_progress(&self) -> bool {
        self.received() > 0
    }

    /// Gives up on the frame in progress (the sender went silent), freeing
    /// what it held; the error says how far it got.
    pub fn abandon(&mut self) -> Option<FrameError> {
        let expected = match &self.state {
            State::Payload { expected, .. } => HEADER_LEN + expected + TRAILER_LEN,
            State::Trailer { payload, .. } => HEADER_LEN + payload.len() + TRAILER_LEN,
            _ => HEADER_LEN,
        };
        let received = self.received();
        self.reset();
        (received > 0).then_some(FrameError::CutOff { received, expected })
    }

    fn reset(&mut self) {
        self.state = State::Magic {
            matched: 0,
            skipped: 0,
        };
        self.hasher.reset();
    }

    /// Takes bytes from the front of `input` until a frame ends (or fails)
    /// or `input` runs out. Returns how many bytes were used and the
    /// outcome, if one was reached.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<Result<Frame, FrameError>>) {
        let mut used = 0;
        while used < input.len() {
            let byte = input[used];
            used += 1;
            if let Some(outcome) = self.step(byte, &input[used..], &mut used) {
                return (used, Some(outcome));
            }
        }
        (used, None)
    }

    /// One byte (`rest` follows it in the input; whole payload chunks are
    /// taken from it at once, advancing `used`).
    fn step(
        &mut self,
        byte: u8,
        rest: &[u8],
        used: &mut usize,
    ) -> Option<Result<Frame, FrameError>> {
        match &mut self.state {
            State::Magic { matched, skipped } => {
                if byte == FRAME_MAGIC[*matched] {
                    *matched += 1;
                } else {
                    *skipped += *matched + usize::from(byte != FRAME_MAGIC[0]);
                    *matched = usize::from(byte == FRAME_MAGIC[0]);
                }
                if *matched == FRAME_MAGIC.len() {
                    let skipped = *skipped;
                    let mut header = [0; HEADER_LEN];
                    header[..4].copy_from_slice(&FRAME_MAGIC);
                    self.state = State::Header { header, have: 4 };
                    if skipped > 0 {
                        return Some(Err(FrameError::NoMagic { skipped }));
                    }
                }
                None
            }
            State::Header { header, have } => {
                header[*have] = byte;
                *have += 1;
                if *have < HEADER_LEN {
                    return None;
                }
                let header = *header;
                self.hasher.update(&header);
                let Some(kind) = FrameKind::from_code(header[4]) else {
                    self.reset();
                    return Some(Err(FrameError::UnknownKind(header[4])));
                };
                let declared =
                    u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
                if declared > self.limit {
                    self.reset();
                    return Some(Err(FrameError::TooLarge {
                        declared,
                        max: self.limit,
                    }));
                }
                let state = State::Payload {
                    kind,
                    flags: header[5],
                    payload: Vec::with_capacity(declared),
                    expected: declared,
                };
                self.state = state;
                self.finish_payload_if_complete();
                None
            }
            State::Payload {
                payload, expected, ..
            } => {
                payload.push(byte);
                let take = (*expected - payload.len()).min(rest.len());
                payload.extend_from_slice(&rest[..take]);
                *used += take;
                self.finish_payload_if_complete();
                None
            }
            State::Trailer { digest, have, .. } => {
                digest[*have] = byte;
                *have += 1;
                if *have < TRAILER_LEN {
                    return None;
                }
                let State::Trailer {
                    kind,
                    flags,
                    payload,
                    digest,
                    ..
                } = core::mem::replace(
                    &mut self.state,
                    State::Magic {
                        matched: 0,
                        skipped: 0,
                    },
                )
                else {
                    unreachable!("matched above")
                };
                let hasher = core::mem::take(&mut self.hasher);
                let actual: Digest256 = hasher.finalize().into();
                Some(if actual == digest {
                    Ok(Frame {
                        kind,
                        flags,
                        payload,
                    })
                } else {
                    Err(FrameError::BadChecksum)
                })
            }
        }
    }

    fn finish_payload_if_complete(&mut self) {
        let State::Payload {
            payload, expected, ..
        } = &self.state
        else {
            return;
        };
        if payload.len() < *expected {
            return;
        }
        let State::Payload {
            kind,
            flags,
            payload,
            ..
        } = core::mem::replace(
            &mut self.state,
            State::Magic {
                matched: 0,
                skipped: 0,
            },
        )
        else {
            unreachable!("matched above")
        };
        self.hasher.update(&payload);
        self.state = State::Trailer {
            kind,
            flags,
            payload,
            digest: [0; TRAILER_LEN],
            have: 0,
        };
    }
}

/// A pushed extension: what the kernel adds to its catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRequest {
    /// The [`build_id`] of the kernel the object was linked against.
    pub build_id: Digest256,
    /// Unload and replace an extension of the same name.
    pub replace: bool,
    /// Extension name (covered by the signature).
    pub name: String,
    /// Version.
    pub version: String,
    /// [`crate::object_digest`] of the object.
    pub digest: Digest256,
    /// The build's signature, if signed.
    pub signature: Option<[u8; 64]>,
    /// The object (a bundle). It travels deflated (raw DEFLATE): mangled
    /// names and relocation tables shrink to about a quarter.
    pub object: Vec<u8>,
}

/// Why a payload could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedPayload(pub &'static str);

impl fmt::Display for MalformedPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed push payload: {}", self.0)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MalformedPayload> {
        if self.bytes.len() < n {
            return Err(MalformedPayload(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], MalformedPayload> {
        Ok(self.take(N, what)?.try_into().expect("length checked"))
    }

    fn string(&mut self, what: &'static str) -> Result<String, MalformedPayload> {
        let len = u16::from_le_bytes(self.array(what)?) as usize;
        let bytes = self.take(len, what)?;
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| MalformedPayload(what))
    }
}

impl PushRequest {
    /// The payload of a [`FrameKind::Push`] frame (the flag byte carries
    /// `replace`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.object.len() + 256);
        out.extend_from_slice(&self.build_id);
        for text in [&self.name, &self.version] {
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&self.digest);
        match &self.signature {
            Some(signature) => {
                out.push(1);
                out.extend_from_slice(signature);
            }
            None => out.push(0),
        }
        let deflated = miniz_oxide::deflate::compress_to_vec(&self.object, 6);
        out.extend_from_slice(&(deflated.len() as u32).to_le_bytes());
        out.extend_from_slice(&deflated);
        out
    }

    /// Reads a push from a frame's flags and payload.
    pub fn decode(flags: u8, payload: &[u8]) -> Result<Self, MalformedPayload> {
        let mut r = Reader { bytes: payload };
        let build_id = r.array("build id")?;
        let name = r.string("name")?;
        let version = r.string("version")?;
        let digest = r.array("digest")?;
        let signature = match r.array::<1>("signature flag")?[0] {
            0 => None,
            1 => Some(r.array("signature")?),
            _ => return Err(MalformedPayload("signature flag")),
        };
        let len = u32::from_le_bytes(r.array("object length")?) as usize;
        let deflated = r.take(len, "object")?;
        let object = miniz_oxide::inflate::decompress_to_vec_with_limit(deflated, MAX_OBJECT)
            .map_err(|_| MalformedPayload("object (not DEFLATE data, or above 16 MiB inflated)"))?;
        if !r.bytes.is_empty() {
            return Err(MalformedPayload("bytes after the object"));
        }
        Ok(Self {
            build_id,
            replace: flags & FLAG_REPLACE != 0,
            name,
            version,
            digest,
            signature,
            object,
        })
    }
}

/// The kernel's answer to a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Loaded (true) or refused.
    pub loaded: bool,
    /// What happened: the load's timings, or the refusal.
    pub text: String,
}

impl Answer {
    /// The payload of a [`FrameKind::Answer`] frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.text.len());
        out.push(u8::from(self.loaded));
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Reads an answer.
    pub fn decode(payload: &[u8]) -> Result<Self, MalformedPayload> {
        let (&status, text) = payload.split_first().ok_or(MalformedPayload("status"))?;
        let loaded = match status {
            0 => false,
            1 => true,
            _ => return Err(MalformedPayload("status")),
        };
        let text = core::str::from_utf8(text).map_err(|_| MalformedPayload("answer text"))?;
        Ok(Self {
            loaded,
            text: text.into(),
        })
    }
}

/// Why a kernel ELF has no build id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildIdError(pub String);

impl fmt::Display for BuildIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no build id: {}", self.0)
    }
}

/// A kernel build's identity: BLAKE3 over its symbol table (each
/// symbol's name, value, size and type, in table order). Extensions are
/// linked by name against exactly these symbols, so two kernels with the
/// same build id accept the same objects; stripping debug information
/// does not change it.
pub fn build_id(kernel_elf: &[u8]) -> Result<Digest256, BuildIdError> {
    let elf =
        goblin::elf::Elf::parse(kernel_elf).map_err(|e| BuildIdError(alloc::format!("{e}")))?;
    if elf.syms.is_empty() {
        return Err(BuildIdError("the ELF has no symbol table".into()));
    }
    let mut hasher = blake3::Hasher::new();
    for sym in elf.syms.iter() {
        let name = elf.strtab.get_at(sym.st_name).unwrap_or("");
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(&sym.st_value.to_le_bytes());
        hasher.update(&sym.st_size.to_le_bytes());
        hasher.update(&[sym.st_info]);
    }
    Ok(hasher.finalize().into())
}

/// A digest as hex (the first `bytes` bytes), for messages.
pub fn short_hex(digest: &Digest256, bytes: usize) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(bytes * 2);
    for b in digest.iter().take(bytes) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> PushRequest {
        PushRequest {
            build_id: [7; 32],
            replace: true,
            name: "greeter".into(),
            version: "0.1.0".into(),
            digest: [9; 32],
            signature: Some([3; 64]),
            object: (0..5000u32).map(|i| i as u8).collect(),
        }
    }

    fn decode_all(decoder: &mut FrameDecoder, mut bytes: &[u8]) -> Vec<Result<Frame, FrameError>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (used, outcome) = decoder.feed(bytes);
            bytes = &bytes[used..];
            out.extend(outcome);
        }
        out
    }

    #[test]
    fn a_push_survives_the_wire_in_any_chunking() {
        let req = request();
        let wire = encode_frame(FrameKind::Push, FLAG_REPLACE, &req.encode());
        for chunk in [1, 7, 16, 4096, wire.len()] {
            let mut decoder = FrameDecoder::default();
            let mut frames = Vec::new();
            for piece in wire.chunks(chunk) {
                frames.extend(decode_all(&mut decoder, piece));
            }
            assert_eq!(frames.len(), 1, "chunk {chunk}");
            let frame = frames.pop().unwrap().unwrap();
            assert_eq!(frame.kind, FrameKind::Push);
            assert_eq!(
                PushRequest::decode(frame.flags, &frame.payload),
                Ok(req.clone())
            );
            assert!(!decoder.in_progress());
        }
    }

    #[test]
    fn a_flipped_byte_is_a_bad_checksum_and_the_next_frame_still_decodes() {
        let mut wire = encode_frame(FrameKind::Push, 0, &request().encode());
        wire[HEADER_LEN + 100] ^= 0x40;
        wire.extend(encode_frame(FrameKind::Hello, 0, &[]));
        let mut decoder = FrameDecoder::default();
        let outcomes = decode_all(&mut decoder, &wire);
        assert_eq!(outcomes[0], Err(FrameError::BadChecksum));
        assert_eq!(outcomes[1].as_ref().unwrap().kind, FrameKind::Hello);
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header() {
        let mut decoder = FrameDecoder::new(1000);
        let wire = encode_frame(FrameKind::Push, 0, &[0; 1001]);
        let (used, outcome) = decoder.feed(&wire);
        assert_eq!(used, HEADER_LEN);
        assert_eq!(
            outcome,
            Some(Err(FrameError::TooLarge {
                declared: 1001,
                max: 1000
            }))
        );
    }

    #[test]
    fn junk_is_skipped_and_a_cut_off_frame_is_abandoned() {
        let mut wire = b"xxSPS".to_vec();
        let frame = encode_frame(FrameKind::Push, 0, &request().encode());
        let half = frame.len() / 2;
        wire.extend_from_slice(&frame[..half]);
        let mut decoder = FrameDecoder::default();
        let outcomes = decode_all(&mut decoder, &wire);
        assert_eq!(outcomes, [Err(FrameError::NoMagic { skipped: 5 })]);
        assert!(decoder.in_progress());
        assert_eq!(
            decoder.abandon(),
            Some(FrameError::CutOff {
                received: half,
                expected: frame.len()
            })
        );
        assert!(!decoder.in_progress());
        assert_eq!(decoder.abandon(), None);
    }

    #[test]
    fn unknown_kinds_and_malformed_payloads_are_named() {
        let mut wire = encode_frame(FrameKind::Hello, 0, &[]);
        wire[4] = 0x55;
        let mut decoder = FrameDecoder::default();
        assert_eq!(
            decode_all(&mut decoder, &wire)[0],
            Err(FrameError::UnknownKind(0x55))
        );
        let payload = request().encode();
        assert_eq!(
            PushRequest::decode(0, &payload[..payload.len() - 1]),
            Err(MalformedPayload("object"))
        );
        let mut corrupt = payload.clone();
        let last = corrupt.len() - 1;
        corrupt[last - 10..].fill(0xff);
        assert!(matches!(
            PushRequest::decode(0, &corrupt),
            Err(MalformedPayload(why)) if why.starts_with("object (not DEFLATE")
        ));
        assert_eq!(Answer::decode(&[]), Err(MalformedPayload("status")));
        let answer = Answer {
            loaded: false,
            text: "refused".into(),
        };
        assert_eq!(Answer::decode(&answer.encode()), Ok(answer));
    }
}
