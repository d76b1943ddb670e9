//! Backtraces and the debug registry on the real machine: kernel symbols,
//! a walk through known frames, extension frames named with their
//! extension, the debugger's table, and the fallback when the registry is
//! locked.

use ktest_macros::ktest;

use crate::containment::FixedText;
use crate::debug::backtrace::Backtrace;
use crate::debug::extensions::{self, SectionRecord};
use crate::debug::{symbols, unwind::StopReason};
use crate::ktest::{KtestFailure, KtestResult};
use crate::loader;
use crate::{ensure, ensure_eq};

fn failure(e: impl core::fmt::Display) -> KtestFailure {
    KtestFailure::new(alloc::format!("{e}"))
}

fn demangled(name: &str) -> alloc::string::String {
    alloc::format!("{:#}", rustc_demangle::demangle(name))
}

#[inline(never)]
fn level_three() -> Backtrace {
    core::hint::black_box(Backtrace::capture())
}

#[inline(never)]
fn level_two() -> Backtrace {
    core::hint::black_box(level_three())
}

#[inline(never)]
fn level_one() -> Backtrace {
    core::hint::black_box(level_two())
}

fn printed(backtrace: &Backtrace) -> FixedText<8192> {
    let mut text = FixedText::new();
    let _ = backtrace.print(&mut text);
    text
}

#[ktest]
fn kernel_symbols_name_a_function_and_offset() -> KtestResult {
    let kernel = symbols::kernel().ok_or_else(|| failure("no kernel symbol index"))?;
    let address = level_one as fn() -> Backtrace as usize as u64;
    ensure!(
        kernel.text.contains(&address),
        "{address:#x} not in kernel text"
    );
    let found = kernel
        .functions
        .lookup(address + 3)
        .ok_or_else(|| failure("level_one not found"))?;
    ensure_eq!(
        demangled(found.name),
        "spindle_kernel::tests::debug::level_one"
    );
    ensure_eq!(found.offset, 3);
    ensure!(
        kernel.functions.len() > 1000,
        "only {} functions",
        kernel.functions.len()
    );
    Ok(())
}

#[ktest]
fn backtrace_walks_through_known_frames_to_the_end_of_the_stack() -> KtestResult {
    let backtrace = level_one();
    let text = printed(&backtrace);
    let text = text.as_str();
    let position = |name: &str| {
        text.find(name)
            .ok_or_else(|| failure(alloc::format!("{name} missing from:\n{text}")))
    };
    // Innermost first: each caller after its callee.
    let three = position("spindle_kernel::tests::debug::level_three+0x")?;
    let two = position("spindle_kernel::tests::debug::level_two+0x")?;
    let one = position("spindle_kernel::tests::debug::level_one+0x")?;
    let main = position("spindle_kernel::kernel_main+0x")?;
    ensure!(
        three < two && two < one && one < main,
        "out of order:\n{text}"
    );
    ensure!(
        matches!(
            backtrace.stop_reason(),
            StopReason::EndOfStack | StopReason::NoUnwindInfo(_)
        ),
        "walk stopped early: {:?}\n{text}",
        backtrace.stop_reason()
    );
    ensure!(text.starts_with("backtrace (kernel image at 0xffffffff80000000"));
    Ok(())
}

/// The section records of the loaded extension `name` in the debugger's
/// table, with their names.
fn table_sections(
    name: &str,
) -> Option<(u64, alloc::vec::Vec<(alloc::string::String, SectionRecord)>)> {
    let (_, records) = extensions::table_copy();
    let record = records
        .iter()
        .find(|r| r.load_id != 0 && &r.name[..r.name_len as usize] == name.as_bytes())?;
    let mut sections = alloc::vec::Vec::new();
    for i in 0..record.section_count {
        // SAFETY: the record points at `section_count` SectionRecords, and
        // each at its name, all owned by the registry while the extension
        // is registered (it stays loaded for the whole test).
        let (section, section_name) = unsafe {
            let section = *(record.sections as *const SectionRecord).add(i as usize);
            let bytes =
                core::slice::from_raw_parts(section.name as *const u8, section.name_len as usize);
            (
                section,
                alloc::string::String::from_utf8_lossy(bytes).into_owned(),
            )
        };
        sections.push((section_name, section));
    }
    Some((record.load_id, sections))
}

/// The image range and text segment of the loaded `hello`.
fn hello_image() -> Result<(core::ops::Range<u64>, core::ops::Range<u64>), KtestFailure> {
    let report = loader::with(|l| l.info("hello"))
        .and_then(|info| info.loaded)
        .ok_or_else(|| failure("hello not loaded"))?
        .report;
    Ok((report.range.clone(), report.segments[0].clone()))
}

