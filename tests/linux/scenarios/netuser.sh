# netuser (tests/linux/test_linux_netuser.py): virtio-net in "user" mode (libslirp, no
# host interface). eth0 is configured by DHCP (busybox udhcpc: the lease slirp gives);
# then fetch a page from the test's HTTP server on the host's loopback through the
# gateway 10.0.2.2 (port vmcore.port= on the command line), and serve a line on port 80,
# which the test reaches from the host through nics[0].ports. Markers VMCORE-NETUSER-*.
load_virtio
wait_for /sys/class/net/eth0
ip link set lo up
ip link set eth0 up
cat >/tmp/udhcpc.sh <<'SCRIPT'
#!/bin/sh
case "$1" in
bound|renew)
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}"
    echo "VMCORE-NETUSER-LEASE $ip/${mask:-24} router ${router%% *} dns ${dns%% *}"
    ;;
esac
SCRIPT
chmod +x /tmp/udhcpc.sh
udhcpc -i eth0 -q -n -t 10 -s /tmp/udhcpc.sh 2>/dev/null || echo "VMCORE-NETUSER-DHCP-FAILED"
port=
for arg in $(cat /proc/cmdline); do
    case $arg in vmcore.port=*) port=${arg#vmcore.port=} ;; esac
done
if wget -q -O /tmp/page "http://10.0.2.2:$port/page"; then
    echo "VMCORE-NETUSER-PAGE $(wc -c </tmp/page) $(sha256sum /tmp/page | cut -d' ' -f1)"
else
    echo "VMCORE-NETUSER-PAGE-FAILED"
fi
echo "reply from the guest" >/tmp/reply
echo "VMCORE-NETUSER-LISTENING"
nc -l -p 80 </tmp/reply >/tmp/got
echo "VMCORE-NETUSER-SERVED $(cat /tmp/got)"
echo "VMCORE-POWERING-OFF"
poweroff -f
