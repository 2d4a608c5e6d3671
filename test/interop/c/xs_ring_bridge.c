/*
 * The guest end of an emulated XenStore ring, for xensim's differential test against
 * Debian's C xenstored run by ../shared/tools/xenstored-peer (test/support/
 * reference-xenstored.ts). It relays a byte stream: stdin -> the request ring,
 * the response ring -> stdout, so the TypeScript side speaks xs_wire to it as to a socket.
 *
 *   xs_ring_bridge RUNDIR DOMID
 *
 * At start it replaces RUNDIR/ring-dom<DOMID> with a zeroed 4 KiB page file (the shim
 * maps that file when dom0 sends XS_INTRODUCE for DOMID), binds the AF_UNIX datagram
 * socket RUNDIR/evtchn-dom<DOMID> (where the shim delivers xenstored's notifications),
 * sends the control datagram "create DOMID" to RUNDIR/evtchn (the domain now exists), and
 * prints "xs_ring_bridge: ready" on stderr. Then, until stdin closes, it moves bytes
 * whichever way they can go, storing each index as one aligned 32-bit word after the
 * data (a torn index is a ring error to xenstored), and sends a 4-byte datagram to
 * RUNDIR/evtchn after moving one.
 *
 * xenstored marks a ring it gives up on (a message over 4096 bytes, impossible indices)
 * in the page's error word without notifying; while requests wait in or for the ring the
 * bridge re-reads that word every 20 ms, and on a non-zero error it prints the error on
 * stderr and exits with status 3, closing stdout: the client sees a closed connection.
 * Other failures exit with status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PAGE_BYTES 4096
#define RING_SIZE 1024 /* XENSTORE_RING_SIZE */
#define MASK(i) ((i) & (RING_SIZE - 1))
/* Byte offsets in struct xenstore_domain_interface (io/xs_wire.h). */
#define OFF_REQ 0
#define OFF_RSP 1024
#define OFF_REQ_CONS 2048
#define OFF_REQ_PROD 2052
#define OFF_RSP_CONS 2056
#define OFF_RSP_PROD 2060
#define OFF_ERROR 2072
#define ERROR_TICK_MS 20
#define INBUF_MAX (1 << 20)

static uint8_t *page;
static int evt_fd, ctl_fd;
static struct sockaddr_un evtchn_addr, own_addr;

static void die(const char *what)
{
    fprintf(stderr, "xs_ring_bridge: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint32_t *word(size_t off)
{
    return (uint32_t *)(page + off);
}

static uint32_t load(size_t off)
{
    return __atomic_load_n(word(off), __ATOMIC_ACQUIRE);
}

static void store(size_t off, uint32_t v)
{
    __atomic_store_n(word(off), v, __ATOMIC_RELEASE);
}

static void unix_addr(struct sockaddr_un *sa, const char *dir, const char *name)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name) >= sizeof(sa->sun_path)) {
        fprintf(stderr, "xs_ring_bridge: %s/%s is too long for a socket address\n", dir, name);
        exit(1);
    }
}

static void control(const void *msg, size_t len)
{
    if (sendto(ctl_fd, msg, len, 0, (struct sockaddr *)&evtchn_addr, sizeof(evtchn_addr)) < 0)
        die("sendto evtchn");
}

/* An event-channel notification towards xenstored: any 4-byte port wakes it. */
static void kick(void)
{
    static const uint8_t port0[4] = { 0, 0, 0, 0 };
    control(port0, sizeof(port0));
}

