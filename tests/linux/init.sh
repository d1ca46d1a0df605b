#!/bin/busybox sh
# /init of the Linux-on-emu test's initramfs (tests/linux/make-initramfs.sh puts it there).
# It reports what the guest sees of the platform between marker lines the test parses,
# then runs the scenario the kernel command line names with vmcore.test=:
#   poweroff  `poweroff -f` at once (ACPI S5: the domain must end with status 0)
#   button    wait for a power-button press (vmcore_domain_shutdown() on the host): poll
#             the SCI's count in /proc/interrupts every 0.2 s and power off when it rises
#   virtio    load the virtio drivers; /dev/vda (ext4, read-write): check /hello.txt, write
#             /newfile, sync, umount; /dev/vdb (the same kind of image, read-only): mount
#             -o ro, and a raw write must fail; the hardware RNG must be virtio's and give
#             bytes; then `poweroff -f`. Markers VMCORE-BLK-* / VMCORE-RO-* / VMCORE-RNG-*.
#   killwrite write and sync files on /dev/vda until the host kills the machine
#   NAME      any tests/linux/scenarios/NAME.sh (sourced; the helpers below are theirs)
# Any other value (or none) leaves a shell on the console, for manual use.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
export PATH=/bin
echo "VMCORE-INIT-REACHED"

scenario=
for arg in $(cat /proc/cmdline); do
    case $arg in vmcore.test=*) scenario=${arg#vmcore.test=} ;; esac
done

echo "VMCORE-BEGIN-PCI"
for d in /sys/bus/pci/devices/*; do
    [ -e "$d" ] || continue
    echo "${d##*/} vendor=$(cat "$d/vendor") device=$(cat "$d/device") class=$(cat "$d/class")"
done
echo "VMCORE-END-PCI"
echo "VMCORE-BEGIN-INTERRUPTS"
cat /proc/interrupts
echo "VMCORE-END-INTERRUPTS"
echo "VMCORE-BEGIN-DMESG"
dmesg | grep -iE "RSDP|MADT|config space|ACPI|IOAPIC|PCI"
echo "VMCORE-END-DMESG"
echo "VMCORE-BEGIN-CPUINFO"
grep -E "^(vendor_id|cpu family|model|stepping|flags)[[:space:]]*:" /proc/cpuinfo
echo "VMCORE-END-CPUINFO"

# The ACPI SCI's count, summed over the CPUs: the numbers after the "N:" label of the
# /proc/interrupts line whose last field is "acpi" (0 while there is no such line).
sci_count() {
    awk '$NF == "acpi" { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i }
         END { print s + 0 }' /proc/interrupts
}

# Every module of /lib/modules in the order make-initramfs.sh wrote (the test passes them
# in dependency order: the ring, the bus, the PCI transport's helpers, the transport, the
# device drivers), except the ACPI button driver, which only the button scenario wants.
load_virtio() {
    for m in $(cat /lib/modules/order); do
        [ "$m" = button ] && continue
        insmod /lib/modules/$m.ko || echo "VMCORE-INSMOD-FAILED $m"
    done
}

# Wait up to 10 s for a path to appear (a device node a driver creates).
wait_for() {
    n=0
    while [ ! -e "$1" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
}

# A scenario of its own file (tests/linux/scenarios/NAME.sh) runs instead of the ones
# below; it ends with `poweroff -f` or falls through to the shell.
if [ -n "$scenario" ] && [ -f "/scenarios/$scenario.sh" ]; then
    . "/scenarios/$scenario.sh"
    scenario=done
fi

case $scenario in
poweroff)
    echo "VMCORE-POWERING-OFF"
    poweroff -f
    echo "VMCORE-POWEROFF-RETURNED"
    ;;
button)
    # The ACPI button driver is a module in Debian's kernel (CONFIG_ACPI_BUTTON=m); it
    # installs the fixed power-button event handler, which enables the event (PM1_EN), so
    # without it a press never raises the SCI.
    if [ -e /lib/modules/button.ko ]; then
        insmod /lib/modules/button.ko && echo "VMCORE-BUTTON-DRIVER-LOADED"
    fi
    before=$(sci_count)
    echo "VMCORE-WAITING-FOR-BUTTON sci=$before"
    while :; do
        now=$(sci_count)
        if [ "$now" -gt "$before" ]; then
            echo "VMCORE-BUTTON-SCI sci=$before->$now"
            poweroff -f
            echo "VMCORE-POWEROFF-RETURNED"
            break
        fi
        sleep 0.2
    done
    ;;
virtio)
    load_virtio
    n=0
    while { [ ! -b /dev/vda ] || [ ! -b /dev/vdb ]; } && [ $n -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    ls -l /dev/vd* 2>&1
    mkdir -p /mnt/a /mnt/b
    if mount -t ext4 /dev/vda /mnt/a; then
        echo "VMCORE-BLK-CONTENT $(cat /mnt/a/hello.txt)"
        echo "written by the guest through virtio-blk" >/mnt/a/newfile && sync &&
            echo "VMCORE-BLK-WRITTEN"
        umount /mnt/a && echo "VMCORE-BLK-UMOUNTED"
    else
        echo "VMCORE-BLK-MOUNT-FAILED"
    fi
    echo "VMCORE-RO-FLAG $(cat /sys/block/vdb/ro 2>&1)"
    if mount -t ext4 -o ro /dev/vdb /mnt/b; then
        echo "VMCORE-RO-CONTENT $(cat /mnt/b/hello.txt)"
        umount /mnt/b
    fi
    if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; then
        echo "VMCORE-RO-WRITE-SUCCEEDED"
    else
        echo "VMCORE-RO-WRITE-REFUSED"
    fi
    echo "VMCORE-RNG-CURRENT $(cat /sys/class/misc/hw_random/rng_current 2>&1)"
    echo "VMCORE-RNG-BYTES $(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
    echo "VMCORE-BEGIN-VIRTIO-IRQS"
    grep virtio /proc/interrupts
    echo "VMCORE-END-VIRTIO-IRQS"
    echo "VMCORE-POWERING-OFF"
    poweroff -f
    echo "VMCORE-POWEROFF-RETURNED"
    ;;
killwrite)
    # Write files and sync in a loop until the host kills the machine mid-write: the
    # host then repairs the image with e2fsck.
    load_virtio
    n=0
    while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    mkdir -p /mnt/a
    mount -t ext4 /dev/vda /mnt/a || echo "VMCORE-BLK-MOUNT-FAILED"
    i=0
    while :; do
        dd if=/dev/urandom of=/mnt/a/f$((i % 40)) bs=4096 count=16 2>/dev/null
        [ $((i % 4)) -eq 0 ] && sync
        i=$((i + 1))
        [ $i -eq 20 ] && echo "VMCORE-WRITING"
    done
    ;;
esac
echo "VMCORE-SHELL"
exec setsid cttyhack sh
