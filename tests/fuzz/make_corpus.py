#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/: small valid and near-valid
inputs for each fuzz target. Run from anywhere; it rewrites the seed_* files only, so
inputs added by hand (regressions, crash_*) stay. The committed files are its output."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed_" + name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- config
KERNEL = "/proc/self/exe"  # a regular file on every Linux host
vm = {"name": "fuzz", "backend": "emu", "memory_mib": 16, "vcpus": 2, "emu": {"jit": False},
      "boot": {"kernel": KERNEL, "format": "raw", "mode": "long", "load_address": 1048576,
               "entry": 1048576, "cmdline": "console=ttyS0"}}
ct = {"name": "ct", "backend": "container", "rootfs": "/", "rootfs_readonly": True,
      "hostname": "h", "process": {"args": ["/bin/sh", "-c", "true"], "env": ["PATH=/bin"],
                                   "cwd": "/", "uid": 0, "gid": 0, "terminal": False,
                                   "init": True},
      "limits": {"memory_bytes": 67108864, "pids": 64, "cpus": 0.5},
      "network": {"mode": "veth", "host_ifname": "vfuzz0", "address": "10.200.0.2/24",
                  "host_address": "10.200.0.1/24"},
      "mounts": [{"source": "/tmp", "target": "/mnt", "readonly": True}],
      "userns": {"enabled": True, "uid_map": [{"inside": 0, "outside": 100000, "count": 65536}],
                 "gid_map": [{"inside": 0, "outside": 100000, "count": 65536}]}}
configs = {
    "vm_raw.json": vm,
    "vm_auto.json": {"boot": {"kernel": KERNEL}},
    "vm_linux.json": {"backend": "kvm", "boot": {"kernel": KERNEL, "format": "linux",
                                                 "initrd": KERNEL, "cmdline": "quiet"}},
    "container.json": ct,
    "container_min.json": {"backend": "container", "rootfs": "/",
                           "process": {"args": ["/bin/true"]}},
    "empty_key.json": {"": 1},
    "unknown_key.json": {"nmae": "x"},
    "wrong_type.json": {"memory_mib": "64", "boot": {"kernel": KERNEL}},
    "out_of_range.json": {"vcpus": 0, "boot": {"kernel": KERNEL}},
    "mixed.json": {"backend": "container", "boot": {"kernel": KERNEL}},
    "bad_cidr.json": dict(ct, network={"mode": "veth", "host_ifname": "v0",
                                       "address": "300.1.1.1/33"}),
    "mount_dotdot.json": dict(ct, mounts=[{"source": "/tmp", "target": "/a/../b"}]),
    "relative.json": {"boot": {"kernel": "proc/self/exe", "format": "elf"}},
    "vm_disks.json": dict(vm, disks=[{"path": KERNEL, "readonly": True, "serial": "root"},
                                     {"path": "proc/self/exe"}], rng=True),
    "disks_bad.json": {"boot": {"kernel": KERNEL}, "rng": 1,
                       "disks": [{"serial": "123456789012345678901"}, {"path": "/"}, 3]},
}
for name, doc in configs.items():
    write("config", name, json.dumps(doc))
write("config", "not_object.json", "[1, 2]")
write("config", "malformed.json", '{"name": ')

# ---------------------------------------------------------------- images
def elf32(entry=0xc0200004, paddr=0x200000, vaddr=0xc0200000):
    code = b"\x90" * 16
    ehsize, phsize = 52, 32
    phoff = ehsize
    off = phoff + 2 * phsize
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    eh = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, entry, phoff, 0, 0, ehsize, phsize,
                             2, 0, 0, 0)
    ph0 = struct.pack("<IIIIIIII", 1, off, vaddr, paddr, len(code), 0x2000, 5, 0x1000)
    ph1 = struct.pack("<IIIIIIII", 4, 0, 0, 0, 0, 0, 4, 4)
    return eh + ph0 + ph1 + code


def elf64(entry=0x100000, paddr=0x100000):
    code = b"\xf4" * 16
    ehsize, phsize = 64, 56
    off = ehsize + phsize
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    eh = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, ehsize, 0, 0, ehsize, phsize,
                             1, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 5, off, paddr, paddr, len(code), 0x1000, 0x1000)
    return eh + ph + code


def mb_kludge(length=512, flags=0x10003, checksum=None):
    img = bytearray(b"\x90" * length)
    magic = 0x1BADB002
    cs = (-(magic + flags)) & 0xFFFFFFFF if checksum is None else checksum
    struct.pack_into("<IIIIIIII", img, 64, magic, flags, cs, 0x200040, 0x200000,
                     0x200000 + length, 0x210000, 0x200080)
    return bytes(img)


