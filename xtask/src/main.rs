//! `cargo xtask`: Spindle's one build entry point.
//!
//! | command | what it does |
//! |---|---|
//! | `build` | builds the kernel for `x86_64-unknown-none` |
//! | `image` | builds, then makes the BIOS and UEFI disk images |
//! | `run` | boots the image under QEMU with the shell on stdio |
//! | `test` | host unit tests, in-kernel tests (BIOS and UEFI), integration tests |
//! | `check` | rustfmt and clippy (`-D warnings`) for host and kernel targets |
//! | `gdb` | attaches gdb to a kernel started with `run --gdb` |
//! | `bench` | in-kernel and host benchmarks beside SPIN's figures; JSON and SVG under `target/bench/` |
//! | `new-extension` | creates `extensions/NAME` from a template |
//! | `push` | builds, signs and loads one extension into the running kernel |
//!
//! Every command first checks the toolchain's components and target (and,
//! where QEMU is needed, QEMU and OVMF) and installs what is missing.
//!
//! Exit status of `run`: 0 after `shutdown`; 1 after a panic; 2 when QEMU
//! ended unexpectedly or could not start; 3 when piped input ended without
//! `shutdown`; 124 on timeout.

mod bench;
mod extensions;
mod gate;
mod images;
mod setup;
mod test_runner;

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use images::{image_builder, image_builder_target_dir, make_images};
use xtask::qemu::{Firmware, KernelExit, PipedOutcome, QemuOptions};
use xtask::workspace;

/// The bare-metal target of the kernel and extensions.
const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// Cargo flags for every build for [`KERNEL_TARGET`]: `core` and `alloc` are
/// rebuilt with the workspace's flags (`-C panic=unwind` needs unwind tables
/// the prebuilt ones lack); `compiler-builtins-mem` gives the kernel the
/// `memcpy` family the prebuilt `compiler_builtins` had.
const KERNEL_BUILD_STD: [&str; 2] = [
    "-Zbuild-std=core,alloc",
    "-Zbuild-std-features=compiler-builtins-mem",
];

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, boot and test Spindle")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the kernel for x86_64-unknown-none.
    Build(ProfileArgs),
    /// Build and create the BIOS and UEFI disk images.
    Image(ProfileArgs),
    /// Boot under QEMU with the serial console on stdio.
    Run(RunArgs),
    /// Run every test tier and print one `N passed, M failed` line.
    Test(TestArgs),
    /// rustfmt --check (workspace and fuzz targets), clippy -D warnings and
    /// cargo doc -D warnings (private items too), host and kernel targets
    /// (the kernel, its crates and every extension).
    Check,
    /// Attach gdb to a kernel started with `run --gdb`: kernel symbols at
    /// their run-time addresses, extension symbols following loads and
    /// unloads. Arguments after `--` go to gdb.
    Gdb(GdbArgs),
    /// Install what is missing (toolchain components, QEMU, OVMF) and build
    /// the bootloader image builder.
    Setup,
    /// Boot the kernel, run the in-kernel benchmark suites and the host
    /// criterion suite; print the table beside SPIN's figures, write
    /// target/bench/report.json and target/bench/raise.svg.
    Bench(BenchArgs),
    /// Create `extensions/NAME` from a template: an extension answering the
    /// shell command NAME.
    NewExtension {
        /// The extension's (and crate's, and command's) name.
        name: String,
    },
    /// Build extension NAME against the running kernel's build, sign it and
    /// load it into that kernel (started by `cargo xtask run`) over its
    /// push channel; prints the kernel's answer, exits 1 on refusal.
    Push(PushArgs),
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// A short run (about a minute of measuring): the baseline and dispatch
    /// suites in the kernel, short criterion measurements.
    #[arg(long)]
    quick: bool,
}

#[derive(Args)]
struct PushArgs {
    /// The extension to push.
    name: String,
    /// Unload the loaded extension of that name first and replace it
    /// (refused if other extensions import from it).
    #[arg(long)]
    replace: bool,
    /// Build with the release profile (push to a `run --release` kernel).
    #[arg(long)]
    release: bool,
    /// The running kernel's push socket (default: target/spindle/push.sock,
    /// where `cargo xtask run` puts it).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Send even if the running kernel is another build (it will refuse).
    #[arg(long)]
    force: bool,
}

