//! The push channel (COM2) of a running kernel: a signed extension pushed
//! while the shell runs is verified, added to the catalogue and loaded;
//! every kind of bad push is refused with a message on both sides, leaving
//! the catalogue and memory as they were and the console answering.
//!
//! The objects pushed here are the build's own signed bundles, read from
//! the ramdisk beside the boot image; the scaffold → push → edit →
//! `--replace` loop through `cargo xtask` is `tests/push_workflow.rs`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use spindle_package::push::{
    Answer, FLAG_REPLACE, FrameKind, HEADER_LEN, MAX_PAYLOAD, PushRequest, encode_frame,
};
use spindle_package::{Ramdisk, object_digest};
use spindle_tests::*;
use xtask::push::Client;

/// How long the kernel may take to answer a push.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A kernel with its push channel on a socket of its own.
struct Pushable {
    session: Session,
    client: Client,
    build_id: [u8; 32],
}

fn boot_pushable(test: &str) -> Pushable {
    let mut options = options(Firmware::Bios);
    let socket =
        std::env::temp_dir().join(format!("spindle-push-{}-{test}.sock", std::process::id()));
    options.push_socket = Some(socket.clone());
    let (session, _) = boot_with(&options);
    let mut client = Client::connect(&socket).expect("the push socket accepts");
    let build_id = client
        .build_id(Duration::from_secs(30))
        .expect("the kernel answers Hello with its build id");
    Pushable {
        session,
        client,
        build_id,
    }
}

