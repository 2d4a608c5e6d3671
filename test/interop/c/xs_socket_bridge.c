/*
 * xs_socket_bridge: the guest end of one domain's emulated XenStore ring in the
 * reference C xenstored (../shared/tools/xenstored-peer), offered on a Unix socket, so
 * that its clients (xenstore-utils, libxenstore, the tests' XsWireClient) talk to the
 * reference as unprivileged domain DOMID, the way `xensim xenstored --domain-socket
 * DOMID:PATH` lets them talk to ours. Test support only: started and stopped by
 * test/support/xenstored-reference-process.ts.
 *
 *   xs_socket_bridge RUNDIR DOMID SOCKET
 *
 * RUNDIR is the shim's run directory (start.sh makes "<socket>.run"). The bridge plays
 * the domain's kernel: it replaces RUNDIR/ring-dom<DOMID> with a zeroed 4 KiB page file
 * (a new inode: a mapping xenstored may still hold of an old page stays valid), binds
 * RUNDIR/evtchn-dom<DOMID> for xenstored's notifications, tells the shim the domain
 * exists ("create DOMID" to RUNDIR/evtchn), listens on SOCKET and prints
 * "xs_socket_bridge: listening on SOCKET". The toolstack's part, XS_INTRODUCE on the dom0
 * socket (xenstored maps the page then), is the caller's.
 *
 * It relays the bytes of one client at a time between that client and the ring, storing
 * each index as one aligned 32-bit word after the data (a torn index is a ring error to
 * xenstored) and sending a 4-byte datagram to RUNDIR/evtchn after moving one. When the
 * client disconnects, the bridge sends XS_RESET_WATCHES on the ring (which also ends the
 * client's transactions) and drops everything up to its reply, so that the next client
 * starts clean, as on a fresh connection. A second client waits until the first has gone.
 *
 * xenstored marks a ring it gives up on (a message over 4096 bytes, impossible indices)
 * in the page's error word without notifying; the bridge re-reads that word every 20 ms
 * at most, and on a non-zero error prints it on stderr and exits with status 3: the
 * client sees its connection closed, and the domain is unusable until introduced again.
 * Other failures exit with status 1; SIGTERM exits with status 0. Either way the bridge
 * removes SOCKET and RUNDIR/evtchn-dom<DOMID>.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xen/io/xs_wire.h>

#define PAGE_BYTES 4096
#define RESET_REQ_ID 0xfffffff0u
#define ERROR_TICK_MS 20

static struct xenstore_domain_interface *intf;
static int notify_fd, kick_fd;
static struct sockaddr_un kick_addr, notify_addr, listen_addr;

static void die(const char *what)
{
    fprintf(stderr, "xs_socket_bridge: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void unix_addr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path)) {
        fprintf(stderr, "xs_socket_bridge: %s is too long for a socket address\n", path);
        exit(1);
    }
    strcpy(a->sun_path, path);
}

/* A datagram to the shim's event channel: an event, or a command such as "create N". */
static void control(const void *msg, size_t len)
{
    if (sendto(kick_fd, msg, len, 0, (struct sockaddr *)&kick_addr, sizeof(kick_addr)) < 0)
        die("sendto evtchn");
}

/* An event-channel notification towards xenstored: any 4-byte port wakes it. */
static void kick(void)
{
    static const uint8_t port0[4] = { 0, 0, 0, 0 };

    control(port0, sizeof(port0));
}

static void check_ring(XENSTORE_RING_IDX cons, XENSTORE_RING_IDX prod, const char *which)
{
    uint32_t err = __atomic_load_n(&intf->error, __ATOMIC_ACQUIRE);

    if (err != 0) {
        fprintf(stderr, "xs_socket_bridge: xenstored set ring error %u\n", err);
        exit(3);
    }
    if (prod - cons > XENSTORE_RING_SIZE) {
        fprintf(stderr, "xs_socket_bridge: impossible %s indices %u..%u\n", which, cons, prod);
        exit(1);
    }
}