#[derive(Args, Clone, Copy)]
struct ProfileArgs {
    /// Optimised build (the `release` profile).
    #[arg(long)]
    release: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Boot through UEFI (OVMF) instead of BIOS.
    #[arg(long)]
    uefi: bool,
    /// Start stopped and wait for a debugger (`cargo xtask gdb`).
    #[arg(long)]
    gdb: bool,
    /// Port of QEMU's gdb stub on 127.0.0.1 (with `--gdb`).
    #[arg(long, default_value_t = xtask::gdb::DEFAULT_PORT)]
    gdb_port: u16,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 256)]
    memory: u32,
    /// Kernel command line (e.g. `ktest` to run the in-kernel tests).
    #[arg(long)]
    cmdline: Option<String>,
    /// Stop the run after this many seconds (default: none when interactive,
    /// 300 when input is piped).
    #[arg(long)]
    timeout: Option<u64>,
}

#[derive(Args)]
struct GdbArgs {
    /// Debug the release build's kernel.
    #[arg(long)]
    release: bool,
    /// Port of QEMU's gdb stub on 127.0.0.1.
    #[arg(long, default_value_t = xtask::gdb::DEFAULT_PORT)]
    port: u16,
    /// Arguments for gdb (after `--`), e.g. `--batch -ex 'hbreak kernel_main'`.
    #[arg(last = true)]
    gdb_args: Vec<String>,
}

#[derive(Args)]
struct TestArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Skip the UEFI boot of the in-kernel suite (faster local runs).
    #[arg(long)]
    bios_only: bool,
}

/// A failed step, with what to tell the user.
#[derive(Debug)]
pub struct Failure {
    message: String,
    status: u8,
}

impl Failure {
    /// A failure with exit status 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: 1,
        }
    }

    fn with_status(message: impl Into<String>, status: u8) -> Self {
        Self {
            message: message.into(),
            status,
        }
    }
}

fn main() -> ExitCode {
    // Run as cargo's RUSTC_WRAPPER for the kernel+extensions build.
    if let Some(plan) = std::env::var_os(extensions::WRAPPER_PLAN_ENV) {
        let code = gate::rustc_wrapper(
            std::path::Path::new(&plan),
            std::env::args().skip(1).collect(),
        );
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Build(p) => setup::ensure_toolchain()
            .and_then(|()| extensions::build(p.release, extensions::Selection::All).map(drop)),
        Cmd::Image(p) => setup::ensure_toolchain()
            .and_then(|()| make_images(p.release))
            .map(|(images, _kernel)| images)
            .map(|images| {
                println!("{}\n{}", images.bios.display(), images.uefi.display());
            }),
        Cmd::Run(args) => run(&args),
        Cmd::Test(args) => test_runner::run(args.profile.release, !args.bios_only),
        Cmd::Check => check(),
        Cmd::Gdb(args) => gdb(&args),
        Cmd::Bench(args) => bench::run(args.quick, args.profile.release),
        Cmd::Setup => setup::ensure_toolchain()
            .and_then(|()| setup::ensure_qemu())
            .and_then(|()| image_builder().map(drop)),
        Cmd::NewExtension { name } => new_extension(&name),
        Cmd::Push(args) => push(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("xtask: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}

/// Runs a command with inherited stdio; fails if it exits non-zero.
pub fn run_checked(cmd: &mut Command) -> Result<(), Failure> {
    let status = cmd
        .status()
        .map_err(|e| Failure::new(format!("running {cmd:?}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{:?} failed ({status})",
            cmd.get_program()
        )))
    }
}

/// `cargo` as invoked by the user (the pinned toolchain's).
pub fn cargo() -> Command {
    let mut cmd = Command::new(cargo_path());
    cmd.current_dir(workspace::root());
    cmd
}

fn cargo_path() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// [`cargo`] at a lower CPU priority (`nice -n 10`, where `nice` exists),
/// for a build that runs beside the kernel's: the kernel's build is the
/// longest chain of dependent compilations (`core`, `alloc`, ... and last
/// the kernel binary, one codegen unit), while the image builder's boot
/// stages and the host benchmark suite compile in parallel, so giving way
/// to it keeps both cores busy to the end instead of leaving the kernel
/// binary to compile alone.
pub fn cargo_beside() -> Command {
    let nice = Command::new("nice")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !nice {
        return cargo();
    }
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "10"]).arg(cargo_path());
    cmd.current_dir(workspace::root());
    cmd
}

fn profile_dir(release: bool) -> &'static str {
    if release { "release" } else { "debug" }
}

