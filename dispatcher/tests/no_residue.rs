//! Installing and then removing handlers leaves the heap exactly as it was.
//!
//! The kernel relies on this: after an extension is unloaded, `mem` must
//! show the figures from before it was loaded. This test binary counts every
//! live heap byte with its own global allocator, so it holds a single test
//! (parallel tests would disturb the count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use dispatcher::{Event, PrincipalIssuer};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

#[test]
fn install_uninstall_and_revoke_leave_no_allocation_behind() {
    let issuer = PrincipalIssuer::take().expect("only taker in this binary");
    let owner = issuer.issue("kernel");
    let (event, authority) = Event::<u64, u64>::builder("Test.Residue")
        .original(|n| *n)
        .key(|n| n % 4)
        .result_handler(|a, b| a + b)
        .declare(&owner)
        .unwrap();
    authority.set_authorizer(|_| dispatcher::Decision::Allow);
    let extension = issuer.issue("extension");
    // Warm up: the first raise may set up lazily initialised state.
    event.raise(&1).unwrap();
    let before = live();

    // Uninstall by the holder, with guards, a keyed binding and ordering.
    let plain = event
        .binding(|n| n + 1)
        .guard(|n| *n > 0)
        .install(&extension)
        .unwrap();
    let keyed = event.binding(|n| n * 2).key(1).install(&extension).unwrap();
    let first = event.binding(|_| 7).first().install(&extension).unwrap();
    assert_eq!(event.raise(&5).unwrap(), 7 + 5 + 6 + 10);
    plain.uninstall().unwrap();
    keyed.uninstall().unwrap();
    first.uninstall().unwrap();
    assert_eq!(event.raise(&5).unwrap(), 5);
    assert_eq!(
        live(),
        before,
        "install + uninstall kept {} bytes",
        live() - before
    );

    // Revocation of a principal (what the kernel does at unload).
    let bindings: Vec<_> = (0..20)
        .map(|i| {
            event
                .binding(move |n| n + i)
                .key(i % 4)
                .install(&extension)
                .unwrap()
        })
        .collect();
    let revoked = issuer.revoke(&extension);
    assert_eq!(revoked.uninstalled, 20);
    assert_eq!(extension.alive_binding_objects(), 0);
    drop(bindings);
    assert_eq!(event.raise(&5).unwrap(), 5);
    assert_eq!(live(), before, "revocation kept {} bytes", live() - before);
}
