/*
 * A blkif ring as xensim's C ends use it on x86-64: the barriers Xen's io/ring.h expects
 * from its includer, io/ring.h and io/blkif.h themselves, and a back end's checks on a
 * request. Included by test/interop/c/blkif_peer.c (the interop tests' C end) and
 * bench/c/blkif_loop.c (the bench's C baseline), so that both run the same checks.
 */
#ifndef XENSIM_XEN_BLKIF_H
#define XENSIM_XEN_BLKIF_H

#include <stdint.h>

/* x86-64 is TSO: the write and read barriers only stop the compiler; the full barrier
 * is a real fence, a locked instruction as Linux's virt_mb(). */
#define xen_mb()  __sync_synchronize()
#define xen_rmb() __asm__ __volatile__("" ::: "memory")
#define xen_wmb() __asm__ __volatile__("" ::: "memory")

#include <xen/io/ring.h>
#include <xen/io/blkif.h>

/* A back end's checks on a copied-out read, write, barrier or flush: 1 when sound. */
static inline int request_ok(const blkif_request_t *req)
{
    unsigned int i;

    if (req->operation != BLKIF_OP_READ && req->operation != BLKIF_OP_WRITE &&
        req->operation != BLKIF_OP_WRITE_BARRIER && req->operation != BLKIF_OP_FLUSH_DISKCACHE)
        return 0;
    if (req->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST)
        return 0;
    if (req->nr_segments == 0 &&
        (req->operation == BLKIF_OP_READ || req->operation == BLKIF_OP_WRITE))
        return 0;
    for (i = 0; i < req->nr_segments; i++)
        if (req->seg[i].last_sect > 7 || req->seg[i].first_sect > req->seg[i].last_sect)
            return 0;
    return 1;
}

#endif
