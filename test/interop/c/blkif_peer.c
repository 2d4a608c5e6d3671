/*
 * One end of a blkif ring, written with Xen's own io/ring.h and io/blkif.h macros, for
 * xensim's interop tests (test/interop/blkif-ring.test.ts). The ring page is a 4096-byte
 * file shared with the TypeScript side; the two take turns: for each command on stdin
 * this program reads the page from the file, runs the command on it, writes the page
 * back and prints one JSON line with what it saw and decided and its private indices.
 * The ring's barriers and the back end's request checks are xen_blkif.h, shared with the
 * bench's C loop.
 *
 *   blkif_peer front|back PAGE_FILE
 *
 * Commands (indices and counts in decimal):
 *   init               SHARED_RING_INIT
 *   attach I           FRONT_RING_ATTACH / BACK_RING_ATTACH at index I
 *   produce N K        front: N requests, the i-th built from sequence number K + i
 *   push               RING_PUSH_{REQUESTS,RESPONSES}_AND_CHECK_NOTIFY
 *   consume N          up to N responses (front) or requests (back), each copied out
 *   respond N          back: answer up to N consumed requests, oldest first
 *   final              RING_FINAL_CHECK_FOR_{RESPONSES,REQUESTS}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "xen_blkif.h"

#define PAGE_BYTES 4096

static union { blkif_sring_t s; uint8_t bytes[PAGE_BYTES]; } page __attribute__((aligned(PAGE_BYTES)));
static blkif_front_ring_t front;
static blkif_back_ring_t back;
static int is_front;
static int fd;

/* Requests the back end consumed and has not answered yet, oldest first. */
static struct { uint64_t id; uint8_t op; int16_t status; } unanswered[64];
static unsigned int nr_unanswered;

static void load_page(void)
{
    if (pread(fd, page.bytes, PAGE_BYTES, 0) != PAGE_BYTES) {
        perror("read page");
        exit(2);
    }
}

static void store_page(void)
{
    if (pwrite(fd, page.bytes, PAGE_BYTES, 0) != PAGE_BYTES) {
        perror("write page");
        exit(2);
    }
}

/* The request with sequence number k: the TypeScript test builds the same one. */
static void build_request(blkif_request_t *req, uint32_t k)
{
    unsigned int j;

    req->operation = (k % 2) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
    req->nr_segments = (k % 7 == 6) ? 0 : 1 + k % 11;
    req->handle = 51712;
    req->id = ((uint64_t)(k ^ 0xa5a5a5a5u) << 32) | k;
    req->sector_number = (uint64_t)k * 8 + ((uint64_t)(k & 3) << 32);
    for (j = 0; j < req->nr_segments; j++) {
        req->seg[j].gref = k * 16 + j;
        req->seg[j].first_sect = j % 8;
        req->seg[j].last_sect = (k % 5 == 4 && j == 0) ? 8 : 7;
    }
}

static void print_pvt(void)
{
    if (is_front)
        printf("\"pvt\":[%u,%u]}\n", front.req_prod_pvt, front.rsp_cons);
    else
        printf("\"pvt\":[%u,%u]}\n", back.rsp_prod_pvt, back.req_cons);
}

static void front_consume(unsigned int n)
{
    unsigned int count = 0;
    int overflow = 0;
    blkif_response_t rsp;

    printf("{\"responses\":[");
    while (count < n && RING_HAS_UNCONSUMED_RESPONSES(&front)) {
        RING_IDX rp = front.sring->rsp_prod;

        xen_rmb();
        if (RING_RESPONSE_PROD_OVERFLOW(&front, rp)) {
            overflow = 1;
            break;
        }
        RING_COPY_RESPONSE(&front, front.rsp_cons, &rsp);
        front.rsp_cons++;
        printf("%s[%u,%u,%u,%d]", count ? "," : "", (uint32_t)rsp.id, (uint32_t)(rsp.id >> 32),
               rsp.operation, rsp.status);
        count++;
    }
    printf("],\"overflow\":%d,", overflow);
}