/// The ramdisk beside the boot image (written by the same build).
fn ramdisk_bytes() -> Vec<u8> {
    let image = image(Firmware::Bios);
    let path: PathBuf = image.with_file_name("ramdisk.img");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A push of the ramdisk's signed `name`, built against `build_id`.
fn signed_push(name: &str, build_id: [u8; 32], replace: bool) -> PushRequest {
    let bytes = ramdisk_bytes();
    let ramdisk = Ramdisk::parse(&bytes).expect("the build's ramdisk parses");
    let entry = ramdisk
        .get(name)
        .unwrap_or_else(|| panic!("{name} in the ramdisk"));
    PushRequest {
        build_id,
        replace,
        name: entry.name.into(),
        version: entry.version.into(),
        digest: entry.digest,
        signature: entry.signature,
        object: entry.object.to_vec(),
    }
}

/// Sends `wire`; asserts the kernel refuses with `expected` on the channel
/// and on the console, and that memory and the console are as before.
fn refused_on_both_sides(test: &str, wire: impl FnOnce(&Pushable) -> Vec<u8>, expected: &str) {
    refused_after(test, &[], wire, expected);
}

/// [`refused_on_both_sides`] after the shell commands `setup`.
fn refused_after(
    test: &str,
    setup: &[&str],
    wire: impl FnOnce(&Pushable) -> Vec<u8>,
    expected: &str,
) {
    let mut kernel = boot_pushable(test);
    for line in setup {
        command(&mut kernel.session, line);
    }
    let before = memory_figures(&command(&mut kernel.session, "mem"));
    let list_before = command(&mut kernel.session, "ext list");
    let bytes = wire(&kernel);
    kernel
        .client
        .send_raw(&bytes)
        .expect("the socket takes the bytes");
    let answer = kernel
        .client
        .answer(ANSWER_TIMEOUT)
        .expect("the kernel answers");
    assert!(!answer.loaded, "{test}: accepted: {}", answer.text);
    assert!(
        answer.text.contains(expected),
        "{test}: answer {:?} lacks {expected:?}",
        answer.text
    );
    // The console says it too (logged before the answer was sent).
    let console = command(&mut kernel.session, "uptime");
    assert!(
        console.contains("push: refused:") && console.contains(expected),
        "{test}: console lacks the refusal:\n{console}"
    );
    assert_eq!(
        command(&mut kernel.session, "ext list"),
        list_before,
        "{test}: the catalogue changed"
    );
    let after = memory_figures(&command(&mut kernel.session, "mem"));
    assert_eq!(
        after.0, before.0,
        "{test}: a refused push changed the frames"
    );
    let drift = heap_used(&after.1).abs_diff(heap_used(&before.1));
    assert!(
        drift < SCHEDULER_NOISE_BYTES,
        "{test}: a refused push changed the heap by {drift} bytes: {} -> {}",
        before.1,
        after.1
    );
}

/// With the receiver strand sleeping beside the shell, `mem`'s heap figure
/// moves by one 88-byte allocation of the scheduler's between idle states
/// (seen in both directions, also with no push at all). Anything a push
/// could leak — the frame buffer, the object, a catalogue entry — is
/// kilobytes.
const SCHEDULER_NOISE_BYTES: u64 = 128;

/// The "N bytes used" of `mem`'s heap line.
fn heap_used(line: &str) -> u64 {
    number_after(line, "KiB,").unwrap_or_else(|| panic!("no used bytes in {line:?}"))
}

fn push_frame(request: &PushRequest) -> Vec<u8> {
    let flags = if request.replace { FLAG_REPLACE } else { 0 };
    encode_frame(FrameKind::Push, flags, &request.encode())
}

#[test]
fn a_pushed_extension_supersedes_the_catalogue_entry_loads_answers_and_unloads() {
    let mut kernel = boot_pushable("loads");
    let request = signed_push("hello", kernel.build_id, false);
    let answer: Answer = kernel
        .client
        .push(&request, ANSWER_TIMEOUT)
        .expect("the kernel answers");
    assert!(answer.loaded, "refused: {}", answer.text);
    eprintln!("kernel's answer: {}", answer.text);
    assert!(
        answer.text.starts_with("loaded hello: received ")
            && answer.text.contains(" ms; load ")
            && answer.text.contains("verify "),
        "{}",
        answer.text
    );
    let greeting = command(&mut kernel.session, "hello");
    assert!(
        greeting.contains("Hello from the hello extension!"),
        "{greeting}"
    );
    let list = command(&mut kernel.session, "ext list");
    let row = list
        .lines()
        .find(|l| l.starts_with("hello "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains("pushed") && row.contains("loaded at"), "{row}");
    let unload = command(&mut kernel.session, "ext unload hello");
    assert!(unload.contains("unloaded hello"), "{unload}");
    let gone = command(&mut kernel.session, "hello");
    assert!(gone.contains("error: unknown command 'hello'"), "{gone}");
    // And it can be loaded again from the catalogue, like any other.
    let again = command(&mut kernel.session, "ext load hello");
    assert!(again.contains("loaded hello:"), "{again}");
    // Loaded: a push replaces it only with --replace.
    let answer = kernel
        .client
        .push(&signed_push("hello", kernel.build_id, true), ANSWER_TIMEOUT)
        .expect("the kernel answers");
    assert!(
        answer.loaded && answer.text.starts_with("replaced and loaded hello: "),
        "{}",
        answer.text
    );
    assert!(command(&mut kernel.session, "hello").contains("Hello from the hello extension!"));
}

#[test]
fn a_push_of_a_loaded_name_is_refused_without_replace() {
    refused_after(
        "clash",
        &["ext load counter"],
        |k| push_frame(&signed_push("counter", k.build_id, false)),
        "counter: 'counter' is loaded (push with --replace to unload and replace it)",
    );
}

#[test]
fn an_unsigned_push_is_refused() {
    refused_on_both_sides(
        "unsigned",
        |k| {
            let mut request = signed_push("counter", k.build_id, true);
            request.signature = None;
            push_frame(&request)
        },
        "counter: verify: object is not signed",
    );
}

#[test]
fn a_tampered_push_is_refused() {
    refused_on_both_sides(
        "tampered",
        |k| {
            let mut request = signed_push("counter", k.build_id, true);
            let middle = request.object.len() / 2;
            request.object[middle] ^= 0x01;
            push_frame(&request)
        },
        "counter: verify: object was modified after it was built (BLAKE3 digest mismatch)",
    );
}

#[test]
fn a_push_signed_for_another_name_is_refused() {
    refused_on_both_sides(
        "renamed",
        |k| {
            let mut request = signed_push("counter", k.build_id, false);
            request.name = "counter2".into();
            push_frame(&request)
        },
        "counter2: verify: signature does not verify with the kernel's build key",
    );
}

#[test]
fn a_push_for_another_kernel_build_is_refused() {
    refused_on_both_sides(
        "other-build",
        |k| {
            let mut other = k.build_id;
            other[0] ^= 0xff;
            let mut request = signed_push("counter", other, true);
            // Consistent on its own: only the build id is wrong.
            request.digest = object_digest(&request.object);
            push_frame(&request)
        },
        "but this kernel is build",
    );
}

#[test]
fn a_corrupted_frame_is_refused() {
    refused_on_both_sides(
        "corrupted",
        |k| {
            let mut wire = push_frame(&signed_push("counter", k.build_id, true));
            let middle = wire.len() / 2;
            wire[middle] ^= 0x20;
            wire
        },
        "corrupted frame: its BLAKE3 digest does not match",
    );
}

#[test]
fn a_cut_off_push_is_refused_after_a_silence() {
    refused_on_both_sides(
        "cut-off",
        |k| {
            let wire = push_frame(&signed_push("counter", k.build_id, true));
            wire[..wire.len() / 2].to_vec()
        },
        "push cut off: ",
    );
}

#[test]
fn a_frame_above_the_limit_is_refused_from_its_header() {
    refused_on_both_sides(
        "oversized",
        |_| {
            let mut header = encode_frame(FrameKind::Push, 0, &[])[..HEADER_LEN].to_vec();
            header[8..12].copy_from_slice(&((MAX_PAYLOAD as u32) + 1).to_le_bytes());
            header
        },
        &format!(
            "frame of {} bytes refused: the channel takes at most {MAX_PAYLOAD} bytes",
            MAX_PAYLOAD + 1
        ),
    );
}

#[test]
fn a_push_during_a_load_in_progress_is_refused_and_the_load_completes() {
    let mut kernel = boot_pushable("busy");
    let before_list = command(&mut kernel.session, "ext list");
    // `slow-init` sleeps three seconds in init, holding the loader.
    kernel
        .session
        .send_line("ext load slow-init")
        .expect("console takes the line");
    std::thread::sleep(Duration::from_millis(700));
    let started = Instant::now();
    let answer = kernel
        .client
        .push(
            &signed_push("counter", kernel.build_id, true),
            ANSWER_TIMEOUT,
        )
        .expect("the kernel answers");
    assert!(!answer.loaded, "accepted during a load: {}", answer.text);
    assert_eq!(
        answer.text,
        "counter: a load is in progress (ext load slow-init); push again when it has finished"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the refusal waited for the load"
    );
    let load = kernel
        .session
        .wait_for_prompt(COMMAND_TIMEOUT)
        .expect("the shell's load finishes");
    assert!(
        load.contains("slow-init: init done") && load.contains("loaded slow-init:"),
        "{load}"
    );
    let list = command(&mut kernel.session, "ext list");
    let hello_row = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("hello "))
            .map(str::to_owned)
    };
    assert_eq!(
        hello_row(&list),
        hello_row(&before_list),
        "hello's entry changed"
    );
    // Once the loader is free, the same push goes through.
    let answer = kernel
        .client
        .push(&signed_push("hello", kernel.build_id, true), ANSWER_TIMEOUT)
        .expect("the kernel answers");
    assert!(answer.loaded, "{}", answer.text);
}
