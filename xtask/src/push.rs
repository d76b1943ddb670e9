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

/// A connection to a running kernel's push channel.
pub struct Client {
    stream: UnixStream,
    decoder: FrameDecoder,
}

impl Client {
    /// Connects to `socket`.
    pub fn connect(socket: &Path) -> Result<Self, ClientError> {
        let stream =
            UnixStream::connect(socket).map_err(|e| ClientError::Connect(socket.into(), e))?;
        Ok(Self {
            stream,
            decoder: FrameDecoder::default(),
        })
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
        let mut pending: Vec<u8> = Vec::new();
        loop {
            while !pending.is_empty() {
                let (used, outcome) = self.decoder.feed(&pending);
                pending.drain(..used);
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
                Ok(n) => pending.extend_from_slice(&buf[..n]),
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

    /// Asks the kernel for its build id.
    pub fn build_id(&mut self, timeout: Duration) -> Result<Digest256, ClientError> {
        self.send_raw(&encode_frame(FrameKind::Hello, 0, &[]))?;
        let frame = self.receive(timeout, "build id")?;
        if frame.kind != FrameKind::BuildId {
            return Err(ClientError::Unexpected(format!("{:?}", frame.kind)));
        }
        frame
            .payload
            .try_into()
            .map_err(|_| ClientError::Unexpected("a build id that is not 32 bytes".into()))
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
        let frame = self.receive(timeout, "answer")?;
        if frame.kind != FrameKind::Answer {
            return Err(ClientError::Unexpected(format!("{:?}", frame.kind)));
        }
        Answer::decode(&frame.payload).map_err(|e| ClientError::Unexpected(e.to_string()))
    }
}