def mb_elf():
    """An ELF32 file with a multiboot header (no a.out kludge) in its first 8 KiB."""
    img = bytearray(elf32(entry=0x200004, paddr=0x200000, vaddr=0x200000))
    img += bytes((-len(img)) % 4)
    magic, flags = 0x1BADB002, 0x3
    img += struct.pack("<III", magic, flags, (-(magic + flags)) & 0xFFFFFFFF)
    return bytes(img)


def bzimage(setup_sects=3, kernel=1024, version=0x020F, xload=0x3, loadflags=0x1):
    img = bytearray((setup_sects + 1) * 512 + kernel)
    img[0x1F1] = setup_sects
    struct.pack_into("<H", img, 0x1FE, 0xAA55)
    img[0x200], img[0x201] = 0xEB, 0x66
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = loadflags
    struct.pack_into("<I", img, 0x22C, 0x37FFFFFF)
    struct.pack_into("<I", img, 0x230, 0x200000)
    struct.pack_into("<H", img, 0x236, xload)
    struct.pack_into("<I", img, 0x238, 255)
    struct.pack_into("<I", img, 0x260, 0x40000)
    for i in range(kernel):
        img[(setup_sects + 1) * 512 + i] = i & 0xFF
    return bytes(img)


hello = bytes.fromhex("66ba f803 b048 ee b069 ee b02a e6f4 f4")
images = {
    "raw": {"hello.bin": hello, "one.bin": b"\xf4", "empty.bin": b"",
            "zeros.bin": bytes(64)},
    "elf": {"elf32.elf": elf32(), "elf64.elf": elf64(), "truncated.elf": elf32()[:40],
            "entry_outside.elf": elf32(entry=0x12345678),
            "elf64_high.elf": elf64(paddr=0xFFFFFFFFFFFF0000)},
    "multiboot": {"kludge.bin": mb_kludge(), "bad_checksum.bin": mb_kludge(checksum=0),
                  "elf.bin": mb_elf(), "unknown_flags.bin": mb_kludge(flags=0x10103),
                  "short.bin": mb_kludge()[:76]},
    "linux": {"bzimage.bin": bzimage(), "old_protocol.bin": bzimage(version=0x0200),
              "no_64bit.bin": bzimage(xload=0), "truncated.bin": bzimage()[:0x300],
              "huge_setup.bin": bzimage(setup_sects=255)[:4096]},
}
for target, files in images.items():
    for name, data in files.items():
        write("loader_" + target, name, data)
        write("loader_auto", target + "_" + name, data)

# ---------------------------------------------------------------- pci
# Access programs in fuzz_pci.c's byte code: device A in slot 1 (BAR 0 I/O, BAR 1 MEM32,
# BARs 2-3 MEM64 with the MSI-X table at 0 and PBA at 0x800; MSI at 0x40, MSI-X at 0x58),
# device B in slot 9.
SIZE = {1: 0, 2: 1, 4: 2, 8: 3}


def op(kind, size=4, flags=0):
    return bytes([kind | SIZE[size] << 3 | flags])


def ecam_w(slot, reg, val, size=4):
    return op(0, size) + bytes([slot]) + struct.pack("<HQ", reg, val & (2**64 - 1))


def ecam_r(slot, reg, size=4):
    return op(1, size) + bytes([slot]) + struct.pack("<H", reg)


def cf8(val, size=None):
    return op(2, size or 4, 0x20 if size else 0) + struct.pack("<I", val)


def cfc_w(port, val, size=4):
    return op(3, size) + bytes([port]) + struct.pack("<I", val & 0xFFFFFFFF)


def cfc_r(port, size=4):
    return op(4, size) + bytes([port])


def bar(dev, index, off, val=0, size=4, read=False):
    return op(5, size, 0x20 if read else 0) + bytes([dev | index << 1]) + \
        struct.pack("<HQ", off, val)


def notify(dev, vector):
    return op(6) + bytes([dev, vector])


def intx(dev, level):
    return op(6, 4, 0x20 | (0x40 if level else 0)) + bytes([dev, 0])


RESET = op(7)


def cfg_addr(slot, reg):
    return 0x80000000 | slot << 11 | (reg & 0xFC)


sizing = b"".join(ecam_w(1, 0x10 + 4 * i, 0xFFFFFFFF) + ecam_r(1, 0x10 + 4 * i)
                  for i in range(6))
