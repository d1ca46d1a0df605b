/* virtio-rng (virtio 1.2 section 5.4): one request queue; every writable byte the driver
 * offers is filled from the host's getrandom(). */
#include <sys/random.h>

#include "virtio_pci.h"

static uint32_t rng_request(struct virtio_dev *vd, unsigned q, struct vq_chain *c)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < c->nw; i++) {
        struct vq_seg *s = &c->seg[c->nr + i];
        uint32_t done = 0;
        while (done < s->len) {
            ssize_t n = getrandom(s->hva + done, s->len - done, 0);
            if (n <= 0)
                return (uint32_t)total + done;  /* EINTR and friends: give what we have */
            done += (uint32_t)n;
        }
        total += s->len;
    }
    /* The used length is 32 bits; a chain may offer more (segments of up to 4 GiB). */
    return total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
}

static const struct virtio_dev_ops rng_ops = {
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
