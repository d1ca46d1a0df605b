/* virtio-console (virtio 1.2 section 5.3), the minimal form: one port, no
 * VIRTIO_CONSOLE_F_SIZE / F_MULTIPORT / F_EMERG_WRITE. Queue 0 (receiveq) is never
 * filled: host input is not implemented, its buffers stay with the driver. Queue 1
 * (transmitq): every readable byte is appended to the output file (doc/config.md
 * "consoles"). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtio_pci.h"

struct vcons {
    int fd;
};

static void write_all(int fd, const uint8_t *p, uint32_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;     /* a full disk or the like: the guest's output is dropped */
        p += n;
        len -= (uint32_t)n;
    }
}

static void cons_notify(struct virtio_dev *vd, unsigned q)
{
    struct vcons *vc = vd->opaque;
    struct vq_chain c;
    if (q != 1)
        return;         /* receiveq: the device has no input to give */
    for (;;) {
        int r = virtio_pci_pop(vd, q, &c);
        if (r < 0)
            return;
        if (r == 0) {
            if (virtio_pci_rearm(vd, q))
                continue;
            return;
        }
        for (unsigned i = 0; i < c.nr; i++)
            write_all(vc->fd, c.seg[i].hva, c.seg[i].len);
        virtio_pci_push(vd, q, &c, 0);
    }
}

static void cons_destroy(struct virtio_dev *vd)
{
    struct vcons *vc = vd->opaque;
    close(vc->fd);
    free(vc);
}

static const struct virtio_dev_ops cons_ops = {
    .type = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .class_code = 0x078000,     /* simple communication controller, other */
    .nqueues = 2,
    .queue_max = 256,
    .notify = cons_notify,
    .destroy = cons_destroy,
};

int virtio_console_create(struct machine *m, const struct config_console *cc, unsigned index,
                          struct vmcore_err *err)
{
    char path[32], name[32];
    snprintf(path, sizeof path, "consoles[%u].output", index);
    snprintf(name, sizeof name, "virtio-console%u", index);
    struct vcons *vc = calloc(1, sizeof *vc);
    if (!vc)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    vc->fd = open(cc->output, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (vc->fd < 0) {
        int e = errno;
        free(vc);
        return err_config(err, VMCORE_ECONFIG, path, "cannot open \"%s\": %s", cc->output,
                          strerror(e));
    }
    int rc = virtio_pci_create(m, &cons_ops, vc, 0, NULL, 0, name, NULL);
    if (rc) {
        close(vc->fd);
        free(vc);
        return err_config(err, rc, path, "cannot create the virtio-console device");
    }
    return 0;
}