sizing += ecam_w(1, 0x30, 0xFFFFFFFF) + ecam_r(1, 0x30) + RESET
move = (ecam_w(1, 4, 3, 2) + bar(0, 0, 4, read=True) + bar(0, 1, 0x10, 0x55) +
        ecam_w(1, 0x10, 0xD000) + ecam_w(1, 0x16, 0xC800, 2) + ecam_w(1, 0x1C, 0x11) +
        bar(0, 0, 4, read=True) + bar(0, 1, 0x10, read=True) + bar(0, 2, 0x1000, 1, 8) +
        ecam_w(1, 4, 0, 2) + bar(0, 1, 0, read=True))
bad_places = (ecam_w(1, 4, 3, 2) + ecam_w(9, 4, 3, 2) + ecam_w(1, 0x14, 0x1000) +
              ecam_w(1, 0x14, 0xFEE00000) + ecam_w(1, 0x14, 0xFEC00000) +
              ecam_w(1, 0x14, 0xE0000000) + ecam_w(1, 0x14, 0xC0001000) +
              ecam_w(9, 0x14, 0xD0000000) + ecam_w(1, 0x10, 0xCE0) + ecam_w(1, 0x10, 0x3E0) +
              ecam_w(1, 0x18, 0xFFFFC000) + ecam_w(1, 0x1C, 0xFFFFFFFF) + RESET)
msi = (ecam_w(1, 0x44, 0xFEE01000) + ecam_w(1, 0x48, 0) + ecam_w(1, 0x4C, 0x4040, 2) +
       ecam_w(1, 0x42, 0x21, 2) + notify(0, 2) + ecam_w(1, 0x50, 2) + notify(0, 1) +
       ecam_r(1, 0x54) + ecam_w(1, 0x50, 0) + notify(0, 7) + ecam_w(1, 0x42, 0x71, 2) +
       notify(0, 3))
msix = (ecam_w(1, 4, 2, 2) + bar(0, 2, 0x30, 0xFEE02000, 8) + bar(0, 2, 0x38, 0x4055) +
        bar(0, 2, 0x3C, 0) + ecam_w(1, 0x5A, 0x8000, 2) + notify(0, 3) + notify(0, 0) +
        bar(0, 2, 0x800, size=8, read=True) + bar(0, 2, 0x3C, 1) + notify(0, 3) +
        bar(0, 2, 0x3C, 0) + ecam_w(1, 0x5A, 0xC000, 2) + notify(0, 3) +
        ecam_w(1, 0x5A, 0x8000, 2) + bar(0, 2, 0x7F, 2**64 - 1, 8) + bar(0, 2, 0x7D, 0, 8, True))
cf8_seq = (cf8(0x80000000) + cfc_r(0) + cfc_r(2, 2) + cf8(cfg_addr(1, 0)) + cfc_r(0) +
           cf8(cfg_addr(1, 4)) + cfc_w(0, 7, 2) + cfc_w(3, 0xFF, 1) + cfc_w(1, 0xFFFFFFFF, 4) +
           cf8(0x01, 1) + cf8(0x00010000 | 0x80000000) + cfc_r(0) + cf8(0) + cfc_r(0) +
           cf8(cfg_addr(5, 0)) + cfc_r(0))
intx_seq = (notify(0, 0) + intx(1, True) + intx(0, False) + ecam_w(1, 4, 0x400, 2) +
            intx(0, True) + ecam_w(1, 4, 0, 2) + ecam_w(1, 6, 0xFFFF, 2) + RESET +
            notify(1, 0) + intx(1, False))
pci = {"sizing.bin": sizing, "move.bin": move, "bad_places.bin": bad_places, "msi.bin": msi,
       "msix.bin": msix, "cf8.bin": cf8_seq, "intx.bin": intx_seq, "empty.bin": b"",
       "ext_space.bin": ecam_w(1, 0x100, 2**64 - 1, 8) + ecam_r(1, 0xFFE, 8) +
       ecam_w(0, 0xFFD, 2**64 - 1, 8) + ecam_r(31, 0xFFF, 2)}
for name, data in pci.items():
    write("pci", name, data)

# ---------------------------------------------------------------- irqchip
# Operations of fuzz_irqchip.c: an opcode byte and its little-endian arguments.
def io_reg(reg, value):
    return struct.pack("<BBI", 2, reg, value)


def redir(pin, lo, dest=0):
    return io_reg(0x11 + 2 * pin, dest << 24) + io_reg(0x10 + 2 * pin, lo)


