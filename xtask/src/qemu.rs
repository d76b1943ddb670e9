//! Booting Spindle under QEMU and talking to its serial shell.
//!
//! Shared by `cargo xtask run`/`test` and by the integration tests in
//! `tests/`. The kernel's console is COM1 on QEMU's stdio; the kernel ends
//! the run through the `isa-debug-exit` device, whose status xtask maps back:
//! QEMU status 33 (`0x10 << 1 | 1`) is success, 35 (`0x11 << 1 | 1`) failure.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use std::{fmt, fs, thread};

/// The shell's prompt, exactly as the kernel prints it.
pub const PROMPT: &str = "spindle> ";

/// OVMF firmware images from Debian's `ovmf` package.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// See [`OVMF_CODE`].
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Which firmware boots the disk image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS (QEMU's default) with the MBR image.
    Bios,
    /// OVMF with the GPT image.
    Uefi,
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bios => "BIOS",
            Self::Uefi => "UEFI",
        })
    }
}

/// How to start QEMU.
#[derive(Clone, Debug)]
pub struct QemuOptions {
    /// The disk image.
    pub image: PathBuf,
    /// BIOS or UEFI.
    pub firmware: Firmware,
    /// Guest RAM in MiB (`-m`).
    pub memory_mib: u32,
    /// Kernel command line, passed through fw_cfg (`opt/spindle/cmdline`).
    pub cmdline: Option<String>,
    /// Start stopped, with QEMU's gdb stub on 127.0.0.1:[`Self::gdb_port`]
    /// (`-gdb ... -S`): the CPU waits for a debugger's `continue`.
    pub gdb: bool,
    /// The gdb stub's port (used when [`Self::gdb`] is set).
    pub gdb_port: u16,
    /// Directory for scratch files (the UEFI variable store copy).
    pub scratch_dir: PathBuf,
    /// The push channel: COM2 on a unix socket QEMU listens on
    /// (`cargo xtask push` connects to it); `None`: no COM2.
    pub push_socket: Option<PathBuf>,
}

impl QemuOptions {
    /// Options with 256 MiB and no command line.
    pub fn new(
        image: impl Into<PathBuf>,
        firmware: Firmware,
        scratch_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            image: image.into(),
            firmware,
            memory_mib: 256,
            cmdline: None,
            gdb: false,
            gdb_port: crate::gdb::DEFAULT_PORT,
            scratch_dir: scratch_dir.into(),
            push_socket: None,
        }
    }

    /// The QEMU command line.
    pub fn command(&self) -> io::Result<Command> {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-m", &format!("{}M", self.memory_mib)]);
        cmd.args(accelerator_args());
        cmd.args([
            "-serial",
            "stdio",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ]);
        // Without a push socket there is no COM2 at all (the kernel then
        // starts no receiver).
        if let Some(path) = &self.push_socket {
            {
                // A stale socket file from a killed run would stop QEMU binding.
                let _ = fs::remove_file(path);
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                cmd.args([
                    "-chardev",
                    &format!("socket,id=push,path={},server=on,wait=off", path.display()),
                    "-serial",
                    "chardev:push",
                ]);
            }
        }
        cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        if self.firmware == Firmware::Uefi {
            fs::create_dir_all(&self.scratch_dir)?;
            // Each run gets its own variable store: OVMF writes to it
            // (sessions of one process boot side by side too).
            static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let session = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let vars = self
                .scratch_dir
                .join(format!("ovmf-vars-{}-{session}.fd", std::process::id()));
            fs::copy(OVMF_VARS, &vars).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{OVMF_VARS}: {e} (install Debian's ovmf package)"),
                )
            })?;
            cmd.args([
                "-drive",
                &format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
            ]);
            cmd.args([
                "-drive",
                &format!("if=pflash,format=raw,file={}", vars.display()),
            ]);
        }
        cmd.args([
            "-drive",
            // snapshot=on: the image is never written, so parallel runs can share it.
            &format!("format=raw,snapshot=on,file={}", self.image.display()),
        ]);
        if let Some(cmdline) = &self.cmdline {
            // fw_cfg's `string=` ends at a comma; commas are doubled to escape them.
            cmd.args([
                "-fw_cfg",
                &format!(
                    "name=opt/spindle/cmdline,string={}",
                    cmdline.replace(',', ",,")
                ),
            ]);
        }
        if self.gdb {
            cmd.args(["-gdb", &format!("tcp:127.0.0.1:{}", self.gdb_port), "-S"]);
        }
        Ok(cmd)
    }
}

/// `-accel tcg`, or KVM when it really works here: `/dev/kvm` opens and the
/// CPU advertises hardware virtualisation (a software `/dev/kvm` without VMX
/// or SVM makes the kernel hundreds of times slower than TCG).
pub fn accelerator_args() -> Vec<String> {
    let kvm_opens = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let has_vt = fs::read_to_string("/proc/cpuinfo")
        .map(|info| {
            info.lines()
                .any(|l| l.starts_with("flags") && (l.contains(" vmx") || l.contains(" svm")))
        })
        .unwrap_or(false);
    if kvm_opens && has_vt {
        vec!["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()]
    } else {
        vec!["-accel".into(), "tcg".into(), "-cpu".into(), "max".into()]
    }
}

/// How a kernel run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelExit {
    /// `shutdown`, or all in-kernel tests passed (QEMU status 33).
    Success,
    /// Panic or failed tests (QEMU status 35).
    Failure,
    /// QEMU ended some other way (e.g. a triple fault with `-no-reboot`
    /// exits 0, which must not read as success).
    Unexpected(Option<i32>),
}

