//! Memory quotas and leaks: an extension that allocates until its heap's
//! quota refuses is contained like a panic, and its heap freed; a leak is
//! reported by `ext unload` with its exact byte count, its heap kept until
//! freed (ARCHITECTURE.md, "Extension heaps", says why it is not freed).
//! After each, in the same boot, `hello` still loads and answers.

use spindle_tests::*;

/// Loads `name`, which must succeed.
fn load(session: &mut Session, name: &str) {
    let out = command(session, &format!("ext load {name}"));
    assert!(out.contains(&format!("loaded {name}:")), "{out}");
}

/// `(bytes, blocks)` from the `heap:` line of `ext info NAME`.
fn heap_use(session: &mut Session, name: &str) -> (u64, u64) {
    let info = command(session, &format!("ext info {name}"));
    let line = info
        .lines()
        .find(|l| l.starts_with("heap: "))
        .unwrap_or_else(|| panic!("no heap line in:\n{info}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    // heap: BYTES bytes in BLOCKS blocks, ...
    (words[1].parse().unwrap(), words[4].parse().unwrap())
}

/// Frames in use, from the `frames:` line of `mem`.
fn frames_used(mem: &str) -> u64 {
    let (frames, _) = memory_figures(mem);
    let words: Vec<&str> = frames.split_whitespace().collect();
    // frames: USABLE usable, USED used, ...
    words[3].parse().unwrap()
}

/// `hello` loads, answers and unloads.
fn hello_still_works(session: &mut Session) {
    load(session, "hello");
    let answer = command(session, "hello");
    assert!(
        answer.contains("Hello from the hello extension!"),
        "{answer}"
    );
    let out = command(session, "ext unload hello");
    assert!(out.contains("unloaded hello"), "{out}");
    assert!(!out.contains("still allocated"), "{out}");
}

fn shutdown(mut session: Session) {
    session.send_line("shutdown").unwrap();
    let (exit, output) = session.wait_exit(COMMAND_TIMEOUT).expect("QEMU exits");
    assert_eq!(exit, KernelExit::Success, "{output}");
}

#[test]
fn allocating_until_failure_is_stopped_by_the_quota_and_contained() {
    let (mut session, _) = boot(Firmware::Bios);
    let baseline = memory_figures(&command(&mut session, "mem"));

    // Accounting: what the extension keeps shows in `ext info`, exactly.
    load(&mut session, "alloc-until-failure");
    let info = command(&mut session, "ext info alloc-until-failure");
    assert!(
        info.contains("quota 4194304 bytes (4096 mapped), 0 allocation(s) refused"),
        "{info}"
    );
    assert!(info.contains(" heap + 0 other = "), "{info}");
    let (bytes, blocks) = heap_use(&mut session, "alloc-until-failure");
    let kept = command(&mut session, "alloc-until-failure keep 100000");
    assert!(kept.contains("keeping 100000 more bytes"), "{kept}");
    // The 100,000-byte vector, and the 96-byte buffer of the vector
    // holding it (room for four 24-byte vectors).
    assert_eq!(
        heap_use(&mut session, "alloc-until-failure"),
        (bytes + 100_096, blocks + 2)
    );
    // Its `exit` frees them: the heap is freed at unload.
    let out = command(&mut session, "ext unload alloc-until-failure");
    assert!(out.contains("unloaded alloc-until-failure"), "{out}");
    assert!(!out.contains("still allocated"), "{out}");
    assert_eq!(memory_figures(&command(&mut session, "mem")), baseline);

    // The quota: 4 MiB of 64 KiB blocks, then the allocation fails in the
    // extension, which is contained and unloaded.
    load(&mut session, "alloc-until-failure");
    let out = command(&mut session, "alloc-until-failure");
    assert!(
        out.contains("alloc-until-failure: allocating 65536-byte blocks until one fails"),
        "{out}"
    );
    assert!(
        out.contains("error: 'alloc-until-failure' abandoned: extension 'alloc-until-failure' failed during Console.Line"),
        "{out}"
    );
    assert!(
        out.contains("panicked at kernel-image/src/panic.rs:")
            && out.contains("memory allocation of 65536 bytes (align 1) failed"),
        "{out}"
    );
    assert!(
        out.contains("alloc_until_failure::exhaust"),
        "the backtrace names the extension's function:\n{out}"
    );
    assert!(
        out.contains("extension 'alloc-until-failure' unloaded (failed): 1 binding(s) revoked"),
        "{out}"
    );
    // Its blocks were freed by the unwind: nothing kept.
    assert!(!out.contains("still allocated"), "{out}");
    let mem = command(&mut session, "mem");
    assert!(
        mem.contains("extension heaps: 0 live (0 bytes), 0 kept after unload (0 bytes), 0 frames"),
        "{mem}"
    );
    assert_eq!(memory_figures(&mem), baseline);

    hello_still_works(&mut session);
    assert_eq!(memory_figures(&command(&mut session, "mem")), baseline);
    shutdown(session);
}

#[test]
fn a_leak_is_reported_at_unload_and_its_heap_kept() {
    let (mut session, _) = boot(Firmware::Bios);
    let baseline_mem = command(&mut session, "mem");
    let baseline = memory_figures(&baseline_mem);

    load(&mut session, "leak");
    let out = command(&mut session, "leak");
    assert!(out.contains("leak: leaked 4000 bytes in 2 blocks"), "{out}");
    let out = command(&mut session, "ext unload leak");
    assert!(
        out.contains("4000 bytes in 2 blocks still allocated from leak's heap: kept until freed"),
        "{out}"
    );
    assert!(out.contains("unloaded leak"), "{out}");

    // The kernel heap is untouched (the leak is in the extension's heap);
    // the frames in use are the baseline's plus the kept heap's two pages
    // (the 3000-byte block did not fit beside the 1000-byte one in the
    // first) and the three page tables (levels 3, 2, 1) mapping its window.
    let mem = command(&mut session, "mem");
    assert!(
        mem.contains(
            "extension heaps: 0 live (0 bytes), 1 kept after unload (4000 bytes), 2 frames"
        ),
        "{mem}"
    );
    assert_eq!(memory_figures(&mem).1, baseline.1);
    assert_eq!(frames_used(&mem), frames_used(&baseline_mem) + 5);

    // The kernel keeps serving; loading again takes a fresh heap.
    hello_still_works(&mut session);
    let after = command(&mut session, "mem");
    assert_eq!(memory_figures(&after), memory_figures(&mem));
    load(&mut session, "leak");
    assert!(command(&mut session, "leak").contains("leaked 4000 bytes"));
    let out = command(&mut session, "ext unload leak");
    assert!(
        out.contains("4000 bytes in 2 blocks still allocated from leak's heap: kept until freed"),
        "{out}"
    );
    // Two kept heaps now, in two windows: two more pages, and the page
    // table mapping the second window (64 MiB from the first).
    let mem = command(&mut session, "mem");
    assert!(
        mem.contains(
            "extension heaps: 0 live (0 bytes), 2 kept after unload (8000 bytes), 4 frames"
        ),
        "{mem}"
    );
    assert_eq!(memory_figures(&mem).1, baseline.1);
    assert_eq!(frames_used(&mem), frames_used(&baseline_mem) + 8);
    shutdown(session);
}

/// Bindings installed later go into the binding map's nodes that the first
/// installer's code allocated from its heap; unloading that extension
/// first must still free its heap (the kernel moves the map out of it), not
/// keep it for the other extension's binding.
#[test]
fn an_extension_unloaded_before_one_that_bound_after_it_leaves_no_heap_behind() {
    let (mut session, _) = boot(Firmware::Bios);
    let baseline = memory_figures(&command(&mut session, "mem"));

    load(&mut session, "checksum");
    load(&mut session, "hello");
    let out = command(&mut session, "ext unload checksum");
    assert!(out.contains("unloaded checksum"), "{out}");
    assert!(!out.contains("still allocated"), "{out}");
    let mem = command(&mut session, "mem");
    assert!(mem.contains(", 0 kept after unload (0 bytes),"), "{mem}");
    let answer = command(&mut session, "hello");
    assert!(
        answer.contains("Hello from the hello extension!"),
        "{answer}"
    );
    let out = command(&mut session, "ext unload hello");
    assert!(out.contains("unloaded hello"), "{out}");
    assert!(!out.contains("still allocated"), "{out}");
    assert_eq!(memory_figures(&command(&mut session, "mem")), baseline);
    shutdown(session);
}
