/*
 * _zygote_native: the zygote's optional native helpers (Linux only).
 *
 * The zygote (zygote.py) is a standard-library script that runs without this module (in Docker
 * containers, on other platforms, or when no C compiler was present at install time). Where this module
 * is built, the zygote uses it for the part of each run where every page it writes costs a copy:
 *
 *   huge_arenas()  Python's small-object arenas made from now on come from one region advised for
 *                  transparent huge pages. fork() then copies one page-table entry per 2 MiB of them
 *                  instead of 512, and the zygote's first write after a child has exited takes one fault
 *                  per 2 MiB instead of one per 4 KiB. This holds only while the zygote writes nothing
 *                  while a child lives (a write then splits the huge mapping): hence spawn().
 *
 *   huge_heap()    The same for malloc's heap (Python's objects over 512 bytes), once the zygote has set
 *                  up: its whole 2 MiB windows are collapsed into huge pages.
 *
 *   huge_text()    Bytes of the interpreter's code and read-only data that the preload's constructor moved
 *                  into transparent huge pages: children then share them through the fork instead of
 *                  faulting libpython's file pages in again.
 *
 *                  With LD_PRELOAD and CODEGYM_ZYGOTE_HUGE_PAGES=1 (LocalBackend's default), a constructor
 *                  does all of this before the interpreter starts (the heap only prepared: huge_heap()
 *                  collapses it later).
 *
 *   spawn(...)     fork(); in the child, the set-up that zygote.py's _enter_child does in Python
 *                  (session, cgroups, standard descriptors, close the rest, work directory, rlimits,
 *                  unprivileged identity, parent-death signal), done in C before any Python runs again;
 *                  in the zygote, the supervision of the child until it exits or hits a limit (pipes
 *                  drained into C buffers, a pidfd for the exit), so that no Python code runs (and
 *                  writes) in the zygote while the child lives. The caller then reaps the child, kills
 *                  what is left of the job and builds the reply, in Python, as before.
 *
 *   call_tests(...) In the child: the loop over the call tests. Each test calls the program's function
 *                  and writes the record of the returned value on the result channel in one write, from a
 *                  static buffer. zygote.py's loop, encode() and json touch and allocate objects of many
 *                  sizes (each in a page the child must first copy); this encodes the same wire format
 *                  straight into bytes, with the same strictness (exact builtin types only, no method of
 *                  the value called). It hands back to zygote.py whatever is not that common case: assert
 *                  tests, exceptions, and values it leaves to zygote.py's encoder (anything not plain, ints
 *                  beyond 64 bits, nesting deeper than 100).
 *
 * Nothing here trusts the child: it only reads bytes from pipes, which the caller parses as untrusted.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif

/* ------------------------------------------------------------------------------ huge-page arenas */

#define ARENA_REGION (16UL << 20) /* address space reserved (not committed) for the zygote's arenas */
#define HUGE_PAGE (2UL << 20)
#define MAX_FREE_ARENAS 64

static char *region_start, *region_next, *region_end;
static int region_allocates; /* 0 in children: their new arenas come from mmap, as Python's own */
static void *free_arenas[MAX_FREE_ARENAS];
static int n_free_arenas;
static PyObjectArenaAllocator fallback_arenas;

static void *arena_alloc(void *ctx, size_t size) {
    (void)ctx;
    if (region_allocates && size == ((size_t)1 << 20)) {
        if (n_free_arenas) return free_arenas[--n_free_arenas];
        if (region_next + size <= region_end) {
            void *p = region_next;
            region_next += size;
            return p;
        }
    }
    return fallback_arenas.alloc(fallback_arenas.ctx, size);
}

static void arena_free(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    if (region_start && (char *)ptr >= region_start && (char *)ptr < region_end) {
        /* Kept for reuse: returning part of a huge page to the system would split it. */
        if (region_allocates && n_free_arenas < MAX_FREE_ARENAS) free_arenas[n_free_arenas++] = ptr;
        return;
    }
    fallback_arenas.free(fallback_arenas.ctx, ptr, size);
}

