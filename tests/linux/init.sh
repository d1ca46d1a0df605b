#!/bin/busybox sh
# /init of the Linux-on-emu test's initramfs (tests/linux/make-initramfs.sh puts it there).
# It reports what the guest sees of the platform between marker lines the test parses,
# then runs the scenario the kernel command line names with vmcore.test=:
#   poweroff  `poweroff -f` at once (ACPI S5: the domain must end with status 0)
#   button    wait for a power-button press (vmcore_domain_shutdown() on the host): poll
#             the SCI's count in /proc/interrupts every 0.2 s and power off when it rises
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

# The ACPI SCI's count, summed over the CPUs: the numbers after the "N:" label of the
# /proc/interrupts line whose last field is "acpi" (0 while there is no such line).
sci_count() {
    awk '$NF == "acpi" { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i }
         END { print s + 0 }' /proc/interrupts
}

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
esac
echo "VMCORE-SHELL"
exec setsid cttyhack sh
