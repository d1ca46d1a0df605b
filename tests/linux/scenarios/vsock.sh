# vsock: the virtio and vsock modules, then the guest half of test_linux_vsock.py.
load_virtio
if /bin/vsock_guest; then echo VMCORE-VSOCK-OK; else echo VMCORE-VSOCK-FAILED; fi
poweroff -f
