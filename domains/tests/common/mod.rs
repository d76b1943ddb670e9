//! Shared machinery for the real-object tests: compiling fixture crates
//! with the pinned rustc, reading this test process's own symbol table
//! (the way the kernel reads its own `.symtab`), and mapping linked images
//! into executable memory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use domains::{CrateFilter, Domain, LinkOptions, LinkedImage, Object, Resolver, SegmentKind};

/// The crates whose symbols an extension may link against in the host
/// tests: the Rust runtime of this process.
pub const HOST_PUBLIC: &[&str] = &["core", "alloc", "std", "compiler_builtins"];

/// The `rustc` of the toolchain that built this test (the pinned nightly):
/// the sibling of the `cargo` that ran the build.
pub fn rustc() -> PathBuf {
    let cargo = PathBuf::from(env!("CARGO"));
    let sibling = cargo.with_file_name("rustc");
    if sibling.exists() {
        sibling
    } else {
        PathBuf::from("rustc")
    }
}

/// Where fixture outputs go.
pub fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("domains-fixtures");
    std::fs::create_dir_all(&d).expect("create fixture dir");
    d
}

/// Path of a fixture source.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// How to build a fixture.
#[derive(Clone, Debug)]
pub struct Build<'a> {
    /// Source file.
    pub src: PathBuf,
    /// Crate name.
    pub crate_name: &'a str,
    /// `--target`, or the host.
    pub target: Option<&'a str>,
    /// Produce an rlib (ar archive) instead of a bare object.
    pub rlib: bool,
    /// Extra rustc flags.
    pub flags: &'a [&'a str],
    /// Codegen units.
    pub cgu: u32,
}

impl<'a> Build<'a> {
    pub fn new(src: PathBuf, crate_name: &'a str) -> Self {
        Build {
            src,
            crate_name,
            target: None,
            rlib: false,
            flags: &[],
            cgu: 1,
        }
    }
}

static CACHE: OnceLock<Mutex<HashMap<String, &'static [u8]>>> = OnceLock::new();

/// Compiles a fixture (once per process per configuration) and returns the
/// object or rlib bytes.
pub fn compile(b: &Build<'_>) -> &'static [u8] {
    let key = format!("{b:?}");
    let cache = CACHE.get_or_init(Default::default);
    // Held across the compile: tests run in parallel and share outputs.
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(bytes) = cache.get(&key) {
        return bytes;
    }
    let tag = format!("{:016x}", fxhash(&key));
    let dir = out_dir().join(&tag);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(rustc());
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--edition=2024")
        .arg("--crate-name")
        .arg(b.crate_name)
        .arg("--crate-type")
        .arg(if b.rlib { "rlib" } else { "lib" })
        .arg("-Ccodegen-units=".to_string() + &b.cgu.to_string())
        .arg("-Copt-level=2")
        .arg("-Cpanic=abort")
        .arg("-Cdebuginfo=0");
    if let Some(t) = b.target {
        cmd.arg("--target").arg(t);
    }
    cmd.args(b.flags);
    let out = if b.rlib {
        cmd.arg("--out-dir").arg(&dir);
        dir.join(format!("lib{}.rlib", b.crate_name))
    } else {
        let o = dir.join(format!("{}.o", b.crate_name));
        cmd.arg("--emit=obj").arg("-o").arg(&o);
        o
    };
    cmd.arg(&b.src);
    let res = cmd.output().expect("run rustc");
    assert!(
        res.status.success(),
        "rustc failed for {key}:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let bytes: &'static [u8] = Box::leak(std::fs::read(&out).unwrap().into_boxed_slice());
    cache.insert(key, bytes);
    bytes
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// This test executable's bytes.
pub fn self_exe() -> &'static [u8] {
    static EXE: OnceLock<&'static [u8]> = OnceLock::new();
    EXE.get_or_init(|| Box::leak(std::fs::read("/proc/self/exe").unwrap().into_boxed_slice()))
}

/// The PIE load bias of this executable: the start of its first mapping
/// (file offset 0) in `/proc/self/maps`, minus the page-aligned virtual
/// address of its first `PT_LOAD` (0 for a PIE).
pub fn load_bias() -> u64 {
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let start = maps
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let range = f.next()?;
            let _perms = f.next()?;
            let offset = f.next()?;
            let path = f.nth(2)?;
            (Path::new(path) == exe && u64::from_str_radix(offset, 16).ok()? == 0)
                .then(|| u64::from_str_radix(range.split('-').next()?, 16).ok())
                .flatten()
        })
        .expect("own mapping in /proc/self/maps");
    let elf = goblin::elf::Elf::parse(self_exe()).expect("parse own ELF");
    let first_load = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
        .map(|p| p.p_vaddr & !0xfff)
        .min()
        .unwrap();
    start - first_load
}

/// A domain over this process's own `.symtab`, filtered by crate: the same
/// path as the kernel's `create_from_module`.
pub fn process_domain(name: &str, filter: &CrateFilter<'_>) -> Domain {
    Domain::create_from_module(name, self_exe(), load_bias(), filter).expect("own symtab")
}