impl KernelExit {
    /// Interprets QEMU's exit status.
    pub fn from_status(status: ExitStatus) -> Self {
        match status.code() {
            Some(33) => Self::Success,
            Some(35) => Self::Failure,
            other => Self::Unexpected(other),
        }
    }
}

impl fmt::Display for KernelExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("kernel exited cleanly"),
            Self::Failure => f.write_str("kernel reported failure (panic or failed tests)"),
            Self::Unexpected(Some(code)) => write!(f, "QEMU exited with unexpected status {code}"),
            Self::Unexpected(None) => f.write_str("QEMU was killed by a signal"),
        }
    }
}

/// Why waiting on a session failed.
#[derive(Debug)]
pub enum SessionError {
    /// The deadline passed first; holds the output so far.
    Timeout(String),
    /// QEMU exited first.
    Exited(KernelExit, String),
    /// Talking to QEMU failed.
    Io(io::Error),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("timed out waiting for the kernel"),
            Self::Exited(exit, _) => write!(f, "QEMU exited early: {exit}"),
            Self::Io(e) => write!(f, "I/O error talking to QEMU: {e}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

#[derive(Default)]
struct Shared {
    output: Vec<u8>,
    closed: bool,
}

/// A running QEMU whose console is piped through this process.
///
/// A reader thread collects everything the kernel prints (optionally
/// echoing it to our stdout); callers wait for the prompt and send lines.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    /// Output offset up to which the caller has consumed.
    mark: usize,
    reader: Option<thread::JoinHandle<()>>,
}

impl Session {
    /// Starts QEMU. With `echo`, the console output is also copied to stdout.
    pub fn spawn(options: &QemuOptions, echo: bool) -> io::Result<Self> {
        let mut child = options
            .command()?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting qemu-system-x86_64: {e}")))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdin = child.stdin.take();
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let reader_shared = Arc::clone(&shared);
        let reader = thread::spawn(move || pump_output(stdout, &reader_shared, echo));
        Ok(Self {
            child,
            stdin,
            shared,
            mark: 0,
            reader: Some(reader),
        })
    }

    /// Waits until the output since the last mark ends with the prompt;
    /// returns that output (prompt included) and moves the mark past it.
    pub fn wait_for_prompt(&mut self, timeout: Duration) -> Result<String, SessionError> {
        self.wait_until(timeout, |text| text.ends_with(PROMPT))
    }

    /// Waits until the output since the mark contains `needle`; returns the
    /// output up to the end of `needle` and moves the mark past it.
    pub fn wait_for_text(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, SessionError> {
        let needle = needle.to_owned();
        self.wait_until(timeout, move |text| text.contains(&needle))
    }

    fn wait_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String, SessionError> {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.shared;
        let mut shared = lock
            .lock()
            .expect("reader thread never panics holding the lock");
        loop {
            let text = String::from_utf8_lossy(&shared.output[self.mark..]).into_owned();
            if done(&text) {
                self.mark = shared.output.len();
                return Ok(text);
            }
            if shared.closed {
                drop(shared);
                let status = self.child.wait()?;
                return Err(SessionError::Exited(KernelExit::from_status(status), text));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SessionError::Timeout(text));
            }
            shared = ready
                .wait_timeout(shared, deadline - now)
                .expect("lock not poisoned")
                .0;
        }
    }

    /// Sends one line of input (a newline is appended).
    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin already closed"))?;
        stdin.write_all(line.as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.flush()
    }

    /// Sends `line` and waits for the prompt that follows its echo; returns
    /// what the kernel printed in between (the echoed line and the
    /// command's output, after anything printed asynchronously before it).
    pub fn command(&mut self, line: &str, timeout: Duration) -> Result<String, SessionError> {
        self.send_line(line)?;
        let text = self.wait_for_command_end(line, timeout)?;
        Ok(text.strip_suffix(PROMPT).unwrap_or(&text).to_owned())
    }

    /// Waits until the shell has echoed `line` (just sent) and printed the
    /// prompt after it; returns the output since the mark, that prompt
    /// included.
    ///
    /// Waiting for the echo first keeps the session in step when a kernel
    /// message, and the prompt the shell prints again after it (see the
    /// shell's module docs), arrive between two commands.
    fn wait_for_command_end(
        &mut self,
        line: &str,
        timeout: Duration,
    ) -> Result<String, SessionError> {
        let echo = format!("{}\r\n", shell_echo(line));
        let reprinted = format!("{PROMPT}{echo}");
        self.wait_until(timeout, |text| {
            let after_echo = if text.starts_with(&echo) {
                Some(echo.len())
            } else {
                text.find(&reprinted).map(|at| at + reprinted.len())
            };
            after_echo.is_some_and(|at| text[at..].ends_with(PROMPT))
        })
    }

