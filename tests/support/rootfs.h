/* A throwaway busybox-static root filesystem for container tests. */
#ifndef VT_ROOTFS_H
#define VT_ROOTFS_H

/* Make a rootfs in a new temporary folder: /bin/busybox (copied from the host's
 * busybox-static) with one symlink per applet in /bin, plus the usual empty folders.
 * Returns the folder (malloc'd) or NULL if the host has no static busybox. */
char *vt_rootfs_make(void);
/* Remove the folder and everything in it; frees @dir. */
void vt_rootfs_free(char *dir);

#endif
