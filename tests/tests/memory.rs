//! The memory services through the shell: demand-zero paging by `pager`,
//! cooperative reclaim by `cache`, forced repossession of `hog` and its
//! vector, and `mem` / `phys` back to their figures after all three are
//! unloaded.

use std::time::Duration;

use spindle_tests::*;

/// The figures of a `phys` listing: its frames line and its table (the
/// kernel's own frames and every owner's row).
fn phys_lines(phys: &str) -> Vec<String> {
    phys.lines()
        .filter(|l| l.starts_with("frames:") || l.starts_with("  "))
        .map(str::to_owned)
        .collect()
}

/// The `phys` row of `owner`: (frames, pinned, allocations, repossessed).
fn phys_row(phys: &str, owner: &str) -> Option<(u64, u64, u64, u64)> {
    let row = phys
        .lines()
        .find(|l| l.split_whitespace().next() == Some(owner))?;
    let n: Vec<u64> = row
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().expect("a number"))
        .collect();
    Some((n[0], n[1], n[2], n[3]))
}

/// The `asked NAME for N frames: ...` line of a squeeze for `owner`:
/// (asked, gave back, repossessed).
fn squeeze_row(report: &str, owner: &str) -> (u64, u64, u64) {
    let row = report
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("asked {owner} ")))
        .unwrap_or_else(|| panic!("{owner} not asked:\n{report}"));
    (
        number_after(row, "for").expect("asked"),
        number_after(row, "gave back").expect("gave back"),
        number_after(row, "repossessed").expect("repossessed"),
    )
}

#[test]
fn acceptance_pipeline_pages_reclaims_repossesses_and_exits_cleanly() {
    let input = "events\next load pager\npager touch 64\next load cache\next load hog\nphys\n\
                 phys squeeze 512\nhog vector\next unload hog\next unload cache\n\
                 ext unload pager\nmem\nshutdown\n";
    let output = run_script(input, Duration::from_secs(180));
    for event in [
        "PhysAddr.Allocate",
        "PhysAddr.Deallocate",
        "PhysAddr.Reclaim",
        "PhysAddr.Repossessed",
        "Translation.PageNotPresent",
        "Translation.ProtectionFault",
        "Translation.BadAddress",
    ] {
        assert!(
            output
                .lines()
                .any(|l| l.starts_with(event) && l.contains("kernel")),
            "{event} missing:\n{output}"
        );
    }
    assert!(
        output.contains(
            "64 faults handled, 64 frames mapped, 64 pages read back, 0 foreign faults seen"
        ),
        "{output}"
    );
    let (_, cache_gave, cache_taken) = squeeze_row(&output, "cache");
    assert!(cache_gave > 0 && cache_taken == 0, "{output}");
    let (hog_asked, hog_gave, hog_taken) = squeeze_row(&output, "hog");
    assert!(
        hog_asked > 0 && hog_gave == 0 && hog_taken == hog_asked,
        "{output}"
    );
    let lost = number_after(&output, "hog: repossession vector:").expect("hog vector");
    assert_eq!(lost, hog_taken, "{output}");
    assert!(output.contains("cache: asked for"), "{output}");
    assert!(output.contains("hog: asked for"), "{output}");
    assert!(output.contains("frames were repossessed"), "{output}");
}