def line(gsi, level):
    return struct.pack("<BBB", 3, gsi, level)


def msi(addr, data):
    return struct.pack("<BQI", 4, addr, data)


ACK, EOI = b"\x05", b"\x06"
LEVEL, MASKED = 1 << 15, 1 << 16
irq_inputs = {
    "edge.bin": redir(4, 0x41) + line(4, 1) + ACK + EOI + line(4, 0) + line(4, 1) + ACK + EOI,
    "level.bin": redir(17, 0x51 | LEVEL) + line(17, 1) + ACK + EOI + ACK + line(17, 0) + EOI
                 + line(17, 1) + ACK + struct.pack("<BHBQ", 0, 0x40, 2, 0x51) + ACK,
    "masked.bin": redir(18, 0x61 | LEVEL | MASKED) + line(18, 1) + redir(18, 0x61 | LEVEL)
                  + ACK + EOI,
    "pit.bin": redir(2, 0x32) + line(0, 1) + line(0, 0) + ACK + EOI
               + struct.pack("<BBB", 9, 7, 0x34) + struct.pack("<BBB", 9, 4, 100),
    "pic.bin": struct.pack("<BHI", 7, 0x350, 0x700) + struct.pack("<BBB", 9, 1, 0)
               + line(3, 1) + ACK + struct.pack("<BBB", 9, 0, 0x20),
    "msi.bin": msi(0xfee00000, 0x61) + ACK + EOI + msi(0xfee00008, 0x162) + ACK + EOI
               + msi(0xfee00000, 0xc064) + ACK + EOI,
    "msi_bad.bin": msi(0xfee00010, 0x61) + msi(0xfee00000, 0x10061) + msi(0xfed00000, 0x61)
                   + msi(0xfee00000, 0x5) + msi(0xfee01000, 0x61) + msi(2**64 - 1, 2**32 - 1),
    "nobody.bin": redir(5, 0x45, 3) + line(5, 1) + redir(19, 0x46 | LEVEL, 9) + line(19, 1)
                  + redir(22, 0x08) + line(22, 1) + redir(19, 0x46 | LEVEL) + ACK,
    "sizes.bin": b"".join(struct.pack("<BHBQ", 0, off, sz, 0xffffffffffffffff)
                          + struct.pack("<BHB", 1, off, sz)
                          for off in (0, 1, 0x10, 0x13, 0x40, 0xffc, 0x1000, 0x1007)
                          for sz in range(4)),
    "registers.bin": b"".join(io_reg(r, 0xffffffff) for r in range(256)),
}
for name, data in irq_inputs.items():
    write("irqchip", name, data)


# ---------------------------------------------------------------- virtqueue
# fuzz_virtqueue.c: header (size, flags, rounds, desc, avail, used) + the guest RAM image.
VQ_DESC, VQ_AVAIL, VQ_USED, VQ_BUF = 0x0, 0x400, 0x800, 0x1000
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4


