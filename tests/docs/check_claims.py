#!/usr/bin/env python3
"""Claims the documentation once made that the code contradicts (issue #11): fail when one
comes back. FORBIDDEN: (file, regular expression that must not match, why); REQUIRED:
(file, expression that must match, why). Files are relative to the source folder.

    python3 tests/docs/check_claims.py [SOURCE_DIR]
"""
import os
import re
import sys

FORBIDDEN = [
    ("doc/guide.md", r"installs no signal handlers", "kvm installs a SIGRTMAX-3 handler"),
    ("include/vmcore/ctx.h", r"no signal handlers", "kvm installs a SIGRTMAX-3 handler"),
    ("doc/guide.md", r"a container's process was killed by signal N \|",
     "VMs report 128 + N too (shutdown 143, kill 137)"),
    ("include/vmcore/event.h", r"A container's init was killed by a signal\. \*/",
     "VMs report signal exits too"),
    ("lib/backend/emu/emu_backend.c", r"local APIC, which is not implemented",
     "emu has a local APIC (lib/machine/lapic.c)"),
    ("doc/linux-on-emu.md", r"apt-get download linux-image-6\.1\.0-\d+-cloud-amd64",
     "the kernel package's name changes: look it up"),
    ("doc/linux-on-emu.md", r'vmlinuz-6\.1\.0-\d+-cloud-amd64"',
     "the configuration must not pin the kernel version"),
    ("examples/python/sandbox.py", r"seconds without output", "--timeout is a run limit"),
    ("scripts/demo.sh", r'echo "\\?\$ vmcore run examples/configs/',
     "examples/configs/*.json do not run from the source folder"),
    ("doc/config.md", r"io_uring is not used yet", "virtio-blk uses io_uring by default"),
    ("doc/architecture.md", r"not io_uring \(not done yet",
     "virtio-blk uses io_uring by default"),
    ("lib/machine/virtio_blk.c", r"io_uring is not used yet",
     "virtio-blk uses io_uring by default"),
    ("doc/architecture.md", r"thread-pool\s+fallback;\s+there is none",
     "virtio-blk falls back to a thread pool (VMCORE_BLK_THREADS)"),
    ("lib/machine/virtio_blk.c", r"There\s+\*?\s*is no thread pool",
     "virtio-blk falls back to a thread pool (VMCORE_BLK_THREADS)"),
]
REQUIRED = [
    ("README.md",
     r'if \(vmcore_domain_new_file\(&d, ctx, "vm\.json"\) != 0\) \{[^}]*return [^}]*\}\n'
     r"vmcore_domain_subscribe",
     "the README snippet must not use d after a failed create"),
    ("doc/config.md", r"`VMCORE_BLK_URING=0`", "the switch to the synchronous virtio-blk path"),
]


def main() -> int:
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    bad = 0
    for rules, must in ((FORBIDDEN, False), (REQUIRED, True)):
        for path, regex, why in rules:
            with open(os.path.join(src, path), encoding="utf-8") as f:
                m = re.search(regex, f.read())
            if must and not m:
                print("%s: lacks /%s/: %s" % (path, regex, why))
                bad += 1
            elif not must and m:
                print("%s: \"%s\": %s" % (path, m.group(0), why))
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
