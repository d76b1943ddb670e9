//! The push channel: signed extensions arriving over COM2 while the kernel
//! runs (`cargo xtask push`).
//!
//! A kernel strand, `push-receiver`, polls COM2 and feeds what arrives to
//! the wire format's frame decoder (`spindle_package::push`: magic, length
//! limit, a BLAKE3 digest of every frame). It answers a `Hello` with the kernel's
//! build id and a `Push` with the outcome of [`request::handle`]: verified,
//! added to the catalogue and loaded, or refused with the reason. Every
//! outcome is printed on the console too. The shell never waits for the
//! channel: the receiver is a strand of its own, preempted like any other.
//!
//! Polling: while bytes are arriving the receiver keeps polling (a
//! 16-byte FIFO would otherwise cap a transfer at 16 bytes per tick), but
//! waits [`POLL_GAP_US`] between polls of an empty FIFO without touching
//! the port: under QEMU every port access takes the emulator's global
//! lock, and hammering the status register starves the thread that
//! refills the FIFO from the socket. When the line has been quiet for
//! [`SPIN_NS`] it sleeps a tick at a time. A frame that stays incomplete
//! for [`CUT_OFF_NS`] is abandoned and refused.

mod request;

use alloc::string::String;

use spindle_package::push::{
    Answer, FrameDecoder, FrameError, FrameKind, PushRequest, encode_frame,
};

use crate::arch::push_port;
use crate::time::uptime_ns;

/// Stack of the receiver strand: a push runs the whole load pipeline on it.
const RECEIVER_STACK: usize = 256 * 1024;
/// How long the receiver keeps polling after the last byte before it
/// sleeps between polls.
const SPIN_NS: u64 = 20_000_000;
/// Wait between polls of an empty FIFO while a transfer is running.
const POLL_GAP_US: u64 = 20;
/// Silence after which a frame in progress is abandoned as cut off.
pub const CUT_OFF_NS: u64 = 2_000_000_000;

/// Starts the receiver if COM2 exists.
pub fn init() {
    if !push_port::init() {
        log::info!("push: no UART on COM2; the push channel is off");
        return;
    }
    match crate::strands::spawn_service("push-receiver", RECEIVER_STACK, receive_loop) {
        Ok(id) => log::info!("push: listening on COM2 (strand {id})"),
        Err(e) => log::error!("push: cannot start the receiver strand: {e}"),
    }
}

/// Sends one frame back to the host.
fn reply(kind: FrameKind, payload: &[u8]) {
    push_port::write(&encode_frame(kind, 0, payload));
}

/// Sends an answer and prints it on the console.
fn answer(answer: &Answer) {
    if answer.loaded {
        log::info!("push: {}", answer.text);
    } else {
        log::warn!("push: refused: {}", answer.text);
    }
    reply(FrameKind::Answer, &answer.encode());
}

/// A refusal that is about the frame, not its contents.
fn refuse_frame(error: &FrameError) {
    answer(&Answer {
        loaded: false,
        text: alloc::format!("{error}"),
    });
}

fn receive_loop() {
    let mut decoder = FrameDecoder::default();
    let mut buf = [0u8; 512];
    let mut last_byte_ns = 0;
    let mut frame_start_ns = 0;
    loop {
        let n = push_port::read_available(&mut buf);
        let now = uptime_ns();
        if n == 0 {
            if decoder.in_progress()
                && now.saturating_sub(last_byte_ns) > CUT_OFF_NS
                && let Some(error) = decoder.abandon()
            {
                refuse_frame(&error);
            }
            if now.saturating_sub(last_byte_ns) < SPIN_NS {
                pause_us(POLL_GAP_US);
            } else if crate::strands::sleep_ticks(1).is_err() {
                x86_64::instructions::hlt();
            }
            continue;
        }
        if !decoder.in_progress() {
            frame_start_ns = now;
        }
        last_byte_ns = now;
        let mut input = &buf[..n];
        while !input.is_empty() {
            let (used, outcome) = decoder.feed(input);
            input = &input[used..];
            match outcome {
                None => {}
                Some(Err(FrameError::NoMagic { skipped })) => {
                    log::warn!("push: skipped {skipped} byte(s) that start no frame");
                }
                Some(Err(error)) => refuse_frame(&error),
                Some(Ok(frame)) => {
                    let receive_us = (uptime_ns() - frame_start_ns) / 1000;
                    handle_frame(frame.kind, frame.flags, frame.payload, receive_us);
                    frame_start_ns = uptime_ns();
                }
            }
        }
    }
}

/// Waits `us` microseconds on the TSC, touching no device.
fn pause_us(us: u64) {
    let end = crate::arch::rdtsc() + crate::time::tsc_hz() / 1_000_000 * us;
    while crate::arch::rdtsc() < end {
        core::hint::spin_loop();
    }
}

fn handle_frame(kind: FrameKind, flags: u8, payload: alloc::vec::Vec<u8>, receive_us: u64) {
    match kind {
        FrameKind::Hello => reply(FrameKind::BuildId, &request::build_id()),
        FrameKind::Push => {
            let bytes = payload.len();
            let outcome = match PushRequest::decode(flags, &payload) {
                Ok(push) => {
                    drop(payload);
                    request::handle(push, bytes, receive_us)
                }
                Err(malformed) => Answer {
                    loaded: false,
                    text: alloc::format!("{malformed}"),
                },
            };
            answer(&outcome);
        }
        FrameKind::BuildId | FrameKind::Answer => answer(&Answer {
            loaded: false,
            text: String::from("unexpected frame: the kernel only answers BuildId and Answer"),
        }),
    }
}