static void back_consume(unsigned int n)
{
    unsigned int count = 0;
    int overflow = 0;
    blkif_request_t req;

    printf("{\"requests\":[");
    while (count < n && RING_HAS_UNCONSUMED_REQUESTS(&back)) {
        RING_IDX rp = back.sring->req_prod;
        int ok;

        xen_rmb();
        if (RING_REQUEST_PROD_OVERFLOW(&back, rp)) {
            overflow = 1;
            break;
        }
        if (RING_REQUEST_CONS_OVERFLOW(&back, back.req_cons))
            break;
        RING_COPY_REQUEST(&back, back.req_cons, &req);
        back.req_cons++;
        ok = request_ok(&req);
        unanswered[nr_unanswered].id = req.id;
        unanswered[nr_unanswered].op = req.operation;
        unanswered[nr_unanswered].status = ok ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR;
        nr_unanswered++;
        printf("%s[%u,%u,%u,%u,%u,%u,%d]", count ? "," : "", (uint32_t)req.id, (uint32_t)(req.id >> 32),
               req.operation, req.nr_segments, (uint32_t)req.sector_number,
               (uint32_t)(req.sector_number >> 32), ok);
        count++;
    }
    printf("],\"overflow\":%d,", overflow);
}

static void back_respond(unsigned int n)
{
    unsigned int count = 0, i;

    while (count < n && count < nr_unanswered) {
        blkif_response_t *rsp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);

        rsp->id = unanswered[count].id;
        rsp->operation = unanswered[count].op;
        rsp->status = unanswered[count].status;
        back.rsp_prod_pvt++;
        count++;
    }
    for (i = count; i < nr_unanswered; i++)
        unanswered[i - count] = unanswered[i];
    nr_unanswered -= count;
    printf("{\"responded\":%u,", count);
}

static void command(const char *cmd, unsigned long a, unsigned long b)
{
    int notify, work;

    if (!strcmp(cmd, "init")) {
        SHARED_RING_INIT(&page.s);
        printf("{");
    } else if (!strcmp(cmd, "attach")) {
        if (is_front)
            FRONT_RING_ATTACH(&front, &page.s, (RING_IDX)a, PAGE_BYTES);
        else
            BACK_RING_ATTACH(&back, &page.s, (RING_IDX)a, PAGE_BYTES);
        printf("{\"nr_ents\":%u,", is_front ? RING_SIZE(&front) : RING_SIZE(&back));
    } else if (!strcmp(cmd, "produce") && is_front) {
        unsigned long i;

        for (i = 0; i < a && !RING_FULL(&front); i++) {
            build_request(RING_GET_REQUEST(&front, front.req_prod_pvt), (uint32_t)(b + i));
            front.req_prod_pvt++;
        }
        printf("{\"free\":%u,", RING_FREE_REQUESTS(&front));
    } else if (!strcmp(cmd, "push")) {
        if (is_front)
            RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
        else
            RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
        printf("{\"notify\":%d,", notify);
    } else if (!strcmp(cmd, "consume")) {
        if (is_front)
            front_consume(a);
        else
            back_consume(a);
    } else if (!strcmp(cmd, "respond") && !is_front) {
        back_respond(a);
    } else if (!strcmp(cmd, "final")) {
        if (is_front)
            RING_FINAL_CHECK_FOR_RESPONSES(&front, work);
        else
            RING_FINAL_CHECK_FOR_REQUESTS(&back, work);
        printf("{\"work\":%d,", work);
    } else {
        printf("{\"error\":\"unknown command %s\",", cmd);
    }
    print_pvt();
}

int main(int argc, char **argv)
{
    char line[256], cmd[32];
    unsigned long a, b;

    if (argc != 3 || (strcmp(argv[1], "front") && strcmp(argv[1], "back"))) {
        fprintf(stderr, "usage: %s front|back PAGE_FILE\n", argv[0]);
        return 2;
    }
    is_front = !strcmp(argv[1], "front");
    fd = open(argv[2], O_RDWR);
    if (fd < 0) {
        perror(argv[2]);
        return 2;
    }
    while (fgets(line, sizeof(line), stdin)) {
        a = b = 0;
        if (sscanf(line, "%31s %lu %lu", cmd, &a, &b) < 1)
            continue;
        load_page();
        command(cmd, a, b);
        store_page();
        fflush(stdout);
    }
    return 0;
}
