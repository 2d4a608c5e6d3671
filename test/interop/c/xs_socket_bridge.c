/* xs_socket_bridge.c - lets Unix-socket clients (xenstore-utils, libxenstore)
 * talk to the reference C xenstored as an unprivileged domain, the way
 * `xensim xenstored --domain-socket DOMID:PATH` lets them talk to ours.
 *
 *   XENSTORED_PATH=<dom0 socket> xs_socket_bridge RUNDIR DOMID SOCKET
 *
 * RUNDIR is the directory of ../shared/tools/xenstored-peer's shim (start.sh
 * uses "<socket>.run").  The bridge plays domain DOMID's kernel: it creates
 * the ring page RUNDIR/ring-dom<DOMID>, binds RUNDIR/evtchn-dom<DOMID> for
 * notifications, and introduces the domain through the dom0 socket (no nodes
 * are created for it).  It then listens on SOCKET, prints
 * "xs_socket_bridge: listening on SOCKET", and relays the bytes of one client
 * at a time between that client and the ring.  When a client disconnects,
 * the bridge sends XS_RESET_WATCHES on the ring (which also ends the
 * client's transactions) and drops everything up to its reply, so the next
 * client starts clean, as on a fresh connection.  Clients are served one
 * after the other: a second client waits until the first has gone.
 *
 * Test support only (test/support/xenstored-reference-process.ts); build with
 * gcc -O2 -Wall xs_socket_bridge.c -lxenstore.
 */
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
#include <xenstore.h>
#include <xen/io/xs_wire.h>

#define RESET_REQ_ID 0xfffffff0u

static struct xenstore_domain_interface *intf;
static int notify_fd, kick_fd;
static struct sockaddr_un kick_addr;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void unix_addr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path)) {
        fprintf(stderr, "xs_socket_bridge: socket path too long: %s\n", path);
        exit(1);
    }
    strcpy(a->sun_path, path);
}

/* An event for xenstored: the shim's event channel is a datagram socket. */
static void kick(void)
{
    uint32_t port = 0;

    sendto(kick_fd, &port, sizeof(port), 0, (struct sockaddr *)&kick_addr, sizeof(kick_addr));
}

/* Waits for a notification from xenstored (or 50 ms, in case one was lost). */
static void wait_event(int client)
{
    struct pollfd p[2] = { { notify_fd, POLLIN, 0 }, { client, POLLIN, 0 } };
    char buf[64];

    poll(p, client >= 0 ? 2 : 1, 50);
    while (recv(notify_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

/* Copies up to len request bytes into the ring; returns how many fitted. */
static size_t ring_put(const char *data, size_t len)
{
    XENSTORE_RING_IDX cons = __atomic_load_n(&intf->req_cons, __ATOMIC_ACQUIRE);
    XENSTORE_RING_IDX prod = intf->req_prod;
    size_t n = 0;

    while (n < len && prod - cons < XENSTORE_RING_SIZE)
        intf->req[MASK_XENSTORE_IDX(prod++)] = data[n++];
    __atomic_store_n(&intf->req_prod, prod, __ATOMIC_RELEASE);
    if (n > 0)
        kick();
    return n;
}

/* Takes up to len reply bytes out of the ring; returns how many. */
static size_t ring_get(char *data, size_t len)
{
    XENSTORE_RING_IDX prod = __atomic_load_n(&intf->rsp_prod, __ATOMIC_ACQUIRE);
    XENSTORE_RING_IDX cons = intf->rsp_cons;
    size_t n = 0;

    if (intf->error) {
        fprintf(stderr, "xs_socket_bridge: xenstored flagged ring error %u\n", intf->error);
        exit(1);
    }
    while (n < len && cons != prod)
        data[n++] = intf->rsp[MASK_XENSTORE_IDX(cons++)];
    __atomic_store_n(&intf->rsp_cons, cons, __ATOMIC_RELEASE);
    if (n > 0)
        kick();
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
        len -= w;
    }
    return 0;
}

/* Relays one client until it disconnects; `rsp` tracks the reply stream. */
static void serve(int client, struct framing *rsp)
{
    struct framing req = { .have = 0 };
    char in[4096], out[4096];
    size_t in_len = 0, in_off = 0;
    int client_open = 1, client_gone = 0;

    while (client_open) {
        int progress = 0;

        if (in_off == in_len) {
            ssize_t r = recv(client, in, sizeof(in), MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                client_open = 0;
                break;
            }
            if (r > 0) {
                size_t used;
                struct xsd_sockmsg m;
                in_len = r;
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
        size_t got = ring_get(out, sizeof(out));
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

int main(int argc, char **argv)
{
    char path[512];
    struct sockaddr_un a;
    struct framing rsp = { .have = 0 };
    struct xs_handle *h;
    int fd, listener;
    unsigned domid;

    if (argc != 4) {
        fprintf(stderr, "usage: XENSTORED_PATH=<dom0 socket> %s RUNDIR DOMID SOCKET\n", argv[0]);
        return 2;
    }
    domid = atoi(argv[2]);
    signal(SIGPIPE, SIG_IGN);

    /* The domain's ring page, zeroed, shared with xenstored through the file. */
    snprintf(path, sizeof(path), "%s/ring-dom%u", argv[1], domid);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) < 0)
        die(path);
    intf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (intf == MAP_FAILED)
        die("mmap");
    close(fd);

    /* Notifications from xenstored arrive as datagrams here. */
    snprintf(path, sizeof(path), "%s/evtchn-dom%u", argv[1], domid);
    unlink(path);
    unix_addr(&a, path);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (notify_fd < 0 || bind(notify_fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die(path);
    snprintf(path, sizeof(path), "%s/evtchn", argv[1]);
    unix_addr(&kick_addr, path);
    kick_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (kick_fd < 0)
        die("socket");

    /* The toolstack's part: introduce the domain (its ring is mapped then). */
    h = xs_open(0);
    if (!h)
        die("xs_open");
    if (!xs_introduce_domain(h, domid, 0, 7))
        die("xs_introduce_domain");
    xs_close(h);

    unlink(argv[3]);
    unix_addr(&a, argv[3]);
    listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(listener, 16) < 0)
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
