# net (tests/linux/test_linux_net.py): virtio-net on a tap the test made in a network
# namespace of its own, the host side 10.0.2.1/24. eth0 gets 10.0.2.15/24; then ping the
# host, send 1 MiB to its port 5001 (the host hashes it), read what its port 5002 sends
# and print that hash. Markers VMCORE-NET-*.
load_virtio
wait_for /sys/class/net/eth0
echo "VMCORE-NET-MAC $(cat /sys/class/net/eth0/address)"
echo "VMCORE-NET-DRIVER $(basename "$(readlink /sys/class/net/eth0/device/driver)")"
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
if ping -c 3 -W 10 10.0.2.1; then
    echo "VMCORE-NET-PING-OK"
else
    echo "VMCORE-NET-PING-FAILED"
fi
dd if=/dev/urandom of=/tmp/up bs=4096 count=256 2>/dev/null
echo "VMCORE-NET-UP-SHA $(sha256sum /tmp/up | cut -d' ' -f1)"
# the host closes once it has all of it, which ends nc
nc 10.0.2.1 5001 </tmp/up
nc 10.0.2.1 5002 >/tmp/down
echo "VMCORE-NET-DOWN $(wc -c </tmp/down) $(sha256sum /tmp/down | cut -d' ' -f1)"
echo "VMCORE-POWERING-OFF"
poweroff -f