/// The toolchain's `llvm-objcopy` (from the llvm-tools-preview component).
pub fn llvm_objcopy() -> Result<PathBuf, Failure> {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(path) = PATH.get() {
        return Ok(path.clone());
    }
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(workspace::root())
        .output()
        .map_err(|e| Failure::new(format!("running rustc: {e}")))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let path = sysroot
        .join("lib/rustlib")
        .join(host_triple())
        .join("bin/llvm-objcopy");
    if path.exists() {
        Ok(PATH.get_or_init(|| path).clone())
    } else {
        Err(Failure::new(format!(
            "{} is missing (component llvm-tools-preview)",
            path.display()
        )))
    }
}

fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .current_dir(workspace::root())
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "x86_64-unknown-linux-gnu".into())
}

/// Runs `here` on this thread and `beside` on another at the same time (two
/// builds in different target directories, say); returns both results.
pub fn side_by_side<A, B: Send>(
    here: impl FnOnce() -> Result<A, Failure>,
    beside: impl FnOnce() -> Result<B, Failure> + Send,
) -> (Result<A, Failure>, Result<B, Failure>) {
    std::thread::scope(|scope| {
        let other = scope.spawn(beside);
        let first = here();
        let second = other
            .join()
            .unwrap_or_else(|_| Err(Failure::new("a build thread panicked")));
        (first, second)
    })
}

fn gdb_target(kernel: PathBuf, release: bool, port: u16) -> xtask::gdb::GdbTarget {
    xtask::gdb::GdbTarget {
        kernel,
        objects: workspace::target_dir()
            .join("spindle")
            .join(profile_dir(release)),
        port,
    }
}

/// `cargo xtask gdb`: runs gdb on the kernel the last build made (no
/// rebuild: the running kernel is that one), attached to QEMU's stub.
fn gdb(args: &GdbArgs) -> Result<(), Failure> {
    setup::ensure_gdb()?;
    let profile = profile_dir(args.release);
    let record = xtask::gdb::kernel_path_record(&workspace::target_dir(), profile);
    let kernel = std::fs::read_to_string(&record).map_err(|_| {
        Failure::new(format!(
            "no {profile} kernel built yet ({} is missing): start one with `cargo xtask run --gdb{}`",
            record.display(),
            if args.release { " --release" } else { "" }
        ))
    })?;
    let target = gdb_target(PathBuf::from(kernel.trim()), args.release, args.port);
    let status = target
        .command(&args.gdb_args)
        .status()
        .map_err(|e| Failure::new(format!("running gdb: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::with_status(
            format!("gdb exited with {status}"),
            u8::try_from(status.code().unwrap_or(1)).unwrap_or(1),
        ))
    }
}

/// Scratch space for QEMU runs (UEFI variable stores).
pub fn scratch_dir() -> PathBuf {
    workspace::target_dir().join("spindle").join("scratch")
}

