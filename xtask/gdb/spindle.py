"""gdb helpers for Spindle: symbols of the extensions the kernel has loaded.

`cargo xtask gdb` sources this file after loading the kernel's symbols at
their run-time addresses, then runs `spindle-symbols DIR`, DIR being where
the build keeps each extension's unstripped object (`NAME.debug.o`).

The kernel publishes its loaded extensions in `SPINDLE_DEBUG_EXTENSIONS`
(kernel-image/src/debug/extensions.rs documents the layout): per extension,
its name and every placed section of its object with its address. After
each load (before the extension's `init` runs) and each unload (before its
image is unmapped) the kernel calls `spindle_debug_extensions_changed`;
a breakpoint there that never stops refreshes gdb's symbols, like Linux's
`lx-symbols` does for modules.

Commands:
  spindle-symbols [DIR]   load symbols of the loaded extensions now, and keep
                          them in step with loads and unloads
  spindle-extensions      list the loaded extensions and their images
"""

import os
import struct

import gdb

TABLE_SYMBOL = "SPINDLE_DEBUG_EXTENSIONS"
HOOK_SYMBOL = "spindle_debug_extensions_changed"
MAGIC = int.from_bytes(b"SPNDLEXT", "little")
VERSION = 1
HEADER = struct.Struct("<QIIIIQ")  # magic, version, capacity, record and section sizes, generation
RECORD = struct.Struct("<QQQQQQ")  # load_id, image start/end, sections, section_count, name_len
SECTION = struct.Struct("<QQQQ")  # address, size, name, name_len


def _read(address, length):
    return bytes(gdb.selected_inferior().read_memory(address, length))


def _table_address():
    """The table's run-time address, from the kernel's symbols."""
    text = gdb.execute("info address " + TABLE_SYMBOL, to_string=True)
    for word in reversed(text.replace(".", " ").split()):
        if word.startswith("0x"):
            return int(word, 16)
    raise gdb.GdbError("no symbol %s: are the kernel's symbols loaded?" % TABLE_SYMBOL)


class Extension:
    """One loaded extension, as the kernel's table describes it."""

    def __init__(self, load_id, name, image, sections):
        self.load_id = load_id
        self.name = name
        self.image = image
        self.sections = sections  # [(name, address, size)]


def read_table():
    """The loaded extensions, or None while the kernel's memory is not
    readable yet (before the bootloader has mapped it)."""
    base = _table_address()
    try:
        header = HEADER.unpack(_read(base, HEADER.size))
    except gdb.MemoryError:
        return None
    magic, version, capacity, record_size, section_size, _generation = header
    if magic != MAGIC:
        return None
    if version != VERSION:
        raise gdb.GdbError(
            "debug table version %d, this script reads version %d" % (version, VERSION)
        )
    extensions = []
    records = _read(base + HEADER.size, capacity * record_size)
    for i in range(capacity):
        record = records[i * record_size : (i + 1) * record_size]
        load_id, start, end, sections_at, count, name_len = RECORD.unpack_from(record)
        if load_id == 0:
            continue
        name = record[RECORD.size : RECORD.size + name_len].decode("utf-8", "replace")
        raw = _read(sections_at, count * section_size) if count else b""
        sections = []
        for j in range(count):
            address, size, name_at, section_name_len = SECTION.unpack_from(raw, j * section_size)
            section_name = _read(name_at, section_name_len).decode("utf-8", "replace")
            sections.append((section_name, address, size))
        extensions.append(Extension(load_id, name, (start, end), sections))
    return extensions


class Symbols:
    """Keeps gdb's symbol files in step with the kernel's table."""

    def __init__(self):
        self.directory = None
        self.loaded = {}  # load_id -> (name, an address inside its symbol file)
        self.hook = None

    def refresh(self, verbose=False):
        extensions = read_table()
        if extensions is None:
            return
        current = {e.load_id: e for e in extensions}
        for load_id, (name, address) in list(self.loaded.items()):
            if load_id not in current:
                gdb.execute("remove-symbol-file -a 0x%x" % address, to_string=True)
                del self.loaded[load_id]
                if verbose:
                    print("spindle: removed the symbols of %s" % name)
        for extension in extensions:
            if extension.load_id not in self.loaded:
                self.add(extension, verbose)

    def add(self, extension, verbose):
        path = os.path.join(self.directory or ".", extension.name + ".debug.o")
        if not os.path.exists(path):
            print("spindle: no %s: %s loaded without symbols" % (path, extension.name))
            return
        placed = [(n, a) for (n, a, size) in extension.sections if size > 0 and n]
        if not placed:
            return
        command = "add-symbol-file %s %s" % (
            path,
            " ".join("-s %s 0x%x" % (n, a) for (n, a) in placed),
        )
        gdb.execute(command, to_string=True)
        self.loaded[extension.load_id] = (extension.name, placed[0][1])
        if verbose:
            print(
                "spindle: symbols of %s (%d sections) at 0x%x"
                % (extension.name, len(placed), extension.image[0])
            )

    def ensure_hook(self):
        if self.hook is None or not self.hook.is_valid():
            self.hook = ChangeHook(self)


class ChangeHook(gdb.Breakpoint):
    """Breaks on the kernel's change hook, refreshes, and never stops."""

    def __init__(self, symbols):
        super().__init__(HOOK_SYMBOL, internal=True)
        self.silent = True
        self.symbols = symbols

    def stop(self):
        try:
            self.symbols.refresh(verbose=True)
        except gdb.error as e:
            print("spindle: refreshing extension symbols failed: %s" % e)
        return False


SYMBOLS = Symbols()


class SpindleSymbols(gdb.Command):
    """Load the symbols of Spindle's loaded extensions, and keep them in
    step with loads and unloads.

Usage: spindle-symbols [DIR]
DIR holds the extensions' unstripped objects, NAME.debug.o
(target/spindle/debug/ by default)."""

    def __init__(self):
        super().__init__("spindle-symbols", gdb.COMMAND_FILES)

    def invoke(self, argument, from_tty):
        if argument.strip():
            SYMBOLS.directory = os.path.expanduser(argument.strip())
        elif SYMBOLS.directory is None:
            SYMBOLS.directory = os.path.join("target", "spindle", "debug")
        SYMBOLS.ensure_hook()
        SYMBOLS.refresh(verbose=True)


class SpindleExtensions(gdb.Command):
    """List the extensions the kernel has loaded: name, image, load id."""

    def __init__(self):
        super().__init__("spindle-extensions", gdb.COMMAND_STATUS)

    def invoke(self, argument, from_tty):
        extensions = read_table()
        if extensions is None:
            print("the kernel's memory is not readable yet")
            return
        if not extensions:
            print("no extension loaded")
        for e in extensions:
            state = "symbols loaded" if e.load_id in SYMBOLS.loaded else "no symbols"
            print(
                "%-20s 0x%x..0x%x  load %d, %d sections, %s"
                % (e.name, e.image[0], e.image[1], e.load_id, len(e.sections), state)
            )


SpindleSymbols()
SpindleExtensions()