/* Waits for a notification from xenstored or for the client, at most ERROR_TICK_MS. */
static void wait_event(int client)
{
    struct pollfd p[2] = { { notify_fd, POLLIN, 0 }, { client, POLLIN, 0 } };
    char buf[64];

    poll(p, client >= 0 ? 2 : 1, ERROR_TICK_MS);
    while (recv(notify_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ; /* notifications carry nothing beyond "look at the ring" */
}

/* Copies up to len request bytes into the ring; returns how many fitted. */
static size_t ring_put(const char *data, size_t len)
{
    XENSTORE_RING_IDX cons = __atomic_load_n(&intf->req_cons, __ATOMIC_ACQUIRE);
    XENSTORE_RING_IDX prod = intf->req_prod;
    size_t n = 0;

    check_ring(cons, prod, "request");
    while (n < len && prod - cons < XENSTORE_RING_SIZE)
        intf->req[MASK_XENSTORE_IDX(prod++)] = data[n++];
    if (n > 0) {
        __atomic_store_n(&intf->req_prod, prod, __ATOMIC_RELEASE);
        kick();
    }
    return n;
}

/* Takes up to len reply bytes out of the ring; returns how many. */
static size_t ring_get(char *data, size_t len)
{
    XENSTORE_RING_IDX prod = __atomic_load_n(&intf->rsp_prod, __ATOMIC_ACQUIRE);
    XENSTORE_RING_IDX cons = intf->rsp_cons;
    size_t n = 0;

    check_ring(cons, prod, "response");
    while (n < len && cons != prod)
        data[n++] = intf->rsp[MASK_XENSTORE_IDX(cons++)];
    if (n > 0) {
        __atomic_store_n(&intf->rsp_cons, cons, __ATOMIC_RELEASE);
        kick();
    }
    return n;
}

/* Where a byte stream of xs_wire messages stands: header bytes, then body. */
struct framing {
    unsigned char hdr[sizeof(struct xsd_sockmsg)];
    size_t have;
    uint32_t body_left;
};

/* Feeds bytes through the framing; returns 1 when a message just ended and
 * leaves its header in *last. */
static int framing_feed(struct framing *f, const char *p, size_t len, size_t *used, struct xsd_sockmsg *last)
{
    size_t i = 0;

    while (i < len) {
        if (f->have < sizeof(f->hdr)) {
            f->hdr[f->have++] = p[i++];
            if (f->have < sizeof(f->hdr))
                continue;
            memcpy(last, f->hdr, sizeof(*last));
            f->body_left = last->len;
        } else {
            size_t take = len - i < f->body_left ? len - i : f->body_left;
            i += take;
            f->body_left -= take;
        }
        if (f->have == sizeof(f->hdr) && f->body_left == 0) {
            f->have = 0;
            *used = i;
            return 1;
        }
    }
    *used = i;
    return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Relays one client until it disconnects; `rsp` tracks the reply stream. */
static void serve(int client, struct framing *rsp)
{
    struct framing req = { .have = 0 };
    char in[4096], out[4096];
    size_t in_len = 0, in_off = 0;
    int client_gone = 0;

    for (;;) {
        int progress = 0;
        size_t got;

        if (in_off == in_len) {
            ssize_t r = recv(client, in, sizeof(in), MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                break;
            if (r > 0) {
                size_t used;
                struct xsd_sockmsg m;
                in_len = (size_t)r;
                in_off = 0;
                for (size_t o = 0; o < in_len; o += used)
                    framing_feed(&req, in + o, in_len - o, &used, &m);
            }
        }
        if (in_off < in_len) {
            size_t n = ring_put(in + in_off, in_len - in_off);
            in_off += n;
            progress |= n > 0;
        }
        got = ring_get(out, sizeof(out));
        if (got > 0) {
            size_t used;
            struct xsd_sockmsg m;
            for (size_t o = 0; o < got; o += used)
                framing_feed(rsp, out + o, got - o, &used, &m);
            if (!client_gone && write_all(client, out, got) < 0)
                client_gone = 1;
            progress = 1;
        }
        if (!progress)
            wait_event(in_off == in_len ? client : -1);
    }
    close(client);
    if (req.have != 0 || req.body_left != 0) {
        fprintf(stderr, "xs_socket_bridge: a client left in the middle of a request\n");
        exit(1);
    }
}

/* After a client: forget its watches and transactions, drop its replies. */
static void reset(struct framing *rsp)
{
    struct xsd_sockmsg h = { XS_RESET_WATCHES, RESET_REQ_ID, 0, 1 };
    char msg[sizeof(h) + 1];
    size_t off = 0;
    int done = 0;

    memcpy(msg, &h, sizeof(h));
    msg[sizeof(h)] = 0;
    while (off < sizeof(msg) || !done) {
        char out[4096];
        size_t got, n = off < sizeof(msg) ? ring_put(msg + off, sizeof(msg) - off) : 0;

        off += n;
        got = ring_get(out, sizeof(out));
        for (size_t o = 0, used; o < got; o += used) {
            struct xsd_sockmsg m;
            if (framing_feed(rsp, out + o, got - o, &used, &m) && m.req_id == RESET_REQ_ID) {
                if (m.type != XS_RESET_WATCHES) {
                    fprintf(stderr, "xs_socket_bridge: XS_RESET_WATCHES failed\n");
                    exit(1);
                }
                done = 1;
            }
        }
        if (n == 0 && got == 0)
            wait_event(-1);
    }
}

/* At any exit: the paths it bound, so that nothing is left to deliver to. */
static void remove_sockets(void)
{
    unlink(listen_addr.sun_path);
    unlink(notify_addr.sun_path);
}

static void on_sigterm(int sig)
{
    (void)sig;
    remove_sockets();
    _exit(0);
}

/* The domain's side of the shim: its ring page, its event channel, its existence. */
static void setup(const char *rundir, unsigned long domid)
{
    char path[sizeof(kick_addr.sun_path) + 64];
    int fd;

    snprintf(path, sizeof(path), "%s/ring-dom%lu", rundir, domid);
    if (unlink(path) < 0 && errno != ENOENT)
        die("unlink ring page");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, PAGE_BYTES) < 0)
        die("create ring page");
    intf = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (intf == MAP_FAILED)
        die("mmap ring page");
    close(fd);

    snprintf(path, sizeof(path), "%s/evtchn-dom%lu", rundir, domid);
    unix_addr(&notify_addr, path);
    unlink(path);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (notify_fd < 0 || bind(notify_fd, (struct sockaddr *)&notify_addr, sizeof(notify_addr)) < 0)
        die("bind evtchn-dom");
    snprintf(path, sizeof(path), "%s/evtchn", rundir);
    unix_addr(&kick_addr, path);
    kick_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (kick_fd < 0)
        die("socket");

    snprintf(path, sizeof(path), "create %lu", domid);
    control(path, strlen(path));
}

int main(int argc, char **argv)
{
    struct framing rsp = { .have = 0 };
    unsigned long domid;
    char *end;
    int listener;

    if (argc != 4 || (domid = strtoul(argv[2], &end, 10), *end != '\0' || argv[2][0] == '\0')) {
        fprintf(stderr, "usage: xs_socket_bridge RUNDIR DOMID SOCKET\n");
        return 1;
    }
    unix_addr(&listen_addr, argv[3]);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_sigterm);
    atexit(remove_sockets);
    setup(argv[1], domid);

    unlink(argv[3]);
    listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) < 0 ||
        listen(listener, 16) < 0)
        die(argv[3]);
    printf("xs_socket_bridge: listening on %s\n", argv[3]);
    fflush(stdout);

    for (;;) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) {
            if (errno == EINTR)
                continue;
            die("accept");
        }
        serve(client, &rsp);
        reset(&rsp);
    }
}