#[test]
fn the_three_extensions_leave_mem_and_phys_as_they_found_them() {
    let (mut session, _) = boot(Firmware::Bios);
    // One round of everything first, so that state the kernel creates
    // once on first use (an event's first binding table, say) is in the
    // baseline; what must come back exactly is what each round takes.
    for line in [
        "ext load pager",
        "pager touch 4",
        "ext load cache",
        "ext load hog",
        "phys squeeze 10",
        "hog vector",
        "vm pager",
        "ext unload hog",
        "ext unload cache",
        "ext unload pager",
    ] {
        command(&mut session, line);
    }
    let mem_before = memory_figures(&command(&mut session, "mem"));
    let phys_before = command(&mut session, "phys");
    assert!(phys_row(&phys_before, "pager").is_none(), "{phys_before}");

    assert!(command(&mut session, "ext load pager").contains("loaded pager"));
    let phys = command(&mut session, "phys");
    let (image, pinned, _, _) = phys_row(&phys, "pager").expect("pager's image is its frames");
    assert!(image > 0 && image == pinned, "{phys}");
    // The image is a VirtAddr range of pager's in the image zone, every page
    // mapped by Translation, W^X.
    let vm = command(&mut session, "vm pager");
    let ranges: Vec<&str> = vm.lines().filter(|l| l.contains("  range ")).collect();
    assert_eq!(ranges.len(), 1, "{vm}");
    assert!(ranges[0].contains(" pager "), "{vm}");
    assert!(ranges[0].contains(" image 0xffffffff9"), "{vm}");
    assert!(
        ranges[0].contains(&format!("{image:>6} pages  {image:>6} mapped")),
        "{vm}"
    );
    assert!(vm.contains(" r-x "), "{vm}");
    assert!(!vm.contains("rwx") && !vm.contains("-wx"), "{vm}");
    let touch = command(&mut session, "pager touch 64");
    assert!(
        touch.contains("64 faults handled, 64 frames mapped"),
        "{touch}"
    );
    let phys = command(&mut session, "phys");
    assert_eq!(
        phys_row(&phys, "pager"),
        Some((image + 64, image, 65, 0)),
        "{phys}"
    );
    let vm = command(&mut session, "vm pager");
    assert!(vm.contains("64 pages      64 mapped"), "{vm}");
    assert!(vm.contains(" rw- "), "{vm}");
    // A second touch gives the first range back before taking a new one.
    let touch = command(&mut session, "pager touch 16");
    assert!(
        touch.contains("16 faults handled, 16 frames mapped"),
        "{touch}"
    );
    let phys = command(&mut session, "phys");
    assert_eq!(
        phys_row(&phys, "pager").map(|r| r.0),
        Some(image + 16),
        "{phys}"
    );

    command(&mut session, "ext load cache");
    command(&mut session, "ext load hog");
    let phys = command(&mut session, "phys");
    assert_eq!(
        phys_row(&phys, "cache").map(|r| r.0 - r.1),
        Some(256),
        "{phys}"
    );
    assert_eq!(
        phys_row(&phys, "hog").map(|r| r.0 - r.1),
        Some(256),
        "{phys}"
    );

    let squeeze = command(&mut session, "phys squeeze 300");
    let (asked, gave, taken) = squeeze_row(&squeeze, "cache");
    assert!(asked > 0 && gave >= asked && taken == 0, "{squeeze}");
    let (asked, gave, taken) = squeeze_row(&squeeze, "hog");
    assert!(asked > 0 && gave == 0 && taken == asked, "{squeeze}");
    assert!(squeeze.contains("repossessed: "), "{squeeze}");
    let vector = command(&mut session, "hog vector");
    assert_eq!(
        number_after(&vector, "hog: repossession vector:"),
        Some(taken),
        "{vector}"
    );
    let phys = command(&mut session, "phys");
    assert_eq!(phys_row(&phys, "hog").map(|r| r.3), Some(taken), "{phys}");
    // The guarantee: squeezing everything leaves each owner 8 frames.
    command(&mut session, "phys squeeze 100000");
    let phys = command(&mut session, "phys");
    for owner in ["hog", "cache", "pager"] {
        let (frames, pinned, _, _) = phys_row(&phys, owner).expect("still listed");
        assert!(frames - pinned <= 8, "{owner}: {phys}");
    }
    let (frames, pinned, _, _) = phys_row(&phys, "hog").expect("listed");
    assert_eq!(frames - pinned, 8, "{phys}");

    for name in ["hog", "cache", "pager"] {
        let out = command(&mut session, &format!("ext unload {name}"));
        assert!(out.contains(&format!("unloaded {name}")), "{out}");
    }
    let phys = command(&mut session, "phys");
    for owner in ["hog", "cache", "pager"] {
        assert!(phys_row(&phys, owner).is_none(), "{phys}");
    }
    assert_eq!(phys_lines(&phys), phys_lines(&phys_before));
    assert_eq!(memory_figures(&command(&mut session, "mem")), mem_before);
    assert!(command(&mut session, "vm").contains("  none"));
    assert!(command(&mut session, "vm pager").contains("  none"));
}
