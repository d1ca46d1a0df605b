/* virtio-rng (virtio 1.2 section 5.4): one request queue; every writable byte the driver
 * offers is filled from the host's getrandom(). */
#include <sys/random.h>

#include "virtio_pci.h"

/* At most this much per request: the driver asks for a few dozen bytes; a guest offering
 * its whole RAM would otherwise hold the I/O thread (and the transport's lock) for long. */
#define RNG_MAX_REQUEST (64u << 10)

static uint32_t rng_request(struct virtio_dev *vd, unsigned q, struct vq_chain *c)
{
    uint32_t total = 0;
    for (unsigned i = 0; i < c->nw && total < RNG_MAX_REQUEST; i++) {
        struct vq_seg *s = &c->seg[c->nr + i];
        uint32_t want = s->len < RNG_MAX_REQUEST - total ? s->len : RNG_MAX_REQUEST - total;
        uint32_t done = 0;
        while (done < want) {
            ssize_t n = getrandom(s->hva + done, want - done, 0);
            if (n <= 0)
                return total + done;    /* EINTR and the like: give what we have */
            done += (uint32_t)n;
        }
        total += done;
    }
    return total;
}

/* Stateless beyond the transport (a request is taken and answered under the transport's
 * lock): an empty snapshot part. */
static int rng_save(struct virtio_dev *vd, struct snap_buf *b)
{
    (void)vd;
    (void)b;
    return 0;
}

static int rng_restore(struct virtio_dev *vd, struct snap_rd *r)
{
    (void)vd;
    (void)r;
    return 0;
}

static const struct virtio_dev_ops rng_ops = {
    .save = rng_save,
    .restore = rng_restore,
    .type = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .class_code = 0xff0000,
    .nqueues = 1,
    .queue_max = 256,
    .request = rng_request,
};

int virtio_rng_create(struct machine *m, struct vmcore_err *err)
{
    int rc = virtio_pci_create(m, &rng_ops, NULL, 0, NULL, 0, "virtio-rng", NULL);
    if (rc)
        return err_config(err, rc, "rng", "cannot create the virtio-rng device");
    return 0;
}
