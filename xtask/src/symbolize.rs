//! Source lines for the kernel's panic backtraces, from the host.
//!
//! The kernel image carries no DWARF (it is stripped: the BIOS loader reads
//! it slowly), so the kernel prints function names and offsets only. The
//! full ELF stays in `target/`; this reads a console transcript, finds the
//! backtrace's kernel frames (`  N: 0xADDRESS  name+0xOFFSET`) and the
//! kernel's load address from the backtrace's header, and looks each
//! return address up in the ELF's DWARF (with the functions inlined at
//! it). Extension frames (`[name +0xOFFSET]`) are left to gdb, which loads
//! their objects at the right addresses (`cargo xtask gdb`).

use std::fmt::Write as _;
use std::path::Path;

use addr2line::gimli;

/// A frame line of the kernel's backtrace: its number and address.
fn parse_frame(line: &str) -> Option<(u32, u64, bool)> {
    let (number, rest) = line.trim_start().split_once(": 0x")?;
    let number = number.parse().ok()?;
    let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    let address = u64::from_str_radix(&hex, 16).ok()?;
    Some((number, address, rest.contains("  [")))
}

/// The kernel's load address from a backtrace header.
fn parse_header(line: &str) -> Option<u64> {
    let rest = line
        .trim_start()
        .strip_prefix("backtrace (kernel image at 0x")?;
    let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&hex, 16).ok()
}

/// Source lines for every kernel frame of the backtraces in `console`,
/// looked up in `kernel_elf`; empty if there is no backtrace. Each frame
/// gives `  N: at FILE:LINE` (and one `inlined into FUNCTION at FILE:LINE`
/// line per function it was inlined into).
pub fn kernel_source_lines(console: &str, kernel_elf: &Path) -> Result<String, String> {
    let mut load_address = None;
    let mut frames = Vec::new();
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(address) = parse_header(line) {
            load_address = Some(address);
        } else if let (Some(base), Some((number, address, extension))) =
            (load_address, parse_frame(line))
            && !extension
        {
            frames.push((number, address.wrapping_sub(base)));
        }
    }
    if frames.is_empty() {
        return Ok(String::new());
    }
    let bytes = std::fs::read(kernel_elf).map_err(|e| format!("{}: {e}", kernel_elf.display()))?;
    let context = dwarf_context(&bytes).map_err(|e| format!("{}: {e}", kernel_elf.display()))?;
    // Paths inside the workspace are shown relative to it.
    let root = format!("{}/", crate::workspace::root().display());
    let mut out = String::new();
    for (number, address) in frames {
        // A return address: the call is the byte before it.
        let mut found = context
            .find_frames(address.saturating_sub(1))
            .skip_all_loads()
            .map_err(|e| e.to_string())?;
        let mut first = true;
        while let Ok(Some(frame)) = found.next() {
            let Some(location) = frame.location else {
                continue;
            };
            let file = location.file.unwrap_or("?");
            let file = file.strip_prefix(root.as_str()).unwrap_or(file);
            let place = format!(
                "{}:{}:{}",
                file,
                location.line.unwrap_or(0),
                location.column.unwrap_or(0)
            );
            if first {
                let _ = writeln!(out, "  {number:>2}: at {place}");
                first = false;
            } else {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.demangle().ok().map(|n| n.into_owned()))
                    .unwrap_or_else(|| "?".into());
                let _ = writeln!(out, "        inlined into {function} at {place}");
            }
        }
    }
    Ok(out)
}

type Slice<'a> = gimli::EndianSlice<'a, gimli::RunTimeEndian>;

/// The DWARF of a little-endian ELF file, read in place (its sections are
/// found with goblin; compressed debug sections are refused).
fn dwarf_context(bytes: &[u8]) -> Result<addr2line::Context<Slice<'_>>, String> {
    use goblin::elf::section_header::{SHF_COMPRESSED, SHT_NOBITS};
    let elf = goblin::elf::Elf::parse(bytes).map_err(|e| e.to_string())?;
    if !elf.little_endian {
        return Err("not a little-endian ELF file".into());
    }
    let section = |id: gimli::SectionId| -> Result<Slice<'_>, String> {
        let Some(header) = elf
            .section_headers
            .iter()
            .find(|h| elf.shdr_strtab.get_at(h.sh_name) == Some(id.name()))
        else {
            return Ok(Slice::new(&[], gimli::RunTimeEndian::Little));
        };
        if header.sh_flags & u64::from(SHF_COMPRESSED) != 0 {
            return Err(format!("{} is compressed", id.name()));
        }
        let data = if header.sh_type == SHT_NOBITS {
            &[][..]
        } else {
            usize::try_from(header.sh_offset)
                .ok()
                .zip(usize::try_from(header.sh_size).ok())
                .and_then(|(start, size)| bytes.get(start..start.checked_add(size)?))
                .ok_or_else(|| format!("{} lies outside the file", id.name()))?
        };
        Ok(Slice::new(data, gimli::RunTimeEndian::Little))
    };
    let dwarf = gimli::Dwarf::load(section)?;
    addr2line::Context::from_dwarf(dwarf).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_frames_and_the_header() {
        assert_eq!(
            parse_header("backtrace (kernel image at 0xffffffff80000000, most recent call first):"),
            Some(0xffff_ffff_8000_0000)
        );
        assert_eq!(
            parse_frame("   2: 0xffffffff800d7aac  spindle_kernel::shell::system::panic+0x1a"),
            Some((2, 0xffff_ffff_800d_7aac, false))
        );
        assert_eq!(
            parse_frame("  12: 0xffffffff90009310  hello::greet+0x31  [hello +0x9310]"),
            Some((12, 0xffff_ffff_9000_9310, true))
        );
        assert_eq!(parse_frame("  (end: end of stack)"), None);
        assert_eq!(parse_frame("spindle> panic"), None);
    }

    #[test]
    fn no_backtrace_needs_no_kernel_file() {
        let out = kernel_source_lines("spindle> help\n", Path::new("/nonexistent"));
        assert_eq!(out, Ok(String::new()));
    }
}
