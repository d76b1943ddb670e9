//! The host's end of the push channel: a client for the socket that
//! `cargo xtask run` connects the kernel's COM2 to. `cargo xtask push` and
//! the integration tests use it. The wire format is
//! `spindle_package::push`.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spindle_package::Digest256;
use spindle_package::push::{
    Answer, FLAG_REPLACE, Frame, FrameDecoder, FrameError, FrameKind, PushRequest, encode_frame,
};

/// The socket `cargo xtask run` gives the kernel's COM2, under `target_dir`.
pub fn default_socket(target_dir: &Path) -> PathBuf {
    target_dir.join("spindle").join("push.sock")
}

/// What went wrong talking to the kernel.
#[derive(Debug)]
pub enum ClientError {
    /// No kernel listens on the socket.
    Connect(PathBuf, io::Error),
    /// Reading or writing failed.
    Io(io::Error),
    /// No answer in time.
    Timeout(&'static str),
    /// The kernel's frame was refused.
    Frame(FrameError),
    /// The kernel sent something else than expected.
    Unexpected(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(path, e) => write!(
                f,
                "no kernel on {} ({e}): start one with `cargo xtask run` in another terminal",
                path.display()
            ),
            Self::Io(e) => write!(f, "push channel: {e}"),
            Self::Timeout(what) => write!(f, "the kernel did not answer in time ({what})"),
            Self::Frame(e) => write!(f, "the kernel's answer was unreadable: {e}"),
            Self::Unexpected(what) => write!(f, "unexpected answer from the kernel: {what}"),
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// How long [`Client::build_id`] waits for an answer before it sends
/// `Hello` again.
pub const HELLO_INTERVAL: Duration = Duration::from_secs(1);

/// A connection to a running kernel's push channel.
pub struct Client {
    stream: UnixStream,
    decoder: FrameDecoder,
    /// Bytes read but not yet fed to the decoder (what followed the last
    /// frame returned).
    pending: Vec<u8>,
}

impl Client {
    /// Connects to `socket`.
    pub fn connect(socket: &Path) -> Result<Self, ClientError> {
        let stream =
            UnixStream::connect(socket).map_err(|e| ClientError::Connect(socket.into(), e))?;
        Ok(Self::over(stream))
    }

    /// A client on an already connected stream.
    fn over(stream: UnixStream) -> Self {
        Self {
            stream,
            decoder: FrameDecoder::default(),
            pending: Vec::new(),
        }
    }

    /// Sends raw bytes (tests send broken frames this way).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Waits for the next frame from the kernel.
    pub fn receive(&mut self, timeout: Duration, what: &'static str) -> Result<Frame, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            while !self.pending.is_empty() {
                let (used, outcome) = self.decoder.feed(&self.pending);
                self.pending.drain(..used);
                match outcome {
                    None => {}
                    Some(Ok(frame)) => return Ok(frame),
                    // Console noise before a frame is not an error.
                    Some(Err(FrameError::NoMagic { .. })) => {}
                    Some(Err(e)) => return Err(ClientError::Frame(e)),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout(what));
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(ClientError::Unexpected("the channel closed".into())),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ClientError::Timeout(what));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Asks the kernel for its build id, sending `Hello` again every
    /// [`HELLO_INTERVAL`] until an answer comes or `timeout` passes.
    ///
    /// A `Hello` written before the kernel's receiver runs (while QEMU or
    /// the kernel still boots) is lost: the UART has no one to hand it
    /// to. Repeating it makes `push` right after `run` wait for the boot
    /// instead of timing out. The kernel answers every `Hello` it reads,
    /// so more than one `BuildId` may come; [`Client::answer`] skips the
    /// extra ones.
    pub fn build_id(&mut self, timeout: Duration) -> Result<Digest256, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.send_raw(&encode_frame(FrameKind::Hello, 0, &[]))?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receive(left.min(HELLO_INTERVAL), "build id") {
                Ok(frame) if frame.kind == FrameKind::BuildId => {
                    return frame.payload.try_into().map_err(|_| {
                        ClientError::Unexpected("a build id that is not 32 bytes".into())
                    });
                }
                Ok(frame) => return Err(ClientError::Unexpected(format!("{:?}", frame.kind))),
                Err(ClientError::Timeout(_)) if Instant::now() < deadline => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a push and waits for the kernel's answer.
    pub fn push(
        &mut self,
        request: &PushRequest,
        timeout: Duration,
    ) -> Result<Answer, ClientError> {
        let flags = if request.replace { FLAG_REPLACE } else { 0 };
        self.send_raw(&encode_frame(FrameKind::Push, flags, &request.encode()))?;
        self.answer(timeout)
    }

    /// Waits for an [`Answer`].
    pub fn answer(&mut self, timeout: Duration) -> Result<Answer, ClientError> {
        let deadline = Instant::now() + timeout;
        let frame = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self.receive(left, "answer")?;
            match frame.kind {
                FrameKind::Answer => break frame,
                // The answer to a repeated `Hello` (see `build_id`).
                FrameKind::BuildId => {}
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        };
        Answer::decode(&frame.payload).map_err(|e| ClientError::Unexpected(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's end of a channel: reads frames the client sent.
    struct FakeKernel {
        stream: UnixStream,
        decoder: FrameDecoder,
    }

    impl FakeKernel {
        /// Reads until the next frame and returns its kind.
        fn next_kind(&mut self) -> FrameKind {
            let mut byte = [0u8; 1];
            loop {
                self.stream.read_exact(&mut byte).expect("client hung up");
                if let (_, Some(outcome)) = self.decoder.feed(&byte) {
                    return outcome.expect("the client sent a well-formed frame").kind;
                }
            }
        }

        fn send(&mut self, kind: FrameKind, payload: &[u8]) {
            self.stream
                .write_all(&encode_frame(kind, 0, payload))
                .unwrap();
        }
    }

    fn channel() -> (Client, FakeKernel) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let kernel = FakeKernel {
            stream: theirs,
            decoder: FrameDecoder::default(),
        };
        (Client::over(ours), kernel)
    }

    const ID: [u8; 32] = [7; 32];

    #[test]
    fn hello_is_repeated_until_a_kernel_that_was_still_booting_answers() {
        let (mut client, mut kernel) = channel();
        let booting = std::thread::spawn(move || {
            // The first two `Hello`s arrive while nothing listens.
            assert_eq!(kernel.next_kind(), FrameKind::Hello);
            assert_eq!(kernel.next_kind(), FrameKind::Hello);
            assert_eq!(kernel.next_kind(), FrameKind::Hello);
            kernel.send(FrameKind::BuildId, &ID);
            kernel
        });
        let started = Instant::now();
        let id = client.build_id(Duration::from_secs(30)).unwrap();
        assert_eq!(id, ID);
        assert!(started.elapsed() >= 2 * HELLO_INTERVAL);
        booting.join().unwrap();
    }

    #[test]
    fn extra_build_ids_from_repeated_hellos_are_skipped_before_the_answer() {
        let (mut client, mut kernel) = channel();
        // Both answers to two `Hello`s and the push's answer in one write:
        // the bytes after the first frame must not be lost.
        let mut bytes = encode_frame(FrameKind::BuildId, 0, &ID);
        bytes.extend(encode_frame(FrameKind::BuildId, 0, &ID));
        let answer = Answer {
            loaded: true,
            text: "loaded greeter".into(),
        };
        bytes.extend(encode_frame(FrameKind::Answer, 0, &answer.encode()));
        kernel.stream.write_all(&bytes).unwrap();
        assert_eq!(client.build_id(Duration::from_secs(5)).unwrap(), ID);
        let got = client.answer(Duration::from_secs(5)).unwrap();
        assert!(got.loaded);
        assert_eq!(got.text, "loaded greeter");
    }

    #[test]
    fn a_kernel_that_never_answers_is_a_timeout_after_several_hellos() {
        let (mut client, mut kernel) = channel();
        let silent = std::thread::spawn(move || {
            let mut hellos = 0;
            while kernel.next_kind() == FrameKind::Hello {
                hellos += 1;
                if hellos == 2 {
                    break;
                }
            }
            (hellos, kernel)
        });
        match client.build_id(HELLO_INTERVAL * 5 / 2) {
            Err(ClientError::Timeout("build id")) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        let (hellos, _kernel) = silent.join().unwrap();
        assert_eq!(hellos, 2);
    }

    #[test]
    fn any_other_frame_in_place_of_the_answer_is_unexpected() {
        let (mut client, mut kernel) = channel();
        kernel.send(FrameKind::Hello, &[]);
        match client.answer(Duration::from_secs(5)) {
            Err(ClientError::Unexpected(kind)) => assert_eq!(kind, "Hello"),
            other => panic!("expected Unexpected, got {other:?}"),
        }
    }
}
