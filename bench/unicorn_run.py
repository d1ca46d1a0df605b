#!/usr/bin/python3
"""Run a bench guest (the ELF built from bench/guests/) under Unicorn, the peer for emu MIPS.

The flat image is mapped where the multiboot header says, execution starts at the ELF
entry in 32-bit flat protected mode (what a multiboot loader hands over), OUT to COM1 is
collected as console output and OUT to 0xf4 ends the run. No per-instruction hooks, so
Unicorn runs at full speed. Prints one JSON line: {"ns": ..., "status": ..., "console": ...}.
"""
import json
import struct
import sys
import time

from unicorn import Uc, UC_ARCH_X86, UC_MODE_32, UC_HOOK_INSN
from unicorn.x86_const import UC_X86_INS_OUT, UC_X86_INS_IN

MEM_SIZE = 64 << 20


def main():
    if len(sys.argv) != 2:
        print("usage: unicorn_run.py GUEST.elf", file=sys.stderr)
        return 2
    elf = open(sys.argv[1], "rb").read()
    if elf[:4] != b"\x7fELF" or elf[4] != 1:
        print("unicorn_run.py: %s: not an ELF32 file" % sys.argv[1], file=sys.stderr)
        return 2
    entry = struct.unpack_from("<I", elf, 24)[0]
    phoff, = struct.unpack_from("<I", elf, 28)
    phnum, = struct.unpack_from("<H", elf, 44)
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, MEM_SIZE)
    for i in range(phnum):
        p_type, p_offset, p_vaddr, _, p_filesz, _, _, _ = struct.unpack_from(
            "<8I", elf, phoff + 32 * i)
        if p_type == 1:  # PT_LOAD
            uc.mem_write(p_vaddr, elf[p_offset:p_offset + p_filesz])
    console = bytearray()
    status = [None]

    def on_out(uc, port, size, value, user):
        if port == 0x3f8:
            console.append(value & 0xff)
        elif port == 0xf4:
            status[0] = value & 0xff
            uc.emu_stop()

    def on_in(uc, port, size, user):
        return 0xff

    uc.hook_add(UC_HOOK_INSN, on_out, None, 1, 0, UC_X86_INS_OUT)
    uc.hook_add(UC_HOOK_INSN, on_in, None, 1, 0, UC_X86_INS_IN)
    t0 = time.monotonic_ns()
    uc.emu_start(entry, 0xffffffff)
    ns = time.monotonic_ns() - t0
    print(json.dumps({"ns": ns, "status": status[0], "console": console.decode("latin-1")}))
    return 0 if status[0] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