static int install_huge_arenas(void) {
    if (region_start) return 1;
    char *raw = mmap(NULL, ARENA_REGION + HUGE_PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return 0;
    char *start = (char *)(((unsigned long)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    if (madvise(start, ARENA_REGION, MADV_HUGEPAGE) != 0) {
        munmap(raw, ARENA_REGION + HUGE_PAGE);
        return 0;
    }
    region_start = region_next = start;
    region_end = start + ARENA_REGION;
    region_allocates = 1;
    PyObjectArenaAllocator ours = {NULL, arena_alloc, arena_free};
    PyObject_GetArenaAllocator(&fallback_arenas);
    PyObject_SetArenaAllocator(&ours);
    return 1;
}

static PyObject *huge_arenas(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyBool_FromLong(install_huge_arenas());
}

/* ------------------------------------------------------------------------------ huge-page heap */

/* Python's objects over 512 bytes (dict tables, long lists, the compiler's buffers) come from malloc's
   heap. Prepared before the interpreter starts (the program break moved up to a 2 MiB boundary, the heap
   grown 2 MiB at a time, and no trimming of its top, which would split a huge page), the heap's first whole 2 MiB windows can
   later be collapsed into huge pages (huge_heap()): the zygote's first write to them after a run then
   takes one fault per window instead of one per 4 KiB page (about 40 a run), and a fork copies one
   page-table entry for each. This holds only while the zygote writes nothing while a child lives: hence
   spawn(), which also leaves PyOS_AfterFork_Parent() (it releases the import lock, on the heap) until the
   child has exited. */

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static int heap_prepared;

static void prepare_huge_heap(void) {
    /* the heap grows 2 MiB at a time (so that it covers whole windows) and never shrinks */
    if (!mallopt(M_TOP_PAD, (int)HUGE_PAGE) || !mallopt(M_TRIM_THRESHOLD, 256 << 20)) return;
    char *top = sbrk(0);
    if (top == (char *)-1) return;
    unsigned long aligned = ((unsigned long)top + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    if (aligned > (unsigned long)top && sbrk((intptr_t)(aligned - (unsigned long)top)) == (void *)-1) return;
    heap_prepared = 1;
}

static void install_huge_text(void); /* below */

/* Loaded with LD_PRELOAD into the zygote's interpreter (CODEGYM_ZYGOTE_HUGE_PAGES=1 in its environment),
   this runs before Python initializes: every arena, the interpreter's first ones included, is then in the
   huge-page region (Python's arena allocator is a plain struct, settable before Py_Initialize); the heap
   is prepared; and the interpreter's code moves into huge pages. */
__attribute__((constructor)) static void huge_pages_from_the_start(void) {
    const char *wanted = getenv("CODEGYM_ZYGOTE_HUGE_PAGES");
    if (!wanted || wanted[0] != '1') return;
    install_huge_arenas();
    prepare_huge_heap();
    install_huge_text();
}

/* ------------------------------------------------------------------------------ huge-page text */

/* The interpreter's code and read-only data (libpython's non-writable mappings) are file pages: fork()
   does not copy their page-table entries, so every child faults them in again (16 pages per fault,
   about 850 pages per run) and its exit tears them down. Copied into anonymous transparent huge pages
   at the same addresses, they are one page-table entry per 2 MiB that fork() copies and no child faults
   on. Only whole 2 MiB windows inside those mappings are moved; a window whose copy did not get a huge
   page is left as it was (4 KiB anonymous pages would make every fork dearer). */

#define MAPS_BUFFER (256 * 1024)
#define MAX_SPANS 256

typedef struct {
    unsigned long start, end, inode;
    unsigned int dev_major, dev_minor;
    char perms[5];
} mapping_t;

static size_t huge_text_bytes; /* bytes of libpython now in huge pages (0: none) */

static ssize_t read_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    return (ssize_t)got;
}

static int parse_maps(char *text, mapping_t *maps, int cap) {
    int n = 0;
    for (char *line = text; line && *line && n < cap;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        mapping_t m;
        unsigned long offset;
        if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu", &m.start, &m.end, m.perms, &offset, &m.dev_major,
                   &m.dev_minor, &m.inode) == 7)
            maps[n++] = m;
        line = next;
    }
    return n;
}

/* AnonHugePages of the mapping starting at `start`, in kB (-1 if not found). */
static long anon_huge_kb(char *buf, unsigned long start) {
    if (read_file("/proc/self/smaps", buf, MAPS_BUFFER) <= 0) return -1;
    char head[32];
    snprintf(head, sizeof head, "%lx-", start);
    char *at = strstr(buf, head);
    if (!at || (at != buf && at[-1] != '\n')) return -1;
    char *field = strstr(at, "\nAnonHugePages:");
    long kb = -1;
    if (field && sscanf(field + 15, "%ld", &kb) != 1) kb = -1;
    return kb;
}

/* Replace [window, window + HUGE_PAGE) by a copy in one transparent huge page with protection `prot`:
   built aside, then moved over the original in one mremap(), so that the code is never missing. */
static int remap_window(char *buf, unsigned long window, int prot) {
    char *raw = mmap(NULL, 2 * HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return 0;
    char *copy = (char *)(((unsigned long)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    int moved = 0;
    if (madvise(copy, HUGE_PAGE, MADV_HUGEPAGE) == 0) {
        memcpy(copy, (void *)window, HUGE_PAGE);
        if (anon_huge_kb(buf, (unsigned long)copy) == (long)(HUGE_PAGE >> 10) &&
            mprotect(copy, HUGE_PAGE, prot) == 0 &&
            mremap(copy, HUGE_PAGE, HUGE_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)window) != MAP_FAILED)
            moved = 1;
    }
    if (moved) { /* what is left of the reservation, around the moved window */
        if (copy > raw) munmap(raw, (size_t)(copy - raw));
        if (copy + HUGE_PAGE < raw + 2 * HUGE_PAGE)
            munmap(copy + HUGE_PAGE, (size_t)(raw + 2 * HUGE_PAGE - (copy + HUGE_PAGE)));
    } else {
        munmap(raw, 2 * HUGE_PAGE);
    }
    return moved;
}

static void install_huge_text(void) {
    static mapping_t maps[MAX_SPANS];
    char *buf = mmap(NULL, MAPS_BUFFER, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return;
    int n = read_file("/proc/self/maps", buf, MAPS_BUFFER) > 0 ? parse_maps(buf, maps, MAX_SPANS) : 0;
    unsigned long anchor = (unsigned long)(void *)&Py_Initialize;
    int k = 0;
    while (k < n && !(maps[k].start <= anchor && anchor < maps[k].end)) k++;
    if (k < n && maps[k].inode != 0 && maps[k].perms[0] == 'r') {
        /* the contiguous run of libpython's non-writable mappings around its code */
        int lo = k, hi = k;
        while (lo > 0 && maps[lo - 1].end == maps[lo].start && maps[lo - 1].inode == maps[k].inode &&
               maps[lo - 1].perms[0] == 'r' && maps[lo - 1].perms[1] != 'w')
            lo--;
        while (hi + 1 < n && maps[hi + 1].start == maps[hi].end && maps[hi + 1].inode == maps[k].inode &&
               maps[hi + 1].perms[0] == 'r' && maps[hi + 1].perms[1] != 'w')
            hi++;
        unsigned long first = (maps[lo].start + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        for (unsigned long w = first; w + HUGE_PAGE <= maps[hi].end; w += HUGE_PAGE) {
            int prot = PROT_READ;
            for (int j = lo; j <= hi; j++)
                if (maps[j].start < w + HUGE_PAGE && w < maps[j].end && maps[j].perms[2] == 'x') prot |= PROT_EXEC;
            if (remap_window(buf, w, prot)) huge_text_bytes += HUGE_PAGE;
        }
    }
    munmap(buf, MAPS_BUFFER);
}

static PyObject *huge_heap(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    size_t collapsed = 0;
    if (!heap_prepared) return PyLong_FromSize_t(0);
    char *buf = mmap(NULL, MAPS_BUFFER, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return PyLong_FromSize_t(0);
    unsigned long start = 0, end = 0; /* the heap can be several mappings ([heap] on each line) */
    if (read_file("/proc/self/maps", buf, MAPS_BUFFER) > 0) {
        for (char *at = strstr(buf, "[heap]"); at; at = strstr(at + 6, "[heap]")) {
            char *line = at;
            while (line > buf && line[-1] != '\n') line--;
            unsigned long a, b;
            if (sscanf(line, "%lx-%lx", &a, &b) == 2) {
                if (!start || a < start) start = a;
                if (b > end) end = b;
            }
        }
    }
    munmap(buf, MAPS_BUFFER);
    for (unsigned long w = (start + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1); start && w + HUGE_PAGE <= end;
         w += HUGE_PAGE) {
        if (madvise((void *)w, HUGE_PAGE, MADV_HUGEPAGE) == 0 && madvise((void *)w, HUGE_PAGE, MADV_COLLAPSE) == 0)
            collapsed += HUGE_PAGE;
    }
    return PyLong_FromSize_t(collapsed);
}

static PyObject *huge_text(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyLong_FromSize_t(huge_text_bytes);
}

/* ------------------------------------------------------------------------------ spawn */

#define MAX_FDS 16

typedef struct {
    int n_cgroup_fds, cgroup_fds[MAX_FDS];
    int stdin_fd, out_w, err_w, res_w, result_fd, uid, pdeathsig;
    char workdir[4096];
    int n_rlimits;
    struct {
        int resource;
        struct rlimit limit;
    } rlimits[MAX_FDS];
    int n_closes, closes[MAX_FDS];
    int read_fds[3];
    long long caps[3];
    double timeout_s, quiet_s;
} Spec;

typedef struct {
    int reason; /* 0: the child exited; 1: timeout; 2: a stream went over its cap */
    int stream; /* with reason 2: 0 stdout, 1 stderr, 2 results */
    int hup;    /* bit i: stream i reached its end */
    size_t sizes[3], kept[3];
} Watched;

static char *buffers[3];
static size_t allocated[3];

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* In the child, before any Python runs again. Mirrors zygote.py's Zygote._enter_child. */
static void enter_child(const Spec *s) {
    region_allocates = 0;
    setsid();
    for (int i = 0; i < s->n_cgroup_fds; i++) { /* "0": the writing process joins the cgroup */
        if (write(s->cgroup_fds[i], "0", 1) != 1) _exit(70); /* never run outside the job's limits */
    }
    if (dup2(s->stdin_fd, 0) < 0 || dup2(s->out_w, 1) < 0 || dup2(s->err_w, 2) < 0 ||
        dup2(s->res_w, s->result_fd) < 0)
        _exit(70);
    if (syscall(SYS_close_range, (unsigned)s->result_fd + 1, ~0U, 0) != 0) { /* a kernel before 5.9 */
        struct rlimit nofile;
        int last = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536 ? (int)nofile.rlim_cur : 65536;
        for (int fd = s->result_fd + 1; fd < last; fd++) close(fd);
    }
    if (chdir(s->workdir) != 0) _exit(70);
    for (int i = 0; i < s->n_rlimits; i++) setrlimit(s->rlimits[i].resource, &s->rlimits[i].limit);
    if (s->uid >= 0) {
        if (setgroups(0, NULL) != 0 || setgid((gid_t)s->uid) != 0 || setuid((uid_t)s->uid) != 0) _exit(70);
    }
    if (s->pdeathsig) prctl(PR_SET_PDEATHSIG, s->pdeathsig, 0, 0, 0); /* after setuid, which clears it */
}

/* Grow buffer i so that it can take `more` bytes after `used` (never beyond what its cap keeps). */
static int reserve(int i, size_t used, size_t more) {
    if (used + more <= allocated[i]) return 0;
    size_t want = allocated[i] ? allocated[i] : 65536;
    while (want < used + more) want *= 2;
    char *p = allocated[i] ? mremap(buffers[i], allocated[i], want, MREMAP_MAYMOVE)
                           : mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    madvise(p, want, MADV_DONTFORK);
    buffers[i] = p;
    allocated[i] = want;
    return 0;
}

/* In the zygote: drain the child's pipes until it exits or hits a limit. Mirrors Zygote._supervise's loop:
   the result channel is read only once the child has run for quiet_s (most runs end sooner). */
static void watch_child(pid_t pid, const Spec *s, long long start, Watched *w) {
    long long deadline = start + (long long)(s->timeout_s * 1e9);
    long long watch_results_at = start + (long long)(s->quiet_s * 1e9);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int open_[3] = {1, 1, 1}, results_watched = 0;
    static char scratch[65536]; /* what goes over a cap is read (to count it) but not kept */
    memset(w, 0, sizeof *w);
    w->stream = -1;
    for (;;) {
        long long t = now_ns();
        if (t >= deadline) {
            w->reason = 1;
            break;
        }
        if (!results_watched && (pidfd < 0 || t >= watch_results_at)) results_watched = 1;
        struct pollfd p[4];
        int which[4], n = 0;
        if (pidfd >= 0) {
            p[n].fd = pidfd;
            p[n].events = POLLIN;
            which[n++] = -1;
        }
        for (int i = 0; i < 3; i++) {
            if (open_[i] && (i < 2 || results_watched)) {
                p[n].fd = s->read_fds[i];
                p[n].events = POLLIN;
                which[n++] = i;
            }
        }
        for (int k = 0; k < n; k++) p[k].revents = 0;
        long long until = results_watched ? deadline : watch_results_at;
        long long wait_ms = (until - t + 999999) / 1000000;
        if (pidfd < 0 && wait_ms > 10) wait_ms = 10; /* no pidfd: look for the exit every 10 ms */
        if (wait_ms < 1) wait_ms = 1;
        if (poll(p, (nfds_t)n, (int)wait_ms) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        int exited = 0;
        for (int k = 0; k < n; k++) {
            if (!p[k].revents) continue;
            int i = which[k];
            if (i < 0) {
                exited = 1;
                continue;
            }
            size_t cap = (size_t)s->caps[i];
            char *dst = scratch;
            size_t room = sizeof scratch;
            if (w->kept[i] < cap && reserve(i, w->kept[i], 65536) == 0) {
                dst = buffers[i] + w->kept[i];
                room = 65536;
            }
            ssize_t got = read(s->read_fds[i], dst, room);
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                got = 0;
            }
            if (got == 0) {
                open_[i] = 0;
                continue;
            }
            if (dst != scratch) {
                size_t keep = (size_t)got;
                if (w->kept[i] + keep > cap) keep = cap - w->kept[i];
                w->kept[i] += keep;
            }
            w->sizes[i] += (size_t)got;
            if (w->sizes[i] > cap) {
                w->reason = 2;
                w->stream = i;
            }
        }
        if (w->reason || exited) break;
        if (pidfd < 0) {
            siginfo_t info;
            info.si_pid = 0;
            if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) break;
        }
    }
    if (pidfd >= 0) close(pidfd);
    w->hup = (open_[0] ? 0 : 1) | (open_[1] ? 0 : 2) | (open_[2] ? 0 : 4);
}

static int int_items(PyObject *tuple, int *out, int *n) {
    Py_ssize_t size = PyTuple_GET_SIZE(tuple);
    if (size > MAX_FDS) {
        PyErr_SetString(PyExc_ValueError, "spawn: too many descriptors");
        return -1;
    }
    for (Py_ssize_t i = 0; i < size; i++) out[i] = (int)PyLong_AsLong(PyTuple_GET_ITEM(tuple, i));
    *n = (int)size;
    return PyErr_Occurred() ? -1 : 0;
}

static int parse_spec(PyObject *args, Spec *s) {
    PyObject *cgroup_fds, *rlimits, *closes;
    const char *workdir;
    Py_ssize_t workdir_len;
    memset(s, 0, sizeof *s);
    if (!PyArg_ParseTuple(args, "O!iiiiiy#O!iiO!(iii)(LLL)dd:spawn", &PyTuple_Type, &cgroup_fds, &s->stdin_fd,
                          &s->out_w, &s->err_w, &s->res_w, &s->result_fd, &workdir, &workdir_len, &PyTuple_Type,
                          &rlimits, &s->uid, &s->pdeathsig, &PyTuple_Type, &closes, &s->read_fds[0],
                          &s->read_fds[1], &s->read_fds[2], &s->caps[0], &s->caps[1], &s->caps[2], &s->timeout_s,
                          &s->quiet_s))
        return -1;
    if (workdir_len <= 0 || (size_t)workdir_len >= sizeof s->workdir) {
        PyErr_SetString(PyExc_ValueError, "spawn: bad work directory");
        return -1;
    }
    memcpy(s->workdir, workdir, (size_t)workdir_len);
    if (int_items(cgroup_fds, s->cgroup_fds, &s->n_cgroup_fds) < 0 || int_items(closes, s->closes, &s->n_closes) < 0)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(rlimits);
    if (n > MAX_FDS) {
        PyErr_SetString(PyExc_ValueError, "spawn: too many rlimits");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(rlimits, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
            PyErr_SetString(PyExc_ValueError, "spawn: an rlimit is (resource, soft, hard)");
            return -1;
        }
        s->rlimits[i].resource = (int)PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
        s->rlimits[i].limit.rlim_cur = (rlim_t)PyLong_AsLongLong(PyTuple_GET_ITEM(item, 1));
        s->rlimits[i].limit.rlim_max = (rlim_t)PyLong_AsLongLong(PyTuple_GET_ITEM(item, 2));
    }
    s->n_rlimits = (int)n;
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *spawn(PyObject *self, PyObject *args) {
    static Spec s; /* static: nothing on the zygote's Python heap is written between fork and the exit */
    static Watched w;
    (void)self;
    if (parse_spec(args, &s) < 0) return NULL;
    for (int i = 0; i < 3; i++) { /* the buffers exist before the fork: no allocation while the child lives */
        if (reserve(i, 0, 65536) < 0) return PyErr_NoMemory();
    }
    long long start = now_ns();
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        PyOS_AfterFork_Child();
        enter_child(&s);
        Py_RETURN_NONE;
    }
    if (pid < 0) {
        int saved_errno = errno;
        PyOS_AfterFork_Parent();
        errno = saved_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    for (int i = 0; i < s.n_closes; i++) close(s.closes[i]);
    watch_child(pid, &s, start, &w);
    PyOS_AfterFork_Parent();
    return Py_BuildValue("(iiiy#y#y#nnni)", (int)pid, w.reason, w.stream, buffers[0], (Py_ssize_t)w.kept[0],
                         buffers[1], (Py_ssize_t)w.kept[1], buffers[2], (Py_ssize_t)w.kept[2],
                         (Py_ssize_t)w.sizes[0], (Py_ssize_t)w.sizes[1], (Py_ssize_t)w.sizes[2], w.hup);
}

/* ------------------------------------------------------------------------------ system calls */
/* The few calls that the zygote's set-up needs and Python 3.11's os module lacks: with them here, the
   zygote never loads ctypes (and libffi), which every fork would otherwise copy. Each returns 0 or errno. */

static PyObject *result(int ok) { return PyLong_FromLong(ok ? 0 : errno); }

static PyObject *py_prctl(PyObject *self, PyObject *args) {
    int option;
    unsigned long arg;
    (void)self;
    if (!PyArg_ParseTuple(args, "ik:prctl", &option, &arg)) return NULL;
    return result(prctl(option, arg, 0, 0, 0) == 0);
}

static PyObject *py_unshare(PyObject *self, PyObject *args) {
    int flags;
    (void)self;
    if (!PyArg_ParseTuple(args, "i:unshare", &flags)) return NULL;
    return result(unshare(flags) == 0);
}

static PyObject *py_mount(PyObject *self, PyObject *args) {
    const char *source, *target, *fstype, *data;
    unsigned long flags;
    (void)self;
    if (!PyArg_ParseTuple(args, "zzzkz:mount", &source, &target, &fstype, &flags, &data)) return NULL;
    return result(mount(source, target, fstype, flags, data) == 0);
}

static PyObject *py_umount2(PyObject *self, PyObject *args) {
    const char *target;
    int flags;
    (void)self;
    if (!PyArg_ParseTuple(args, "si:umount2", &target, &flags)) return NULL;
    return result(umount2(target, flags) == 0);
}

/* ----------------------------------------------------------------------------- call test records */

#define WIRE_MAX_DEPTH 100 /* zygote.py's _MAX_DEPTH */

typedef struct {
    char *data;
    size_t len, cap;
} Out;

static char out_static[16384]; /* most records fit: no allocation in the child */

static int out_reserve(Out *o, size_t more) {
    if (o->len + more <= o->cap) return 0;
    size_t cap = o->cap * 2;
    while (cap < o->len + more) cap *= 2;
    char *p = o->data == out_static ? PyMem_RawMalloc(cap) : PyMem_RawRealloc(o->data, cap);
    if (!p) return -1;
    if (o->data == out_static) memcpy(p, out_static, o->len);
    o->data = p;
    o->cap = cap;
    return 0;
}

static int out_put(Out *o, const char *text, size_t n) {
    if (out_reserve(o, n) < 0) return -1;
    memcpy(o->data + o->len, text, n);
    o->len += n;
    return 0;
}

#define PUT(o, lit) out_put((o), (lit), sizeof(lit) - 1)

/* A str as json's encode_basestring_ascii writes it: printable ASCII as is (but " and \), the usual
   two-character escapes, everything else \uXXXX (lower-case hex; a surrogate pair above U+FFFF). */
static int put_str(Out *o, PyObject *text) {
    static const char hex[] = "0123456789abcdef";
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (out_reserve(o, (size_t)n * 12 + 2) < 0) return -1;
    char *w = o->data + o->len;
    *w++ = '"';
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, k);
        if (c >= ' ' && c <= '~' && c != '\\' && c != '"') {
            *w++ = (char)c;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '\\': *w++ = '\\'; continue;
        case '"': *w++ = '"'; continue;
        case '\b': *w++ = 'b'; continue;
        case '\f': *w++ = 'f'; continue;
        case '\n': *w++ = 'n'; continue;
        case '\r': *w++ = 'r'; continue;
        case '\t': *w++ = 't'; continue;
        }
        if (c >= 0x10000) {
            Py_UCS4 v = c - 0x10000;
            Py_UCS4 high = 0xd800 | ((v >> 10) & 0x3ff);
            *w++ = 'u';
            for (int shift = 12; shift >= 0; shift -= 4) *w++ = hex[(high >> shift) & 0xf];
            *w++ = '\\';
            c = 0xdc00 | (v & 0x3ff);
        }
        *w++ = 'u';
        for (int shift = 12; shift >= 0; shift -= 4) *w++ = hex[(c >> shift) & 0xf];
    }
    *w++ = '"';
    o->len = (size_t)(w - o->data);
    return 0;
}

static int put_wire(Out *o, PyObject *value, int depth);

/* The items of an iterable as a JSON array (no method of a user type is reached: exact types only). */
static int put_items(Out *o, PyObject *container, int depth) {
    if (PUT(o, "[") < 0) return -1;
    int status = 1;
    if (PyList_CheckExact(container) || PyTuple_CheckExact(container)) {
        /* No Python code runs while encoding (exact types only), so the list cannot change under us. */
        for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(container); k++) {
            if (k && PUT(o, ",") < 0) return -1;
            if ((status = put_wire(o, PySequence_Fast_GET_ITEM(container, k), depth + 1)) <= 0) return status;
        }
        return PUT(o, "]") < 0 ? -1 : 1;
    }
    PyObject *items = PyObject_GetIter(container); /* a set or frozenset: Python's own iteration order */
    if (!items) return -1;
    PyObject *item;
    for (int first = 1; status > 0 && (item = PyIter_Next(items)) != NULL; first = 0) {
        if (!first && PUT(o, ",") < 0) status = -1;
        if (status > 0) status = put_wire(o, item, depth + 1);
        Py_DECREF(item);
    }
    Py_DECREF(items);
    if (status > 0 && PyErr_Occurred()) status = -1;
    if (status <= 0) return status;
    return PUT(o, "]") < 0 ? -1 : 1;
}

/* 1: written; 0: not handled here (zygote.py encodes it, or says why it is not plain); -1: exception. */
static int put_wire(Out *o, PyObject *value, int depth) {
    char number[32];
    if (value == Py_None) return PUT(o, "null") < 0 ? -1 : 1;
    if (value == Py_True) return PUT(o, "true") < 0 ? -1 : 1;
    if (value == Py_False) return PUT(o, "false") < 0 ? -1 : 1;
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) return 0;
        if (v == -1 && PyErr_Occurred()) return -1;
        int n = snprintf(number, sizeof number, "%lld", v);
        return out_put(o, number, (size_t)n) < 0 ? -1 : 1;
    }
    if (PyFloat_CheckExact(value)) {
        double v = PyFloat_AS_DOUBLE(value);
        if (Py_IS_NAN(v)) return PUT(o, "NaN") < 0 ? -1 : 1;
        if (Py_IS_INFINITY(v)) return (v > 0 ? PUT(o, "Infinity") : PUT(o, "-Infinity")) < 0 ? -1 : 1;
        char *text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (!text) return -1;
        int rc = out_put(o, text, strlen(text));
        PyMem_Free(text);
        return rc < 0 ? -1 : 1;
    }
    if (PyUnicode_CheckExact(value)) return put_str(o, value) < 0 ? -1 : 1;
    if (depth > WIRE_MAX_DEPTH) return 0;
    if (PyList_CheckExact(value)) return put_items(o, value, depth);
    const char *tag = PyTuple_CheckExact(value)       ? "{\"t\":"
                      : PySet_CheckExact(value)       ? "{\"s\":"
                      : PyFrozenSet_CheckExact(value) ? "{\"f\":"
                      : PyDict_CheckExact(value)      ? "{\"d\":["
                      : PyBytes_CheckExact(value)     ? "{\"b\":\""
                                                      : NULL;
    if (!tag) return 0;
    if (out_put(o, tag, strlen(tag)) < 0) return -1;
    if (PyBytes_CheckExact(value)) {
        static const char hex[] = "0123456789abcdef";
        Py_ssize_t n = PyBytes_GET_SIZE(value);
        const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(value);
        if (out_reserve(o, (size_t)n * 2 + 2) < 0) return -1;
        for (Py_ssize_t k = 0; k < n; k++) {
            o->data[o->len++] = hex[b[k] >> 4];
            o->data[o->len++] = hex[b[k] & 0xf];
        }
        return PUT(o, "\"}") < 0 ? -1 : 1;
    }
    if (PyDict_CheckExact(value)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        int first = 1, status;
        while (PyDict_Next(value, &pos, &k, &v)) {
            if ((!first && PUT(o, ",") < 0) || PUT(o, "[") < 0) return -1;
            first = 0;
            if ((status = put_wire(o, k, depth + 1)) <= 0) return status;
            if (PUT(o, ",") < 0) return -1;
            if ((status = put_wire(o, v, depth + 1)) <= 0) return status;
            if (PUT(o, "]") < 0) return -1;
        }
        return PUT(o, "]}") < 0 ? -1 : 1;
    }
    int status = put_items(o, value, depth);
    if (status <= 0) return status;
    return PUT(o, "}") < 0 ? -1 : 1;
}

/* Write the record [i, t_ns, WIRE] of a call test that returned `value` (4-byte length, then the JSON).
   1: written (a failed write loses it, as in zygote.py); 0: a value left to zygote.py, nothing written. */
static int value_record(int fd, Py_ssize_t index, long long t_ns, PyObject *value) {
    Out o = {out_static, 4, sizeof out_static}; /* 4: room for the length */
    o.len += (size_t)snprintf(out_static + 4, 64, "[%zd,%lld,", index, t_ns);
    int status = put_wire(&o, value, 0);
    if (status > 0 && PUT(&o, "]") < 0) status = -1;
    if (status > 0) {
        size_t size = o.len - 4;
        o.data[0] = (char)(size >> 24);
        o.data[1] = (char)(size >> 16);
        o.data[2] = (char)(size >> 8);
        o.data[3] = (char)size;
        for (size_t done = 0; done < o.len;) {
            ssize_t w = write(fd, o.data + done, o.len - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            done += (size_t)w;
        }
    }
    if (o.data != out_static) PyMem_RawFree(o.data);
    if (status < 0) PyErr_Clear(); /* out of memory while encoding: zygote.py tries */
    return status > 0;
}

enum { CALL_VALUE = 0, CALL_RAISED = 1, CALL_IN_PYTHON = 2, CALL_DONE = 3 };

static PyObject *call_tests(PyObject *self, PyObject *args) {
    PyObject *ns, *entry, *calls;
    Py_ssize_t start;
    int fd;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!UO!ni:call_tests", &PyDict_Type, &ns, &entry, &PyTuple_Type, &calls, &start,
                          &fd))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(calls);
    for (Py_ssize_t i = start < 0 ? 0 : start; i < n; i++) {
        PyObject *call_args = PyTuple_GET_ITEM(calls, i);
        PyObject *fn = PyTuple_CheckExact(call_args) ? PyDict_GetItemWithError(ns, entry) : NULL;
        if (!fn) { /* an assert test, or no such function (or a failing lookup): zygote.py runs test i */
            PyErr_Clear();
            return Py_BuildValue("(niOi)", i, CALL_IN_PYTHON, Py_None, 0);
        }
        Py_INCREF(fn);
        long long t0 = now_ns();
        PyObject *value = PyObject_Call(fn, call_args, NULL);
        long long dt = now_ns() - t0;
        Py_DECREF(fn);
        if (!value) {
            PyObject *type, *exc, *tb;
            PyErr_Fetch(&type, &exc, &tb);
            PyErr_NormalizeException(&type, &exc, &tb);
            if (exc && tb) PyException_SetTraceback(exc, tb);
            Py_XDECREF(type);
            Py_XDECREF(tb);
            if (!exc) {
                exc = Py_None;
                Py_INCREF(exc);
            }
            return Py_BuildValue("(niNL)", i, CALL_RAISED, exc, dt);
        }
        if (!value_record(fd, i, dt, value)) return Py_BuildValue("(niNL)", i, CALL_VALUE, value, dt);
        Py_DECREF(value);
    }
    return Py_BuildValue("(niOi)", n, CALL_DONE, Py_None, 0);
}