fn run(args: &RunArgs) -> Result<(), Failure> {
    setup::ensure_toolchain()?;
    setup::ensure_qemu()?;
    let (images, kernel) = make_images(args.profile.release)?;
    let firmware = if args.uefi {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let mut options = QemuOptions::new(images.for_firmware(firmware), firmware, scratch_dir());
    options.memory_mib = args.memory;
    options.cmdline = args.cmdline.clone();
    options.gdb = args.gdb;
    options.gdb_port = args.gdb_port;
    let socket = xtask::push::default_socket(&workspace::target_dir());
    eprintln!(
        "xtask: push channel (COM2) on {}: `cargo xtask push NAME` loads an extension into this kernel",
        socket.display()
    );
    options.push_socket = Some(socket);
    if args.gdb {
        setup::ensure_gdb()?;
        let target = gdb_target(kernel.clone(), args.profile.release, args.gdb_port);
        let port = if args.gdb_port == xtask::gdb::DEFAULT_PORT {
            String::new()
        } else {
            format!(" --port {}", args.gdb_port)
        };
        let release = if args.profile.release {
            " --release"
        } else {
            ""
        };
        eprintln!(
            "xtask: QEMU is waiting for a debugger on 127.0.0.1:{}; in another terminal run\n    \
             cargo xtask gdb{release}{port}\nxtask: (or by hand: {})",
            args.gdb_port,
            target.shell_line()
        );
    }
    if io::stdin().is_terminal() {
        run_interactive(&options, args.timeout)
    } else {
        run_piped(
            &options,
            Duration::from_secs(args.timeout.unwrap_or(300)),
            &kernel,
        )
    }
}

fn exit_result(exit: KernelExit) -> Result<(), Failure> {
    match exit {
        KernelExit::Success => Ok(()),
        KernelExit::Failure => Err(Failure::with_status(exit.to_string(), 1)),
        KernelExit::Unexpected(_) => Err(Failure::with_status(exit.to_string(), 2)),
    }
}

/// A terminal on stdin: QEMU gets the terminal itself (it switches it to raw
/// mode; Ctrl-A X quits).
fn run_interactive(options: &QemuOptions, timeout: Option<u64>) -> Result<(), Failure> {
    let mut child = options
        .command()
        .and_then(|mut cmd| cmd.stdin(Stdio::inherit()).stdout(Stdio::inherit()).spawn())
        .map_err(|e| Failure::with_status(format!("starting QEMU: {e}"), 2))?;
    let deadline = timeout.map(|s| Instant::now() + Duration::from_secs(s));
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Failure::with_status(e.to_string(), 2))?
        {
            return exit_result(KernelExit::from_status(status));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::with_status("timeout: stopped QEMU", 124));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Input from a pipe or a file: see [`xtask::qemu::run_piped`]. A panic's
/// backtrace is followed by the source lines of its kernel frames, from
/// the unstripped `kernel` ELF.
fn run_piped(options: &QemuOptions, timeout: Duration, kernel: &Path) -> Result<(), Failure> {
    let (outcome, output) = xtask::qemu::run_piped(options, io::stdin().lock(), timeout, true)
        .map_err(|e| Failure::with_status(format!("talking to QEMU: {e}"), 2))?;
    match xtask::symbolize::kernel_source_lines(&output, kernel) {
        Ok(lines) if !lines.is_empty() => {
            println!(
                "source lines of the kernel frames (from {}):",
                kernel.display()
            );
            print!("{lines}");
        }
        Ok(_) => {}
        Err(e) => eprintln!("xtask: no source lines for the backtrace: {e}"),
    }
    match outcome {
        PipedOutcome::Exited(exit) => exit_result(exit),
        PipedOutcome::InputEnded => {
            println!();
            Err(Failure::with_status(
                "input ended without `shutdown`: stopped QEMU",
                3,
            ))
        }
        PipedOutcome::Timeout => Err(Failure::with_status(
            format!("timeout after {} s: stopped QEMU", timeout.as_secs()),
            124,
        )),
    }
}

/// How long the kernel may take to answer a push (receive, verify, load).
const PUSH_ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// How long `push` waits for the running kernel's build id.
const BUILD_ID_TIMEOUT: Duration = Duration::from_secs(120);

/// `cargo xtask push NAME`: handshake (build id), build, sign, send, answer.
fn push(args: &PushArgs) -> Result<(), Failure> {
    use xtask::push::Client;
    setup::ensure_toolchain()?;
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| xtask::push::default_socket(&workspace::target_dir()));
    let started = Instant::now();
    let mut client = Client::connect(&socket).map_err(|e| Failure::new(e.to_string()))?;
    // Long enough for a kernel that `cargo xtask run` is still booting.
    let running = client
        .build_id(BUILD_ID_TIMEOUT)
        .map_err(|e| Failure::new(e.to_string()))?;
    let built = extensions::build_one(args.release, &args.name)?;
    let build_time = started.elapsed();
    // The image carries the kernel without DWARF (`images::strip_debug`); its
    // symbol table is what the running kernel hashes.
    let stripped = workspace::target_dir()
        .join("spindle")
        .join(profile_dir(args.release))
        .join("push-kernel.stripped");
    images::strip_debug(&built.kernel, &stripped)?;
    let kernel_elf = std::fs::read(&stripped)
        .map_err(|e| Failure::new(format!("{}: {e}", stripped.display())))?;
    let ours = spindle_package::push::build_id(&kernel_elf)
        .map_err(|e| Failure::new(format!("{}: {e}", built.kernel.display())))?;
    if ours != running {
        let message = format!(
            "the running kernel is build {} but these sources build kernel {}: the kernel or \
             interface sources changed since it booted, so `{}` would not link against it.\n\
             Restart the kernel with `cargo xtask run{}` (it rebuilds), then push again.",
            spindle_package::push::short_hex(&running, 8),
            spindle_package::push::short_hex(&ours, 8),
            args.name,
            if args.release { " --release" } else { "" }
        );
        if !args.force {
            return Err(Failure::new(message));
        }
        eprintln!("xtask: {message}\nxtask: --force: sending anyway");
    }
    let request = spindle_package::push::PushRequest {
        build_id: ours,
        replace: args.replace,
        name: built.name,
        version: built.version,
        digest: built.digest,
        signature: Some(built.signature),
        object: built.bundle,
    };
    let sent = Instant::now();
    let answer = client
        .push(&request, PUSH_ANSWER_TIMEOUT)
        .map_err(|e| Failure::new(e.to_string()))?;
    let kernel_time = sent.elapsed();
    println!("kernel: {}", answer.text);
    println!(
        "push: build {:.1} s, transfer + load {:.1} s, total {:.1} s ({} KiB)",
        build_time.as_secs_f64(),
        kernel_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        request.object.len() / 1024
    );
    if answer.loaded {
        Ok(())
    } else {
        Err(Failure::new(format!("the kernel refused {}", args.name)))
    }
}

