// peer: the two ends of the packet-path tests, one small process each (a Python start costs
// seconds in the emulated guest).
//
//   peer serve NAME PORT...                  TCP and UDP, IPv4 and IPv6, on every PORT; answers
//                                            each TCP line (and a new connection) and each UDP
//                                            datagram with "NAME SOURCE_ADDRESS\n"; prints
//                                            "listening" once every socket is bound, then one
//                                            line per answer
//   peer tcp ADDRESS PORT [--timeout S]      connects and prints the first answer
//   peer udp ADDRESS PORT [--sport N] [--timeout S]
//                                            one datagram from source port N; prints the answer
//   peer hold ADDRESS PORT [--count N] [--timeout S]
//                                            one connection: prints the first answer, then asks
//                                            again once a second, N times (default: forever)
//   peer http ADDRESS PORT [PATH] [--timeout S]
//                                            GET PATH (default /); prints the whole response
//
// Clients exit 0 on an answer; 1 printing "refused" (a reset or an ICMP unreachable),
// "timeout" or "closed" (the connection ended early); 2 on any other error, with its text.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 512
#define LINE_MAX_LEN 512

static _Noreturn void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("peer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static _Noreturn void usage(void) {
    fputs("usage: peer serve NAME PORT...\n"
          "       peer tcp ADDRESS PORT [--timeout S]\n"
          "       peer udp ADDRESS PORT [--sport N] [--timeout S]\n"
          "       peer hold ADDRESS PORT [--count N] [--timeout S]\n"
          "       peer http ADDRESS PORT [PATH] [--timeout S]\n", stderr);
    exit(2);
}

static int parse_number(const char *text, long low, long high, const char *what) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || value < low || value > high)
        die("%s: not a number in %ld-%ld: %s", what, low, high, text);
    return (int)value;
}

// The outcome a test reads: refusals and silences are answers too.
static void refused_or_die(int error, const char *operation) {
    switch (error) {
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
        puts("refused");
        exit(1);
    case ETIMEDOUT:
        puts("timeout");
        exit(1);
    default:
        die("%s: %s", operation, strerror(error));
    }
}

static void format_address(const struct sockaddr_storage *address, char *text, size_t size) {
    const void *raw = address->ss_family == AF_INET6
                          ? (const void *)&((const struct sockaddr_in6 *)address)->sin6_addr
                          : (const void *)&((const struct sockaddr_in *)address)->sin_addr;
    if (inet_ntop(address->ss_family, raw, text, (socklen_t)size) == NULL) snprintf(text, size, "?");
}

// ---------------------------------------------------------------------------- serve

struct connection {
    int fd;
    char source[INET6_ADDRSTRLEN];
};

static struct pollfd fds[MAX_FDS];
static struct connection conns[MAX_FDS];
static int nfds;
// Per listening socket: SOCK_STREAM or SOCK_DGRAM; 0 for an accepted connection.
static int kinds[MAX_FDS];

static void add_fd(int fd, int kind, const char *source) {
    if (nfds == MAX_FDS) {
        close(fd);
        return;
    }
    fds[nfds] = (struct pollfd){.fd = fd, .events = POLLIN};
    kinds[nfds] = kind;
    conns[nfds].fd = fd;
    snprintf(conns[nfds].source, sizeof conns[nfds].source, "%s", source ? source : "");
    nfds++;
}

static void remove_fd(int index) {
    close(fds[index].fd);
    nfds--;
    fds[index] = fds[nfds];
    kinds[index] = kinds[nfds];
    conns[index] = conns[nfds];
}

static int listen_on(int family, int type, int port) {
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("SO_REUSEADDR: %s", strerror(errno));
    struct sockaddr_storage address = {0};
    socklen_t length;
    if (family == AF_INET6) {
        // Separate IPv4 sockets answer IPv4, so replies name plain IPv4 sources.
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) die("IPV6_V6ONLY: %s", strerror(errno));
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&address;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        in6->sin6_addr = in6addr_any;
        length = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&address;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        length = sizeof *in;
    }
    if (bind(fd, (struct sockaddr *)&address, length) < 0)
        die("bind %s %s port %d: %s", family == AF_INET6 ? "IPv6" : "IPv4", type == SOCK_STREAM ? "TCP" : "UDP",
            port, strerror(errno));
    if (type == SOCK_STREAM && listen(fd, 128) < 0) die("listen: %s", strerror(errno));
    return fd;
}

static void answer_tcp(int fd, const char *name, const char *source) {
    char line[LINE_MAX_LEN];
    int length = snprintf(line, sizeof line, "%s %s\n", name, source);
    // A client that went away is its own business; the server keeps serving.
    (void)!send(fd, line, (size_t)length, MSG_NOSIGNAL | MSG_DONTWAIT);
    printf("tcp %s\n", source);
}