// SAFETY: these are the C library's functions with their C signatures
// (glibc on the test host); the test process links libc.
unsafe extern "C" {
    fn memcpy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void;
    fn memmove(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void;
    fn memset(d: *mut c_void, c: i32, n: usize) -> *mut c_void;
    fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> i32;
    fn bcmp(a: *const c_void, b: *const c_void, n: usize) -> i32;
    fn strlen(s: *const std::ffi::c_char) -> usize;
    fn mmap(addr: *mut c_void, len: usize, prot: i32, flags: i32, fd: i32, off: i64)
    -> *mut c_void;
    fn mprotect(addr: *mut c_void, len: usize, prot: i32) -> i32;
    fn munmap(addr: *mut c_void, len: usize) -> i32;
}

/// libc's memory functions, which the test executable imports from
/// `libc.so` rather than defines (a kernel gets them from
/// compiler_builtins).
pub fn libc_domain() -> Domain {
    Domain::from_exports(
        "libc",
        [
            ("memcpy", memcpy as *const () as u64),
            ("memmove", memmove as *const () as u64),
            ("memset", memset as *const () as u64),
            ("memcmp", memcmp as *const () as u64),
            ("bcmp", bcmp as *const () as u64),
            ("strlen", strlen as *const () as u64),
        ],
    )
}

/// `SpinPublic` for the host tests: this process's Rust runtime crates
/// plus libc's memory functions.
pub fn host_public() -> Domain {
    let rt = process_domain("host-runtime", &CrateFilter::crates(HOST_PUBLIC));
    domains::combine("SpinPublic", &rt, &libc_domain()).unwrap()
}

const PROT_READ: i32 = 1;
const PROT_WRITE: i32 = 2;
const PROT_EXEC: i32 = 4;
const MAP_PRIVATE: i32 = 2;
const MAP_ANONYMOUS: i32 = 0x20;
const MAP_FIXED_NOREPLACE: i32 = 0x10_0000;
pub const PAGE: u64 = 4096;

/// An anonymous mapping, unmapped on drop.
pub struct Mapping {
    pub base: u64,
    pub len: usize,
}

impl Mapping {
    /// Maps `len` bytes read-write, at `hint` exactly if given (and free).
    pub fn new(len: u64, hint: Option<u64>) -> Option<Mapping> {
        let len = usize::try_from(len.max(PAGE)).ok()?;
        let (addr, flags) = match hint {
            Some(h) => (
                h as *mut c_void,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
            ),
            None => (std::ptr::null_mut(), MAP_PRIVATE | MAP_ANONYMOUS),
        };
        // SAFETY: an anonymous private mapping; with a hint,
        // MAP_FIXED_NOREPLACE never replaces an existing mapping.
        let p = unsafe { mmap(addr, len, PROT_READ | PROT_WRITE, flags, -1, 0) };
        if p as isize == -1 {
            return None;
        }
        let m = Mapping {
            base: p as u64,
            len,
        };
        match hint {
            Some(h) if m.base != h => None, // dropped: unmapped
            _ => Some(m),
        }
    }

    /// Copies the image's segments in and applies W^X protections: text
    /// R+X, rodata R, data R+W.
    pub fn load(&self, image: &LinkedImage) {
        for seg in image.segments() {
            if seg.bytes.is_empty() {
                continue;
            }
            assert!(
                seg.base >= self.base
                    && seg.base + seg.bytes.len() as u64 <= self.base + self.len as u64
            );
            // SAFETY: the destination lies inside this live RW mapping
            // (asserted above) and does not overlap the source Vec.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    seg.bytes.as_ptr(),
                    seg.base as *mut u8,
                    seg.bytes.len(),
                );
            }
        }
        for seg in image.segments() {
            if seg.bytes.is_empty() {
                continue;
            }
            let prot = match seg.kind {
                SegmentKind::Text => PROT_READ | PROT_EXEC,
                SegmentKind::ReadOnly => PROT_READ,
                SegmentKind::Data => PROT_READ | PROT_WRITE,
            };
            let len = (seg.bytes.len() as u64).div_ceil(PAGE) * PAGE;
            // SAFETY: page-aligned range inside this mapping (segments are
            // placed at page-aligned bases by `contiguous_bases`).
            let r = unsafe { mprotect(seg.base as *mut c_void, len as usize, prot) };
            assert_eq!(r, 0, "mprotect");
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this value owns; nothing
        // borrowed from it outlives the Mapping in these tests.
        unsafe {
            munmap(self.base as *mut c_void, self.len);
        }
    }
}

/// Where to put an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagePlacement {
    /// Wherever mmap likes: far (> 2 GiB) from the executable.
    Far,
    /// Within ±2 GiB of the executable, so calls and GOT loads can be
    /// direct.
    Near,
}

/// Plans, maps and links `object` against `resolver`, placing it as asked.
pub fn map_and_link(
    object: &Object<'_>,
    resolver: &dyn Resolver,
    placement: ImagePlacement,
    options: LinkOptions,
) -> (Mapping, LinkedImage) {
    let plan = object.plan(&options).expect("plan");
    let span = plan.contiguous_span(PAGE).unwrap();
    let mapping = match placement {
        ImagePlacement::Far => Mapping::new(span, None).expect("mmap"),
        ImagePlacement::Near => {
            let bias = load_bias();
            (1..64u64)
                .find_map(|i| Mapping::new(span, Some(bias - i * (16 << 20))))
                .expect("no free address near the executable")
        }
    };
    let bases = plan.contiguous_bases(mapping.base, PAGE).unwrap();
    let image = plan.link(bases, resolver).expect("link");
    mapping.load(&image);
    (mapping, image)
}

/// The distance from the image's text to this executable's code is more
/// than 2 GiB.
pub fn is_far(image: &LinkedImage) -> bool {
    let text = image.segment(SegmentKind::Text).base as i128;
    (text - load_bias() as i128).abs() > (1 << 31)
}