/// `cargo xtask new-extension NAME`.
fn new_extension(name: &str) -> Result<(), Failure> {
    let packages: Vec<String> = extensions::cargo_metadata()?["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let dir = xtask::scaffold::create(&workspace::root().join("extensions"), name, &packages)
        .map_err(|e| Failure::new(e.to_string()))?;
    println!(
        "created {} (extension `{name}`, answering the shell command `{name}`)\n\
         next: `cargo xtask run` in one terminal, `cargo xtask push {name}` in another, \
         then type `{name}` at the prompt",
        dir.display()
    );
    Ok(())
}

fn check() -> Result<(), Failure> {
    setup::ensure_toolchain()?;
    run_checked(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // The fuzz targets are a workspace of their own.
    run_checked(cargo().args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]))?;
    // Host: every crate that builds for the host, with tests and benches;
    // the image builder in its own target directory (see
    // `image_builder_target_dir`).
    run_checked(cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "kernel-image",
        "--exclude",
        "image-builder",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run_checked(
        cargo()
            .args(["clippy", "--package", "image-builder", "--all-targets"])
            .arg("--target-dir")
            .arg(image_builder_target_dir())
            .args(["--", "-D", "warnings"]),
    )?;
    // Kernel target: the kernel, the no_std crates it links and every
    // extension (fixtures included).
    let packages = kernel_target_packages()?;
    let extensions = extensions::discover()?.len();
    let mut cmd = cargo();
    cmd.args(["clippy", "--target", KERNEL_TARGET])
        .args(KERNEL_BUILD_STD);
    for package in &packages {
        cmd.args(["--package", package]);
    }
    cmd.args(["--", "-D", "warnings"]);
    run_checked(&mut cmd)?;
    // Documentation, private items included, with warnings (broken links,
    // bad code blocks) denied: the host crates, then the kernel.
    run_checked(
        cargo()
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace", "--exclude", "kernel-image"])
            .args(["--exclude", "image-builder"])
            .args(["--no-deps", "--document-private-items"]),
    )?;
    run_checked(
        cargo()
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--package", "image-builder", "--target-dir"])
            .arg(image_builder_target_dir())
            .args(["--no-deps", "--document-private-items"]),
    )?;
    run_checked(
        cargo()
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--target", KERNEL_TARGET])
            .args(KERNEL_BUILD_STD)
            .args([
                "--package",
                "kernel-image",
                "--no-deps",
                "--document-private-items",
            ]),
    )?;
    println!(
        "xtask: check passed (rustfmt; clippy host + {KERNEL_TARGET}: {} packages, {extensions} of them extensions; cargo doc host + kernel)",
        packages.len()
    );
    Ok(())
}

/// Packages compiled for the kernel target: the kernel, every workspace
/// crate it depends on (directly or not), and every extension crate.
fn kernel_target_packages() -> Result<Vec<String>, Failure> {
    let metadata = extensions::cargo_metadata()?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let local_deps = |name: &str| -> Vec<String> {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["dependencies"].as_array())
            .into_iter()
            .flatten()
            .filter(|d| !d["path"].is_null() && d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect()
    };
    let mut found = vec!["kernel-image".to_owned()];
    let mut next = 0;
    while next < found.len() {
        for dep in local_deps(&found[next].clone()) {
            if !found.contains(&dep) {
                found.push(dep);
            }
        }
        next += 1;
    }
    // ktest-macros is a proc-macro: it runs on the host.
    found.retain(|p| p != "ktest-macros");
    for extension in extensions::discover()? {
        if !found.contains(&extension.name) {
            found.push(extension.name);
        }
    }
    Ok(found)
}