    /// Waits for QEMU to exit; returns how, and the output since the mark.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<(KernelExit, String), SessionError> {
        match self.wait_until(timeout, |_| false) {
            Err(SessionError::Exited(exit, text)) => Ok((exit, text)),
            Err(other) => Err(other),
            Ok(_) => unreachable!("the predicate never holds"),
        }
    }

    /// Everything the kernel printed so far.
    pub fn output(&self) -> String {
        let shared = self.shared.0.lock().expect("lock not poisoned");
        String::from_utf8_lossy(&shared.output).into_owned()
    }

    /// Kills QEMU (if still running) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.kill();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn pump_output(stdout: impl Read, shared: &(Mutex<Shared>, Condvar), echo: bool) {
    let mut reader = BufReader::new(stdout);
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk.to_vec(),
        };
        reader.consume(chunk.len());
        if echo {
            let mut out = io::stdout().lock();
            let _ = out.write_all(&chunk);
            let _ = out.flush();
        }
        let (lock, ready) = shared;
        lock.lock()
            .expect("lock not poisoned")
            .output
            .extend_from_slice(&chunk);
        ready.notify_all();
    }
    let (lock, ready) = shared;
    lock.lock().expect("lock not poisoned").closed = true;
    ready.notify_all();
}

/// What the shell's line editor shows for `line` typed in full: printable
/// ASCII kept (up to its 1,024-byte limit), backspace and delete remove
/// the last character, anything else dropped.
fn shell_echo(line: &str) -> String {
    const MAX_LINE: usize = 1024;
    let mut shown = String::new();
    for byte in line.bytes() {
        match byte {
            0x08 | 0x7f => {
                shown.pop();
            }
            0x20..=0x7e if shown.len() < MAX_LINE => shown.push(byte as char),
            _ => {}
        }
    }
    shown
}

/// How a piped run ([`run_piped`]) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipedOutcome {
    /// QEMU exited (after `shutdown`, a panic, ...).
    Exited(KernelExit),
    /// The input ran out while the kernel was waiting for more; QEMU was stopped.
    InputEnded,
    /// The time limit passed; QEMU was stopped.
    Timeout,
}

/// Boots and feeds `input` to the shell one line at a time, each line only
/// after the kernel has printed its prompt (so no byte arrives before the
/// UART is ready, or while a command is running). When the input runs out
/// and the kernel asks for more, the run is over: QEMU is stopped and the
/// outcome is [`PipedOutcome::InputEnded`]. Returns the outcome and all
/// console output.
pub fn run_piped(
    options: &QemuOptions,
    input: impl BufRead,
    timeout: Duration,
    echo: bool,
) -> io::Result<(PipedOutcome, String)> {
    let deadline = Instant::now() + timeout;
    let mut session = Session::spawn(options, echo)?;
    let mut lines = input.lines();
    let mut sent: Option<String> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let prompt = match &sent {
            None => session.wait_for_prompt(left),
            Some(line) => session.wait_for_command_end(line, left),
        };
        match prompt {
            Ok(_) => {}
            Err(SessionError::Exited(exit, _)) => {
                return Ok((PipedOutcome::Exited(exit), session.output()));
            }
            Err(SessionError::Timeout(_)) => {
                session.kill();
                return Ok((PipedOutcome::Timeout, session.output()));
            }
            Err(SessionError::Io(e)) => return Err(e),
        }
        match lines.next() {
            Some(line) => {
                let line = line?;
                session.send_line(&line)?;
                sent = Some(line);
            }
            None => {
                session.kill();
                return Ok((PipedOutcome::InputEnded, session.output()));
            }
        }
    }
}

/// Paths of the images `cargo xtask image` produces.
#[derive(Clone, Debug)]
pub struct Images {
    /// MBR image for BIOS boot.
    pub bios: PathBuf,
    /// GPT image for UEFI boot.
    pub uefi: PathBuf,
}

impl Images {
    /// The images for a profile under `target_dir`.
    pub fn in_target_dir(target_dir: &Path, release: bool) -> Self {
        let dir = target_dir
            .join("spindle")
            .join(if release { "release" } else { "debug" });
        Self {
            bios: dir.join("spindle-bios.img"),
            uefi: dir.join("spindle-uefi.img"),
        }
    }

    /// The image for `firmware`.
    pub fn for_firmware(&self, firmware: Firmware) -> &Path {
        match firmware {
            Firmware::Bios => &self.bios,
            Firmware::Uefi => &self.uefi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shell_echo;

    #[test]
    fn the_echo_is_what_the_line_editor_shows() {
        assert_eq!(shell_echo("ext load hello"), "ext load hello");
        assert_eq!(shell_echo("helo\x08lo"), "hello");
        assert_eq!(shell_echo("a\tb"), "ab");
        assert_eq!(shell_echo(&"x".repeat(2000)).len(), 1024);
    }
}
