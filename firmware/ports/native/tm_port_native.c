/*
 * tm_port_native.c - the firmware as a POSIX process, its UART a pseudo-terminal.
 *
 * Like QEMU's `-serial pty`, it opens a pty, prints
 *     tinyml-host-board: pty /dev/pts/N
 * on stdout and serves the protocol on it, so the host harness reaches it
 * through the same pyserial device path as the emulated board. The kernel's
 * pty queue is the receive ring. Latency is wall-clock nanoseconds.
 *
 * RESET re-executes the program with the pty's descriptors kept open (their
 * numbers passed in TM_HOST_PTY_FDS), so every static starts over as after a
 * hardware reset while the host's port stays valid.
 */
#define _XOPEN_SOURCE 600

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tm_port.h"

#ifndef TINYML_BOARD_NAME
#define TINYML_BOARD_NAME "native"
#endif

static int master_fd = -1;
static int slave_fd = -1;
static pid_t parent_pid;

static const tm_port_info_t host_info = {
    TINYML_BOARD_NAME,
    1000000000u,
    TM_UNIT_NANOSECONDS,
    4096u, /* the Linux pty queue holds at least this much */
};

static void die(const char *what)
{
    fprintf(stderr, "tinyml-host-board: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void open_pty(void)
{
    struct termios raw;
    const char *name;
    master_fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_fd < 0 || grantpt(master_fd) != 0 || unlockpt(master_fd) != 0) {
        die("posix_openpt");
    }
    name = ptsname(master_fd);
    if (name == NULL) {
        die("ptsname");
    }
    /* Holding the slave open keeps the master readable (no EIO/HUP) between
     * host connections, as a UART does not notice cables. */
    slave_fd = open(name, O_RDWR | O_NOCTTY);
    if (slave_fd < 0 || tcgetattr(slave_fd, &raw) != 0) {
        die("open pty slave");
    }
    /* Raw bytes both ways: no echo, no CR/LF translation, no signals. */
    raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    raw.c_oflag &= ~(tcflag_t)OPOST;
    raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    raw.c_cflag |= CS8;
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(slave_fd, TCSANOW, &raw) != 0) {
        die("tcsetattr");
    }
}

void tm_port_init(void)
{
    const char *fds = getenv("TM_HOST_PTY_FDS");
    const char *ppid = getenv("TM_HOST_PARENT_PID");
    char text[64];
    if (fds != NULL && sscanf(fds, "%d,%d", &master_fd, &slave_fd) == 2) {
        /* Re-executed by tm_port_reset: same pty. */
    } else {
        open_pty();
        snprintf(text, sizeof text, "%d,%d", master_fd, slave_fd);
        setenv("TM_HOST_PTY_FDS", text, 1);
    }
    if (ppid != NULL) {
        parent_pid = (pid_t)atol(ppid);
    } else {
        parent_pid = getppid();
        snprintf(text, sizeof text, "%ld", (long)parent_pid);
        setenv("TM_HOST_PARENT_PID", text, 1);
    }
    if (fcntl(master_fd, F_SETFL, fcntl(master_fd, F_GETFL) | O_NONBLOCK) != 0) {
        die("fcntl");
    }
    printf("tinyml-host-board: pty %s\n", ptsname(master_fd));
    fflush(stdout);
}

const tm_port_info_t *tm_port_info(void) { return &host_info; }

size_t tm_port_uart_read(uint8_t *buf, size_t max)
{
    ssize_t got = read(master_fd, buf, max);
    return got > 0 ? (size_t)got : 0u;
}

void tm_port_uart_write(const uint8_t *buf, size_t len)
{
    while (len > 0u) {
        ssize_t put = write(master_fd, buf, len);
        if (put > 0) {
            buf += put;
            len -= (size_t)put;
        } else if (put < 0 && errno != EAGAIN && errno != EINTR) {
            die("write");
        } else {
            /* Queue full: wait as a UART with flow control would. */
            struct pollfd out = {0};
            out.fd = master_fd;
            out.events = POLLOUT;
            (void)poll(&out, 1, 100);
        }
    }
}

uint64_t tm_port_timer_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

void tm_port_idle(void)
{
    struct pollfd in = {0};
    if (getppid() != parent_pid) {
        exit(0); /* whoever started the board is gone */
    }
    in.fd = master_fd;
    in.events = POLLIN;
    (void)poll(&in, 1, 200);
}

void tm_port_reset(void)
{
    static char *const argv[] = {"tinyml-host-board", NULL};
    fflush(stdout);
    /* A reset loses what the UART had received. */
    (void)tcflush(master_fd, TCIFLUSH);
    execv("/proc/self/exe", argv);
    die("execv");
}