#[ktest]
fn loaded_extensions_are_in_the_debug_table_and_name_their_frames() -> KtestResult {
    let (generation_before, _) = extensions::table_copy();
    loader::load("hello").map_err(failure)?;
    let (generation_loaded, _) = extensions::table_copy();
    ensure_eq!(generation_loaded, generation_before + 1);
    let (image, text) = hello_image()?;
    let (load_id, sections) =
        table_sections("hello").ok_or_else(|| failure("hello not in the table"))?;
    ensure!(load_id != 0);
    ensure!(
        sections.iter().any(|(n, _)| n == ".eh_frame"),
        "no .eh_frame"
    );
    ensure!(
        sections
            .iter()
            .all(|(_, s)| s.size == 0
                || (image.contains(&s.address) && s.address + s.size <= image.end)),
        "a section outside the image"
    );
    // hello's command handler: its own section, in the text segment.
    let (_, greet) = sections
        .iter()
        .find(|(n, _)| n.starts_with(".text.") && demangled(&n[6..]) == "hello::greet")
        .ok_or_else(|| failure("no section for hello::greet"))?;
    ensure!(text.contains(&greet.address));
    let backtrace = Backtrace::from_return_addresses(&[greet.address + 5]);
    let printed = printed(&backtrace);
    let expected = alloc::format!(
        "hello::greet+0x5  [hello +{:#x}]",
        greet.address + 5 - image.start
    );
    ensure!(
        printed.as_str().contains(&expected),
        "{expected} missing from:\n{printed}"
    );
    loader::unload("hello").map_err(failure)?;
    let (generation_unloaded, _) = extensions::table_copy();
    ensure_eq!(generation_unloaded, generation_loaded + 1);
    ensure!(
        table_sections("hello").is_none(),
        "hello still in the table"
    );
    Ok(())
}

#[ktest]
fn a_locked_registry_gives_plain_addresses_not_a_deadlock() -> KtestResult {
    loader::load("hello").map_err(failure)?;
    let (image, _) = hello_image()?;
    let kernel_frame = level_one as fn() -> Backtrace as usize as u64 + 1;
    let backtrace = Backtrace::from_return_addresses(&[image.start + 1, kernel_frame]);
    let text = {
        let _held = extensions::try_snapshot().ok_or_else(|| failure("registry busy"))?;
        printed(&backtrace)
    };
    let result = (|| {
        ensure!(
            text.as_str()
                .contains("? (extension symbols unavailable: registry locked)"),
            "{text}"
        );
        ensure!(
            text.as_str()
                .contains("spindle_kernel::tests::debug::level_one+0x1"),
            "{text}"
        );
        // A walk into extension code with the registry locked stops there.
        let mut frames = [0u64; 4];
        let held = extensions::try_snapshot().ok_or_else(|| failure("registry busy"))?;
        drop(held);
        let registers = crate::debug::unwind::Registers {
            rip: image.start + 1,
            rsp: 0x1000,
            ..Default::default()
        };
        let (count, stop) =
            crate::debug::unwind::walk(registers, true, symbols::kernel(), None, &mut frames);
        ensure_eq!(count, 1);
        ensure_eq!(stop, StopReason::RegistryBusy);
        Ok(())
    })();
    loader::unload("hello").map_err(failure)?;
    result
}

#[ktest]
fn unknown_addresses_print_plainly_and_stop_the_walk() -> KtestResult {
    let backtrace = Backtrace::from_return_addresses(&[0x1235]);
    let text = printed(&backtrace);
    ensure!(
        text.as_str()
            .contains("0x0000000000001235  ? (not in the kernel or a loaded extension)"),
        "{text}"
    );
    let registers = crate::debug::unwind::Registers {
        rip: 0x1234,
        ..Default::default()
    };
    let mut frames = [0u64; 4];
    let (count, stop) = crate::debug::unwind::walk(
        registers,
        true,
        symbols::kernel(),
        extensions::try_snapshot().as_deref(),
        &mut frames,
    );
    ensure_eq!(count, 1);
    ensure_eq!(stop, StopReason::NoUnwindInfo(0x1234));
    Ok(())
}

#[inline(never)]
fn interrupted_here() -> Backtrace {
    // As an exception handler would: a walk from saved registers, the
    // interrupted instruction first.
    let registers = crate::debug::unwind::here();
    core::hint::black_box(Backtrace::from_registers(registers))
}

#[ktest]
fn a_walk_from_saved_registers_starts_at_their_instruction() -> KtestResult {
    let backtrace = core::hint::black_box(interrupted_here());
    let text = printed(&backtrace);
    let first = text
        .as_str()
        .lines()
        .nth(1)
        .ok_or_else(|| failure("no frame"))?;
    ensure!(
        first.contains("spindle_kernel::tests::debug::interrupted_here+0x"),
        "{text}"
    );
    ensure!(
        text.as_str()
            .contains("spindle_kernel::tests::debug::a_walk_from_saved_registers_starts_at_their_instruction+0x"),
        "{text}"
    );
    Ok(())
}