static _Noreturn void serve(int argc, char **argv) {
    if (argc < 2) usage();
    const char *name = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        int port = parse_number(argv[i], 1, 65535, "port");
        add_fd(listen_on(AF_INET, SOCK_STREAM, port), SOCK_STREAM, NULL);
        add_fd(listen_on(AF_INET, SOCK_DGRAM, port), SOCK_DGRAM, NULL);
        add_fd(listen_on(AF_INET6, SOCK_STREAM, port), SOCK_STREAM, NULL);
        add_fd(listen_on(AF_INET6, SOCK_DGRAM, port), SOCK_DGRAM, NULL);
    }
    puts("listening");
    for (;;) {
        if (poll(fds, (nfds_t)nfds, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll: %s", strerror(errno));
        }
        for (int i = nfds - 1; i >= 0; i--) {
            if (fds[i].revents == 0) continue;
            struct sockaddr_storage peer;
            socklen_t length = sizeof peer;
            char source[INET6_ADDRSTRLEN];
            if (kinds[i] == SOCK_STREAM) {
                int fd = accept4(fds[i].fd, (struct sockaddr *)&peer, &length, SOCK_CLOEXEC);
                if (fd < 0) continue;
                format_address(&peer, source, sizeof source);
                answer_tcp(fd, name, source);
                add_fd(fd, 0, source);
            } else if (kinds[i] == SOCK_DGRAM) {
                char buffer[2048];
                ssize_t got = recvfrom(fds[i].fd, buffer, sizeof buffer, 0, (struct sockaddr *)&peer, &length);
                if (got < 0) continue;
                format_address(&peer, source, sizeof source);
                char line[LINE_MAX_LEN];
                int size = snprintf(line, sizeof line, "%s %s\n", name, source);
                (void)!sendto(fds[i].fd, line, (size_t)size, 0, (struct sockaddr *)&peer, length);
                printf("udp %s\n", source);
            } else {
                // Every newline the client sends asks for another answer.
                char buffer[2048];
                ssize_t got = recv(fds[i].fd, buffer, sizeof buffer, 0);
                if (got <= 0) {
                    remove_fd(i);
                    continue;
                }
                for (ssize_t k = 0; k < got; k++)
                    if (buffer[k] == '\n') answer_tcp(fds[i].fd, name, conns[i].source);
            }
        }
    }
}

// ---------------------------------------------------------------------------- clients

struct options {
    const char *address;
    int port;
    int sport;
    int count;
    int timeout_ms;
    const char *path;
};

static struct options parse_client(int argc, char **argv, bool takes_path) {
    struct options o = {.sport = 0, .count = -1, .timeout_ms = 5000, .path = "/"};
    int positional = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            o.timeout_ms = parse_number(argv[++i], 1, 3600, "--timeout") * 1000;
        } else if (strcmp(argv[i], "--sport") == 0 && i + 1 < argc) {
            o.sport = parse_number(argv[++i], 1, 65535, "--sport");
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            o.count = parse_number(argv[++i], 0, 1000000, "--count");
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            usage();
        } else if (positional == 0) {
            o.address = argv[i];
            positional++;
        } else if (positional == 1) {
            o.port = parse_number(argv[i], 1, 65535, "port");
            positional++;
        } else if (positional == 2 && takes_path) {
            o.path = argv[i];
            positional++;
        } else {
            usage();
        }
    }
    if (positional < 2) usage();
    return o;
}

static socklen_t resolve(const char *text, int port, struct sockaddr_storage *address) {
    memset(address, 0, sizeof *address);
    struct sockaddr_in *in = (struct sockaddr_in *)address;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)address;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        return sizeof *in;
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return sizeof *in6;
    }
    die("not an IP address: %s", text);
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

// wait_for FD EVENTS DEADLINE: false when the deadline passed first.
static bool wait_for(int fd, short events, long long deadline) {
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return false;
        struct pollfd p = {.fd = fd, .events = events};
        int ready = poll(&p, 1, (int)left);
        if (ready > 0) return true;
        if (ready == 0) return false;
        if (errno != EINTR) die("poll: %s", strerror(errno));
    }
}

// A connected socket, or "refused"/"timeout" and exit 1.
static int connect_tcp(const struct options *o, long long deadline) {
    struct sockaddr_storage address;
    socklen_t length = resolve(o->address, o->port, &address);
    int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&address, length) < 0) {
        if (errno != EINPROGRESS) refused_or_die(errno, "connect");
        if (!wait_for(fd, POLLOUT, deadline)) refused_or_die(ETIMEDOUT, "connect");
        int error = 0;
        socklen_t size = sizeof error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) < 0) die("SO_ERROR: %s", strerror(errno));
        if (error != 0) refused_or_die(error, "connect");
    }
    return fd;
}

