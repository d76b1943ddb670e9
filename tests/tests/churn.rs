//! Load/unload churn: `ext churn 1000` loads and unloads every example
//! extension of the catalogue, 1,000 cycles in all, and memory (frames and
//! heap) must come back exactly to the baseline taken after its warm-up
//! round; then the kernel still serves.

use std::time::Duration;

use spindle_tests::*;

/// The churn takes about 40 s under TCG on an idle host.
const CHURN_TIMEOUT: Duration = Duration::from_secs(600);

#[test]
fn a_thousand_load_unload_cycles_of_every_example_extension_leave_memory_exactly_at_baseline() {
    let (mut session, _) = boot(Firmware::Bios);
    let out = session
        .command("ext churn 1000", CHURN_TIMEOUT)
        .unwrap_or_else(|e| panic!("churn did not finish: {e}\n{}", session.output()));
    assert!(
        out.contains("churn: 1000 load/unload cycles in 77 rounds over 13 extensions ("),
        "{out}"
    );
    for extension in ["hello", "counter-client", "tracer", "hog", "stride-sched"] {
        let list = &out[out.find("extensions (").expect("the list")..];
        assert!(list.contains(extension), "{extension} not cycled: {out}");
    }
    let frames = number_after(&out, "churn: frames used ").expect("frames figure");
    let frames_after =
        number_after(&out, &format!("churn: frames used {frames} -> ")).expect("frames after");
    let heap = number_after(&out, "heap used ").expect("heap figure");
    let heap_after = number_after(&out, &format!("heap used {heap} -> ")).expect("heap after");
    assert_eq!((frames_after, heap_after), (frames, heap), "{out}");
    assert!(out.contains("churn: memory exactly at baseline"), "{out}");
    assert!(!out.contains("error:"), "{out}");
    // Nothing is left loaded, and the kernel still serves.
    assert!(command(&mut session, "ext list").contains("0 loaded"));
    let load = command(&mut session, "ext load hello");
    assert!(load.contains("loaded hello:"), "{load}");
    assert!(command(&mut session, "hello").contains("Hello from the hello extension!"));
    session.send_line("shutdown").unwrap();
    let (exit, output) = session.wait_exit(COMMAND_TIMEOUT).expect("QEMU exits");
    assert_eq!(exit, KernelExit::Success, "{output}");
}
