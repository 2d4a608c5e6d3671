/*
 * xensim bench baseline: blkif request/response round trips through one ring page with
 * Xen's own io/ring.h macros, front and back end in one thread, the same steps as the
 * TypeScript loop bench/blkif-loop.ts, measured the same way: after a warm-up, WINDOWS
 * windows of this process's CPU time (so that time the host gives to other processes is
 * not counted), and the best window's rate. Prints round trips per second and
 * notifications per round trip; the optional argument is the CPU time to measure, in ms.
 * Built by the bench with gcc -O2 against libxen-dev's headers; the ring's barriers and
 * the back end's request checks are test/interop/c/xen_blkif.h, shared with blkif_peer.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../test/interop/c/xen_blkif.h"

#define WINDOWS 8

/* CPU time used by this process, in seconds. */
static double cpu_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static union { blkif_sring_t s; uint8_t bytes[4096]; } page __attribute__((aligned(4096)));
static blkif_front_ring_t front;
static blkif_back_ring_t back;
static unsigned long notifies;

/* One round trip: as in the TypeScript loop, request i carries one full-page segment. */
static void round_trip(uint32_t i)
{
    blkif_request_t *slot, req;
    blkif_response_t *rslot, rsp;
    int notify, more;

    slot = RING_GET_REQUEST(&front, front.req_prod_pvt);
    slot->operation = BLKIF_OP_READ;
    slot->nr_segments = 1;
    slot->handle = 0;
    slot->id = i;
    slot->sector_number = (uint64_t)i * 8;
    slot->seg[0].gref = 7;
    slot->seg[0].first_sect = 0;
    slot->seg[0].last_sect = 7;
    front.req_prod_pvt++;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
    notifies += notify;

    do {
        while (RING_HAS_UNCONSUMED_REQUESTS(&back)) {
            RING_IDX rp = back.sring->req_prod;
            xen_rmb();
            if (RING_REQUEST_PROD_OVERFLOW(&back, rp) || RING_REQUEST_CONS_OVERFLOW(&back, back.req_cons))
                abort();
            RING_COPY_REQUEST(&back, back.req_cons, &req);
            back.req_cons++;
            rslot = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
            rslot->id = req.id;
            rslot->operation = req.operation;
            rslot->status = request_ok(&req) ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR;
            back.rsp_prod_pvt++;
        }
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
        notifies += notify;
        RING_FINAL_CHECK_FOR_REQUESTS(&back, more);
    } while (more);

    do {
        while (RING_HAS_UNCONSUMED_RESPONSES(&front)) {
            RING_IDX rp = front.sring->rsp_prod;
            xen_rmb();
            if (RING_RESPONSE_PROD_OVERFLOW(&front, rp))
                abort();
            RING_COPY_RESPONSE(&front, front.rsp_cons, &rsp);
            front.rsp_cons++;
            if (rsp.id != i || rsp.status != BLKIF_RSP_OKAY)
                abort();
        }
        RING_FINAL_CHECK_FOR_RESPONSES(&front, more);
    } while (more);
}

int main(int argc, char **argv)
{
    double ms = argc > 1 ? atof(argv[1]) : 500, start, elapsed, rate, best = 0;
    uint32_t i = 0, j, w, counted = 0;

    SHARED_RING_INIT(&page.s);
    FRONT_RING_INIT(&front, &page.s, sizeof(page));
    BACK_RING_INIT(&back, &page.s, sizeof(page));

    for (j = 0; j < 100000; j++)
        round_trip(i++);
    notifies = 0;
    for (w = 0; w < WINDOWS; w++) {
        uint32_t n = 0;

        start = cpu_seconds();
        do {
            for (j = 0; j < 10000; j++)
                round_trip(i++);
            n += 10000;
            elapsed = cpu_seconds() - start;
        } while (elapsed * 1000 < ms / WINDOWS);
        rate = n / elapsed;
        if (rate > best)
            best = rate;
        counted += n;
    }
    printf("%.0f %.4f\n", best, (double)notifies / counted);
    return 0;
}