static PyMethodDef methods[] = {
    {"prctl", py_prctl, METH_VARARGS, "prctl(option, arg) -> 0 or errno (the other three arguments 0)."},
    {"unshare", py_unshare, METH_VARARGS, "unshare(flags) -> 0 or errno."},
    {"mount", py_mount, METH_VARARGS, "mount(source, target, fstype, flags, data) -> 0 or errno (None: NULL)."},
    {"umount2", py_umount2, METH_VARARGS, "umount2(target, flags) -> 0 or errno."},
    {"huge_arenas", huge_arenas, METH_NOARGS,
     "huge_arenas() -> bool\n\nTake Python's small-object arenas made from now on from a region advised for "
     "transparent huge pages (True if the region could be made)."},
    {"huge_heap", huge_heap, METH_NOARGS,
     "huge_heap() -> int\n\nCollapse the whole 2 MiB windows of malloc's heap into transparent huge pages, "
     "where the preload prepared the heap; the bytes collapsed (0: none)."},
    {"huge_text", huge_text, METH_NOARGS,
     "huge_text() -> int\n\nBytes of the interpreter's code and read-only data that the preload moved into "
     "transparent huge pages (0: none)."},
    {"spawn", spawn, METH_VARARGS,
     "spawn(cgroup_fds, stdin_fd, out_w, err_w, res_w, result_fd, workdir, rlimits, uid, pdeathsig, closes,\n"
     "      (out_r, err_r, res_r), (out_cap, err_cap, res_cap), timeout_s, quiet_s)\n\n"
     "Fork. The child is set up (session, cgroups, descriptors, work directory, rlimits, identity,\n"
     "parent-death signal) and gets None. The zygote closes `closes`, drains the three pipes until the child\n"
     "exits, the timeout passes or a stream goes over its cap, and gets (pid, reason, stream, out, err, res,\n"
     "out_size, err_size, res_size, hup): reason 0 exited, 1 timeout, 2 over a cap (stream 0-2); hup has bit\n"
     "i set once stream i reached its end. The child is not reaped."},
    {"call_tests", call_tests, METH_VARARGS,
     "call_tests(ns, entry, calls, start, fd) -> (i, kind, outcome, t_ns)\n\nIn the child: from test "
     "`start` on, call ns[entry](*calls[i]) and write each returned value's record [i, t_ns, WIRE] on `fd`, "
     "until a test needs zygote.py: kind 0, test i returned `outcome`, a value left to zygote.py's encoder\n"
     "(not plain data, an int beyond 64 bits, nested too deep); 1, it raised `outcome`; 2, zygote.py runs "
     "test i itself (calls[i] is not a tuple: an assert test; or ns has no `entry`); 3, all done (i = "
     "len(calls))."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_zygote_native",
                                    "The zygote's optional native helpers (see the C source's header).", -1,
                                    methods};

/* zygote.py uses this module only if its ABI_VERSION is the one it was written for: an extension left
   over from an older install (an editable install not rebuilt after an update) is then ignored, not
   called with arguments it does not understand. Raise it with every change of a function's arguments. */
#define ABI_VERSION 4

PyMODINIT_FUNC PyInit__zygote_native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "ABI_VERSION", ABI_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