def vq_input(descs, heads, size=16, flags=0, rounds=8, extra=None, addrs=None):
    """descs: (addr, len, flags, next) at VQ_DESC; heads: the available ring; extra:
    {address: bytes} placed in RAM too (indirect tables)."""
    d, a, u = addrs or (VQ_DESC, VQ_AVAIL, VQ_USED)
    ram = bytearray(VQ_BUF + 0x400)
    for i, (addr, ln, fl, nx) in enumerate(descs):
        struct.pack_into("<QIHH", ram, VQ_DESC + 16 * i, addr, ln, fl, nx)
    struct.pack_into("<HH", ram, VQ_AVAIL, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", ram, VQ_AVAIL + 4 + 2 * i, h)
    for addr, blob in (extra or {}).items():
        ram[addr:addr + len(blob)] = blob
    return struct.pack("<HBBIII", size, flags, rounds, d, a, u) + bytes(ram)


def table(descs):
    return b"".join(struct.pack("<QIHH", *x) for x in descs)


vq_inputs = {
    "blk_read.bin": vq_input([(VQ_BUF, 16, F_NEXT, 1), (VQ_BUF + 0x100, 512, F_NEXT | F_WRITE, 2),
                              (VQ_BUF + 0x300, 1, F_WRITE, 0)], [0]),
    "event_idx.bin": vq_input([(VQ_BUF, 64, F_WRITE, 0), (VQ_BUF + 64, 64, F_WRITE, 0)],
                              [0, 1, 0], flags=1),
    "indirect.bin": vq_input([(VQ_BUF + 0x200, 48, F_INDIRECT, 0)], [0],
                             extra={VQ_BUF + 0x200: table([(VQ_BUF, 16, F_NEXT, 1),
                                                           (VQ_BUF + 16, 32, F_NEXT | F_WRITE, 2),
                                                           (VQ_BUF + 48, 1, F_WRITE, 0)])}),
    "nested.bin": vq_input([(VQ_BUF + 0x200, 32, F_INDIRECT, 0)], [0],
                           extra={VQ_BUF + 0x200: table([(VQ_BUF + 0x200, 32, F_INDIRECT, 0),
                                                         (VQ_BUF, 16, 0, 0)])}),
    "loop.bin": vq_input([(VQ_BUF, 16, F_NEXT, 1), (VQ_BUF, 16, F_NEXT, 0)], [0]),
    "outside.bin": vq_input([(0xfffff000, 0x2000, F_WRITE, 0)], [0]),
    "wrap.bin": vq_input([(2**64 - 16, 0xffffffff, 0, 0)], [0]),
    "bad_index.bin": vq_input([(VQ_BUF, 16, 0, 0)], [0] * 20, size=16),
    "not_pow2.bin": vq_input([(VQ_BUF, 16, 0, 0)], [0], size=12),
    "rings_outside.bin": vq_input([], [], addrs=(0xfff00, VQ_AVAIL, VQ_USED)),
}
for name, data in vq_inputs.items():
    write("virtqueue", name, data)


# ---------------------------------------------------------------- snapshot
# A snapshot written from doc/snapshot.md alone (not by the library): a 2 MiB emu machine
# whose one vCPU, in flat protected mode at 0x100000, is about to print "ok\n" on COM1 and
# exit with status 0 through the debug-exit port; every device in its power-on state.
# tests/unit/test_snapshot.c restores seed_valid.vmsnap through the public API and runs it
# (its configuration names /proc/self/exe, which exists everywhere, as the kernel).
def crc32(data):
    import zlib
    return zlib.crc32(data) & 0xffffffff


def sstr(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def section(typ, payload, instance=0):
    return struct.pack("<IIQII", typ, instance, len(payload), crc32(payload), 0) + payload


def cpuid_leaves():
    brand = b"Intel(R) Core(TM)2 class CPU (vmcore emu)".ljust(48, b"\0")
    regs = {0: (0xa, int.from_bytes(b"Genu", "little"), int.from_bytes(b"ntel", "little"),
                int.from_bytes(b"ineI", "little")),
            1: (0x1067a, 0x00010800, (1 << 0) | (1 << 9) | (1 << 13) | (1 << 19) | (1 << 23),
                sum(1 << b for b in (0, 3, 4, 5, 6, 8, 9, 11, 13, 15, 16, 19, 24, 25, 26))),
            7: (0, 0, 0, 1 << 29),
            0x80000000: (0x80000008, 0, 0, 0),
            0x80000001: (0, 0, 1, (1 << 11) | (1 << 20) | (1 << 27) | (1 << 29)),
            0x80000007: (0, 0, 0, 1 << 8),
            0x80000008: (0x3028, 0, 0, 0)}
    for k in range(3):
        regs[0x80000002 + k] = struct.unpack("<4I", brand[16 * k:16 * k + 16])
    out = b""
    leaves = list(range(0, 0xb)) + list(range(0x80000000, 0x80000009))
    for leaf in leaves:
        out += struct.pack("<II4I", leaf, 0, *regs.get(leaf, (0, 0, 0, 0)))
    return struct.pack("<I", len(leaves)) + out


def vcpu_flat32(rip):
    seg = lambda sel, attr, base=0, limit=0xffffffff: struct.pack("<HQII", sel, base, limit, attr)
    s = struct.pack("<I", 1) + struct.pack("<16Q", *([0] * 4 + [0x80000] + [0] * 11))
    s += struct.pack("<QQ", rip, 2)
    data = seg(0x18, 0xc093)
    s += data + seg(0x10, 0xc09b) + data + data + data + data          # es cs ss ds fs gs
    s += seg(0, 0x10000, 0, 0) + seg(0, 0x8b, 0, 0xffff)               # ldtr tr
    s += struct.pack("<QH", 0, 0xffff) + struct.pack("<QH", 0, 0x3ff)  # gdtr idtr
    s += struct.pack("<6Q", 0x11, 0, 0, 0, 0, 0)                       # cr0 cr2 cr3 cr4 cr8 efer
    s += struct.pack("<8Q", *([0] * 6 + [0xffff0ff0, 0x400]))           # dr0..dr7
    s += struct.pack("<9Q", 0, 0, 0, 0, 0, 0, 0, 0, 0x0007040600070406)
    s += struct.pack("<Q", 0)                                          # tsc
    s += struct.pack("<4Q", 0xfee00900, 1, 0, 0) + struct.pack("<4Q", 0, 0, 0, 0)
    s += bytes(256) + struct.pack("<IHHH", 0x1f80, 0x37f, 0, 0) + bytes(80) + b"\0\0"
    return s


def device(name, typ, state):
    return sstr(name) + sstr(typ) + struct.pack("<I", 1) + state


def devices():
    bridge = bytearray(4096)
    bridge[0:4] = struct.pack("<HH", 0x8086, 0x29c0)
    bridge[0x0b] = 0x06                                    # class 06 00 00: host bridge
    pic = bytes([0, 0xfb, 0, 0, 0x08, 0, 0, 0, 0, 0]) + bytes([0, 0xff, 0, 0, 0x70, 0, 0, 0, 0, 0])
    pit = b"".join(struct.pack("<IQ6BHHB", 0x10000, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0)
                   for _ in range(3)) + struct.pack("<Q", 0)
    lapic = struct.pack("<B10I", 0, 0, 0xff, 0, 0xffffffff, 0, 0, 0, 0, 0, 0)
    lapic += struct.pack("<7I", *([0x10000] * 7)) + bytes(96) + struct.pack("<QQ", 0, 0)
    return [
        ("com1", "uart8250", bytes([0, 0, 0, 0, 0, 0, 0, 0x0c, 0]) + b"\0\0" +
         struct.pack("<III", 0, 0, 0)),
        ("debug-exit", "debug-exit", b""),
        ("i8042", "i8042", bytes([0x45, 0x1c, 0, 0x03, 0, 0, 0])),
        ("cmos", "cmos", b"\0" + bytes(128)),
        ("acpi-pm", "acpi-pm", struct.pack("<5HBQQ", 0, 0, 0, 0, 0, 0, 0, 0)),
        ("pci-host", "pci-host", struct.pack("<I", 0) + bytes(bridge) + struct.pack("<Q", 0)),
        ("i8259", "i8259", pic + b"\0"),
        ("i8254", "i8254", pit),
        ("ioapic", "ioapic", struct.pack("<BB", 0, 0) + struct.pack("<24Q", *([1 << 16] * 24)) +
         struct.pack("<I", 0)),
        ("lapic0", "lapic", lapic),
    ]


def snapshot(mutate=None):
    code = bytes.fromhex("66baf803" "b06f" "ee" "b06b" "ee" "b00a" "ee" "b000" "e6f4" "ebfe")
    config = json.dumps({"backend": "emu", "boot": {"format": "raw", "kernel": KERNEL,
                         "load_address": 1048576, "mode": "protected"}, "memory_mib": 2,
                         "name": "seed"}, separators=(",", ":"), sort_keys=True)
    secs = [section(1, sstr("emu") + sstr(config) + sstr("/")),
            section(2, struct.pack("<IQQ", 1, 2 << 20, 0) + cpuid_leaves()),
            section(3, vcpu_flat32(0x100000))]
    for k, (name, typ, state) in enumerate(devices()):
        secs.append(section(4, device(name, typ, state), k))
    secs.append(section(5, struct.pack("<Q", 0x100000) + code.ljust(4096, b"\0")))
    if mutate:
        secs = mutate(secs)
    body = b"VMCSNAP\n" + struct.pack("<II", 1, 0) + b"".join(secs)
    return body + section(0xffff, struct.pack("<IQ", len(secs), len(body)))


write("snapshot", "valid.vmsnap", snapshot())
write("snapshot", "no_vcpu.vmsnap", snapshot(lambda s: s[:2] + s[3:]))
write("snapshot", "extra_device.vmsnap",
      snapshot(lambda s: s[:-1] + [section(4, device("x", "x", b""), 10)] + s[-1:]))
write("snapshot", "ram_outside.vmsnap",
      snapshot(lambda s: s[:-1] + [section(5, struct.pack("<Q", 2 << 20) + bytes(4096))]))
valid = snapshot()
write("snapshot", "truncated.vmsnap", valid[:len(valid) // 2])
write("snapshot", "bad_magic.vmsnap", b"VMCSNAQ\n" + valid[8:])
