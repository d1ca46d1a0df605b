# console: load the virtio drivers (virtio_console among them), write a marker to the
# virtio-console port /dev/hvc0 (the host's consoles[0].output file must get it), then
# power off.
load_virtio
wait_for /dev/hvc0
if [ -e /dev/hvc0 ]; then
    echo "VMCORE-HVC0-PRESENT"
    echo "VMCORE-HVC0-MARKER written by the guest through virtio-console" >/dev/hvc0 ||
        echo "VMCORE-HVC0-WRITE-FAILED"
else
    echo "VMCORE-HVC0-MISSING"
fi
echo "VMCORE-POWERING-OFF"
poweroff -f