static void check_error(void)
{
    uint32_t err = load(OFF_ERROR);
    if (err != 0) {
        fprintf(stderr, "xs_ring_bridge: xenstored set ring error %u\n", err);
        exit(3);
    }
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write stdout");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Requests: as many buffered bytes as the ring has room for. Returns how many moved. */
static size_t push_requests(const uint8_t *buf, size_t len)
{
    uint32_t cons = load(OFF_REQ_CONS), prod = *word(OFF_REQ_PROD);
    uint32_t used = prod - cons;
    size_t n = 0;

    if (used > RING_SIZE) {
        fprintf(stderr, "xs_ring_bridge: impossible request indices %u..%u\n", cons, prod);
        exit(1);
    }
    while (n < len && used + n < RING_SIZE) {
        page[OFF_REQ + MASK(prod + (uint32_t)n)] = buf[n];
        n++;
    }
    if (n > 0)
        store(OFF_REQ_PROD, prod + (uint32_t)n);
    return n;
}

/* Responses: everything in the ring, to stdout. Returns how many bytes moved. */
static size_t pull_responses(void)
{
    uint8_t out[RING_SIZE];
    uint32_t cons = *word(OFF_RSP_CONS), prod = load(OFF_RSP_PROD);
    uint32_t n = prod - cons, i;

    if (n > RING_SIZE) {
        fprintf(stderr, "xs_ring_bridge: impossible response indices %u..%u\n", cons, prod);
        exit(1);
    }
    for (i = 0; i < n; i++)
        out[i] = page[OFF_RSP + MASK(cons + i)];
    if (n > 0) {
        store(OFF_RSP_CONS, prod);
        write_all(STDOUT_FILENO, out, n);
    }
    return n;
}

static void setup(const char *dir, unsigned long domid)
{
    char name[64], path[sizeof(own_addr.sun_path) + 64];
    int fd;

    snprintf(name, sizeof(name), "ring-dom%lu", domid);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    /* A new inode: a mapping xenstored may still hold of an old page stays valid. */
    if (unlink(path) < 0 && errno != ENOENT)
        die("unlink ring page");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, PAGE_BYTES) < 0)
        die("create ring page");
    page = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (page == MAP_FAILED)
        die("mmap ring page");
    close(fd);

    unix_addr(&evtchn_addr, dir, "evtchn");
    snprintf(name, sizeof(name), "evtchn-dom%lu", domid);
    unix_addr(&own_addr, dir, name);
    evt_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    ctl_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (evt_fd < 0 || ctl_fd < 0)
        die("socket");
    unlink(own_addr.sun_path);
    if (bind(evt_fd, (struct sockaddr *)&own_addr, sizeof(own_addr)) < 0)
        die("bind evtchn-dom");

    snprintf(name, sizeof(name), "create %lu", domid);
    control(name, strlen(name));
}

int main(int argc, char **argv)
{
    static uint8_t inbuf[INBUF_MAX];
    size_t inlen = 0;
    int stdin_open = 1;
    char *end;
    unsigned long domid;

    if (argc != 3 || (domid = strtoul(argv[2], &end, 10), *end != '\0' || argv[2][0] == '\0')) {
        fprintf(stderr, "usage: xs_ring_bridge RUNDIR DOMID\n");
        return 1;
    }
    setup(argv[1], domid);
    fprintf(stderr, "xs_ring_bridge: ready\n");

    while (stdin_open) {
        struct pollfd fds[2] = {
            { .fd = evt_fd, .events = POLLIN },
            { .fd = inlen < INBUF_MAX ? STDIN_FILENO : -1, .events = POLLIN },
        };
        int waiting = inlen > 0 || load(OFF_REQ_PROD) != load(OFF_REQ_CONS);
        uint8_t dgram[64];
        size_t moved;

        if (poll(fds, 2, waiting ? ERROR_TICK_MS : -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        while (recv(evt_fd, dgram, sizeof(dgram), 0) >= 0)
            ; /* notifications carry nothing beyond "look at the ring" */
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(STDIN_FILENO, inbuf + inlen, INBUF_MAX - inlen);
            if (r < 0 && errno != EINTR && errno != EAGAIN)
                die("read stdin");
            if (r == 0)
                stdin_open = 0;
            if (r > 0)
                inlen += (size_t)r;
        }
        check_error();
        moved = pull_responses();
        if (inlen > 0) {
            size_t n = push_requests(inbuf, inlen);
            memmove(inbuf, inbuf + n, inlen - n);
            inlen -= n;
            moved += n;
        }
        if (moved > 0)
            kick();
    }
    unlink(own_addr.sun_path);
    return 0;
}