// read_line FD LINE DEADLINE: one line without its newline; "closed" or "timeout" otherwise.
static void read_line(int fd, char *line, size_t size, long long deadline) {
    size_t used = 0;
    for (;;) {
        if (!wait_for(fd, POLLIN, deadline)) refused_or_die(ETIMEDOUT, "read");
        char c;
        ssize_t got = recv(fd, &c, 1, 0);
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            refused_or_die(errno, "read");
        }
        if (got == 0) {
            puts("closed");
            exit(1);
        }
        if (c == '\n') break;
        if (used + 1 < size) line[used++] = c;
    }
    line[used] = '\0';
}

static int tcp(const struct options *o) {
    long long deadline = now_ms() + o->timeout_ms;
    int fd = connect_tcp(o, deadline);
    char line[LINE_MAX_LEN];
    read_line(fd, line, sizeof line, deadline);
    puts(line);
    return 0;
}

static int hold(const struct options *o) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd = connect_tcp(o, now_ms() + o->timeout_ms);
    char line[LINE_MAX_LEN];
    read_line(fd, line, sizeof line, now_ms() + o->timeout_ms);
    puts(line);
    for (int asked = 0; o->count < 0 || asked < o->count; asked++) {
        sleep(1);
        if (send(fd, "?\n", 2, MSG_NOSIGNAL) < 0) refused_or_die(errno, "send");
        read_line(fd, line, sizeof line, now_ms() + o->timeout_ms);
        puts(line);
    }
    return 0;
}

static int udp(const struct options *o) {
    struct sockaddr_storage address;
    socklen_t length = resolve(o->address, o->port, &address);
    int fd = socket(address.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    if (o->sport != 0) {
        // A fixed source port makes repeated runs one conntrack flow.
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("SO_REUSEADDR: %s", strerror(errno));
        struct sockaddr_storage local = {0};
        local.ss_family = address.ss_family;
        if (address.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&local)->sin6_port = htons((uint16_t)o->sport);
        else
            ((struct sockaddr_in *)&local)->sin_port = htons((uint16_t)o->sport);
        if (bind(fd, (struct sockaddr *)&local, length) < 0) die("bind source port %d: %s", o->sport, strerror(errno));
    }
    // Connected, so an ICMP unreachable comes back as ECONNREFUSED on the next receive.
    if (connect(fd, (struct sockaddr *)&address, length) < 0) refused_or_die(errno, "connect");
    if (send(fd, "?\n", 2, 0) < 0) refused_or_die(errno, "send");
    if (!wait_for(fd, POLLIN, now_ms() + o->timeout_ms)) refused_or_die(ETIMEDOUT, "receive");
    char buffer[LINE_MAX_LEN];
    ssize_t got = recv(fd, buffer, sizeof buffer - 1, 0);
    if (got < 0) refused_or_die(errno, "receive");
    buffer[got] = '\0';
    buffer[strcspn(buffer, "\n")] = '\0';
    puts(buffer);
    return 0;
}

static int http(const struct options *o) {
    long long deadline = now_ms() + o->timeout_ms;
    int fd = connect_tcp(o, deadline);
    char request[LINE_MAX_LEN];
    bool v6 = strchr(o->address, ':') != NULL;
    int length = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s%s%s\r\nConnection: close\r\n\r\n",
                          o->path, v6 ? "[" : "", o->address, v6 ? "]" : "");
    if (send(fd, request, (size_t)length, MSG_NOSIGNAL) < 0) refused_or_die(errno, "send");
    // Until the server closes: Connection: close asked it to.
    static char response[65536];
    size_t used = 0;
    for (;;) {
        if (!wait_for(fd, POLLIN, deadline)) refused_or_die(ETIMEDOUT, "read");
        ssize_t got = recv(fd, response + used, sizeof response - 1 - used, 0);
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            refused_or_die(errno, "read");
        }
        if (got == 0 || (used += (size_t)got) == sizeof response - 1) break;
    }
    if (used == 0) {
        puts("closed");
        return 1;
    }
    fwrite(response, 1, used, stdout);
    if (response[used - 1] != '\n') putchar('\n');
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *mode = argv[1];
    if (strcmp(mode, "serve") == 0) serve(argc - 2, argv + 2);
    if (strcmp(mode, "tcp") == 0) {
        struct options o = parse_client(argc - 2, argv + 2, false);
        return tcp(&o);
    }
    if (strcmp(mode, "udp") == 0) {
        struct options o = parse_client(argc - 2, argv + 2, false);
        return udp(&o);
    }
    if (strcmp(mode, "hold") == 0) {
        struct options o = parse_client(argc - 2, argv + 2, false);
        return hold(&o);
    }
    if (strcmp(mode, "http") == 0) {
        struct options o = parse_client(argc - 2, argv + 2, true);
        return http(&o);
    }
    usage();
}
