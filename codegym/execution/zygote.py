#!/usr/bin/env python3
"""CodeGym's sandbox zygote: a small, single-threaded server that forks one contained child per job.

This file is a STANDALONE script: standard library only, no ``codegym`` import, Python >= 3.8. The local
backend starts it with the trainer's interpreter; the Docker backend runs the very same file inside the
sandbox container (``docker exec -i <container> python3 -I -S /path/zygote.py``).

Launching
---------
::

    python3 -I -S zygote.py [--uid auto|none|N] [--no-netns] [--no-mountns] [--no-cgroup]
                            [--workroot DIR] [--preload]

* Start it with a scrubbed environment (``env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}``): the
  environment block of the zygote is what ``/proc/<child>/environ`` shows inside the sandbox.
* ``--uid auto`` (default): when running as root, each child drops to uid/gid ``200000 + zygote pid``,
  a per-zygote unprivileged id (so that ``kill(-1)`` from one sandbox cannot reach another's processes);
  ``none`` keeps the current uid (as root without the mount namespace, that leaves files and processes
  unprotected: for debugging only); a number uses that uid.
* As root, the zygote enters its own network namespace (only a downed loopback: no network) and mount
  namespace (mount propagation made private first, private tmpfs on ``/tmp`` and ``/dev/shm``, every
  other file system remounted read-only and nosuid) once at start-up; ``--no-netns`` / ``--no-mountns``
  disable that. ``--no-cgroup`` disables the cgroup v1 memory and pids controllers, which are used when
  writable (``/sys/fs/cgroup/{memory,pids}``). Each missing mechanism falls back as documented in
  ``docs/sandbox.md`` and is reported in the hello frame.
* After every run, once its processes are dead, the zygote removes the run's work directory and what it
  left in ``/tmp`` and ``/dev/shm``: everything but the zygote's own entries with the mount namespace;
  without it, the entries owned by the run's uid (also in ``/var/tmp``); with no uid of its own, nothing
  (see ``Zygote._shared_dirs``). A zygote that cannot remove something exits after its reply.
* ``--preload`` pre-imports common standard modules (typing, math, re, collections, ...) so children
  get them for free; ``--preload-modules a,b,c`` chooses the list. ``--site-dirs DIR:DIR`` appends import
  directories to ``sys.path`` (the trainer's site-packages, for a zygote started with ``-S``).
* ``--cpu N`` pins the zygote, and so every child, to CPU ``N``.
* ``--no-native`` ignores the native helpers (``_zygote_native``) even where they were built;
  ``--no-huge-pages`` uses them without putting Python's arenas and heap in transparent huge pages (the
  backend then also leaves ``CODEGYM_ZYGOTE_HUGE_PAGES`` out of the environment, which the helpers'
  preload reads to do the same, and to move the interpreter's code, before the interpreter starts).
* ``--oom-control FILE``: without a cgroup of its own, count OOM kills in this ``memory.oom_control``
  (the container's, for a zygote alone in a container), so that an OOM-killed run is ``memory_limit``.
* ``--pids-current FILE``: without a pids cgroup of its own, the count in this ``pids.current`` (the
  container's) tells after a run whether any of its processes is left; if none, no kill is needed.
* Requests may be written ahead: the zygote reads the next request only after it answered the previous
  one, so a parent can queue a small request in the pipe to keep the zygote busy (keep queued requests
  smaller than the pipe buffer, or a blocking write can deadlock against a large reply).

Framing
-------
Both directions use the same frames on the zygote's stdin (requests) and stdout (replies)::

    frame = 4-byte unsigned big-endian length N, then N bytes of UTF-8 JSON (one object)

The zygote writes a hello frame as soon as it is ready::

    {"type": "hello", "protocol": 1, "pid": int, "python": "3.11.7",
     "features": {"root": bool, "uid": int|null, "netns": bool, "mountns": bool,
                  "cgroup_memory": str|null, "cgroup_pids": str|null, "cpu": int|null, "pidfd": bool,
                  "workroot": str, "unreadable_paths": [str, ...]}}

Requests (one at a time; the zygote answers each before reading the next)::

    {"type": "ping"}                -> {"type": "pong"}
    {"type": "exit"}                -> the zygote cleans up and exits (so does EOF on stdin)
    {"type": "run", "id": any, "program": str, "mode": "call" | "stdio", "entry_point": str,
     "tests": [{"kind": "call", "args": WIRE_LIST} | {"kind": "assert", "code": str}
               | {"kind": "stdio", "stdin": str}, ...],
     "limits": {"timeout_s": float, "memory_mb": int, "max_output_bytes": int, "max_file_mb": int,
                "max_open_files": int, "max_procs": int}}

Expected values are never part of a request. In ``call`` mode one child runs the program once and then
every call/assert test in order; in ``stdio`` mode one child per test runs the whole program as
``__main__`` with the test's input on fd 0. Reply::

    {"type": "result", "id": any, "runs": [RUN, ...]}     # one RUN per child (stdio: one per test)
                                                          # a syntax error found by the zygote's own
                                                          # compile(): one RUN, no child
    RUN = {"records": [str, ...],            # raw JSON texts the child wrote on its result channel
           "stdout": str, "stderr": str,     # captured (decoded UTF-8 with replacement), capped
           "stdout_bytes": int, "stderr_bytes": int,
           "exit_code": int|null, "signal": int|null,
           "limit": null | "timeout" | "memory" | "output",
           "limit_stream": null | "stdout" | "stderr" | "results",   # which stream hit its cap
           "wall_s": float, "cpu_s": float, "maxrss_kb": int}
    {"type": "error", "id": any, "message": str}         # a malformed request (the zygote stays up)

Records are untrusted (the program shares the child process with the harness and can write anything);
the parent parses them and only believes returned values, which it compares with expected values that
never entered the sandbox. Records written by the harness:

    {"ev": "syntax_error", "msg": str, "lineno": int|null, "offset": int|null, "text": str|null}
    {"ev": "program_error", "error": "Type: message", "lineno": int|null}
    [i, t_ns, WIRE]                                                  # call test i returned
    [i, t_ns]                                                        # assert test i passed
    {"ev": "test", "i": int, "error": "Type: message", "assert": bool, "memory": bool, "t": float}
    {"ev": "test", "i": int, "unplain": "type name", "t": float}     # returned a non-plain value
    {"ev": "done"}

The two common records are arrays (``t_ns``: the test's duration in integer nanoseconds), written with
no dict or float (with the native helpers, in C: ``call_tests``), which touches fewer of the zygote's
pages (each a copy-on-write fault in the child). The other records' ``t`` is in seconds.

WIRE values are JSON with tags for what JSON lacks: ``null``/``true``/``false``/numbers (NaN,
Infinity allowed)/strings/arrays are themselves (arrays are lists); every JSON object is a tag with one
key: ``{"t": [...]}`` tuple, ``{"s": [...]}`` set, ``{"f": [...]}`` frozenset, ``{"d": [[k, v], ...]}``
dict, ``{"b": "hex"}`` bytes, ``{"i": "hex"}`` an int too large for decimal text. The encoder accepts
exact builtin types only (no subclasses) and calls no method of the value.
"""

# ruff: noqa: UP031  (%-formatting keeps this standalone script simple and old-Python friendly)
from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

try:  # optional native helpers, built next to this file at install time (see _zygote_native.c)
    import _zygote_native as _native

    if getattr(_native, "ABI_VERSION", None) != 4:  # built from another version of the C file
        _native = None
except ImportError:
    _native = None

PROTOCOL = 1
_MAX_REQUEST = 64 * 1024 * 1024
_MAX_RECORDS_BYTES = 16 * 1024 * 1024
_MAX_DEPTH = 100
_BIG_INT = 1 << 4000
_RESULT_FD = 3
_UID_BASE = 200000
_COMPILE_IN_ZYGOTE_MAX = 64 * 1024
_RECORDS_QUIET_S = 0.02

# Bound before any user code runs, so that a program that patches builtins or modules in its own child
# cannot change what the harness uses (it could still walk frames and fake its own records; that only
# changes the values it reports, which are then judged in the parent).
_type = type
_len = len
_str = str
_isinstance = isinstance
_enumerate = enumerate
_compile = compile
_exec = exec
_getattr = getattr
_format = format
_list, _tuple, _dict, _set, _frozenset = list, tuple, dict, set, frozenset
_bytes, _int, _float, _bool = bytes, int, float, bool
_dict_items = dict.items
_bytes_hex = bytes.hex
_BaseException = BaseException
_MemoryError = MemoryError
_AssertionError = AssertionError
_SystemExit = SystemExit
_KeyError = KeyError
_SyntaxError = SyntaxError
_ValueError = ValueError
_RecursionError = RecursionError
_json_dumps = json.dumps
_json_loads = json.loads
_perf_ns = time.perf_counter_ns
_os_write = os.write
_exit = os._exit
_builtins_module = sys.modules["builtins"]
try:
    from resource import setrlimit as _setrlimit
except ImportError:  # pragma: no cover - not a Unix

    def _setrlimit(which, value):
        raise OSError("no resource module")


try:  # the C encoder: no Python-level code (that a program could patch) runs while encoding records
    import _json

    _c_encoder = _json.make_encoder(
        None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )
except (ImportError, AttributeError, TypeError):  # pragma: no cover - other interpreters
    _c_encoder = None
_join = "".join
try:
    _scan_once = json.decoder.JSONDecoder().scan_once
except AttributeError:  # pragma: no cover
    _scan_once = None


def _dumps_record(obj):
    if _c_encoder is not None:
        return _join(_c_encoder(obj, 0))
    return _json_dumps(obj, separators=(",", ":"))


def _record_frame(payload):
    """A record as written on the result channel: 4-byte big-endian length, then the UTF-8 JSON."""
    return _len(payload).to_bytes(4, "big") + payload


_DONE_FRAME = _record_frame(b'{"ev":"done"}')


# --------------------------------------------------------------------------- wire encoding


class Unplain(Exception):
    """Raised by :func:`encode` for a value that is not plain data."""


def encode(value, depth=0):
    """Turn plain data into a JSON-ready structure (tags for tuple/set/dict/bytes); exact types only."""
    t = _type(value)
    if value is None or t is _bool or t is _str or t is _float:
        return value
    if t is _int:
        if -_BIG_INT < value < _BIG_INT:
            return value
        return {"i": ("-" if value < 0 else "") + _format(-value if value < 0 else value, "x")}
    if depth > _MAX_DEPTH:
        raise Unplain("nested too deep")
    if t is _list:
        return [encode(x, depth + 1) for x in value]
    if t is _tuple:
        return {"t": [encode(x, depth + 1) for x in value]}
    if t is _dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in _dict_items(value)]}
    if t is _set:
        return {"s": [encode(x, depth + 1) for x in value]}
    if t is _frozenset:
        return {"f": [encode(x, depth + 1) for x in value]}
    if t is _bytes:
        return {"b": _bytes_hex(value)}
    raise Unplain(_type.__dict__["__name__"].__get__(t))


def decode_tag(obj):
    """``json.loads`` object hook that turns a tag back into its value (used for test arguments)."""
    if _len(obj) != 1:
        raise ValueError("a wire object must have exactly one tag key")
    ((tag, val),) = obj.items()
    if tag == "t":
        return tuple(val)
    if tag == "s":
        return set(val)
    if tag == "f":
        return frozenset(val)
    if tag == "d":
        return {k: v for k, v in val}
    if tag == "b":
        return bytes.fromhex(val)
    if tag == "i":
        return -int(val[1:], 16) if val.startswith("-") else int(val, 16)
    raise ValueError("unknown wire tag %r" % (tag,))


def _from_wire(value):
    """Rebuild plain data from a wire value already parsed by ``json`` (lists and tag objects)."""
    t = _type(value)
    if t is _list:
        return [_from_wire(x) for x in value]
    if t is _dict:
        return decode_tag({k: _from_wire(v) for k, v in value.items()})
    return value


# --------------------------------------------------------------------------- framing


def read_exact(fd, n):
    """Read exactly ``n`` bytes from ``fd``; return None on EOF."""
    chunks = []
    while n:
        try:
            chunk = os.read(fd, min(n, 1 << 20))
        except InterruptedError:
            continue
        if not chunk:
            return None
        chunks.append(chunk)
        n -= _len(chunk)
    return b"".join(chunks)


def write_all(fd, data):
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]


def send_frame(fd, obj):
    """Write one frame (JSON object) to ``fd``."""
    payload = _dumps_record(obj).encode("utf-8")
    write_all(fd, _len(payload).to_bytes(4, "big") + payload)


def read_frame(fd):
    """Read one frame from ``fd``; None on EOF."""
    head = read_exact(fd, 4)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    if n > _MAX_REQUEST:
        raise ValueError("frame of %d bytes exceeds %d" % (n, _MAX_REQUEST))
    body = read_exact(fd, n)
    if body is None:
        return None
    text = body.decode("utf-8")
    if _scan_once is not None:
        # The C scanner straight away: json.loads would add Python-level frames, a regex match and
        # a decoder object per frame, and every object the zygote touches between forks is a page
        # fault (a fork write-protects all of its memory). Frames have no surrounding whitespace.
        try:
            obj, end = _scan_once(text, 0)
        except StopIteration:
            raise ValueError("frame is not JSON") from None
        if end != _len(text):
            raise ValueError("extra data after the JSON object of a frame")
        return obj
    return _json_loads(text)


# --------------------------------------------------------------------------- platform helpers

_libc = None


def _get_libc():
    global _libc
    if _libc is None:
        import ctypes

        # The running process's own symbols include libc; ctypes.util.find_library would start
        # `ldconfig` in a subprocess and leave the subprocess module in the zygote.
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _prctl(option, arg):
    if _native is not None:
        return _native.prctl(option, arg) == 0
    try:
        return _get_libc().prctl(option, arg, 0, 0, 0) == 0
    except Exception:
        return False


_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


def _unshare(flags):
    if _native is not None:
        return _native.unshare(flags) == 0
    try:
        libc = _get_libc()
    except Exception:
        return False
    return libc.unshare(flags) == 0


def disable_ipc_objects(own_namespace):
    """Zero the IPC namespace's limits on SysV IPC objects and POSIX message queues, where it is ours.

    Unprivileged processes (the runs) can then create no shared memory segment, semaphore set or
    message queue, which would otherwise outlive the run that made it. The limits are per IPC
    namespace: they are written only when ``own_namespace`` (the zygote has just unshared a new one),
    never otherwise (that would change the host's); a container's are set when it is created.
    True if all four limits are zero.
    """
    limits = (
        ("/proc/sys/kernel/shmmni", 0),
        ("/proc/sys/kernel/msgmni", 0),
        ("/proc/sys/fs/mqueue/queues_max", 0),
        ("/proc/sys/kernel/sem", 3),  # SEMMSL SEMMNS SEMOPM SEMMNI: the fourth
    )
    if own_namespace:
        for path, field in limits:
            try:
                values = _read(path).split()
                values[field] = b"0"
                _write(path, b" ".join(values).decode())
            except (OSError, IndexError):
                pass
    for path, field in limits:
        try:
            if _read(path).split()[field] != b"0":
                return False
        except (OSError, IndexError):
            return False
    return True


def _mount(source, target, fstype, flags, data):
    if _native is not None:
        return _native.mount(source, target, fstype, flags, data) == 0
    import ctypes

    libc = _get_libc()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    return libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) == 0


def _umount_detached(path):
    """``umount2(path, MNT_DETACH)``; True on success."""
    if _native is not None:
        return _native.umount2(path, 2) == 0
    return _get_libc().umount2(path.encode(), 2) == 0


def _mount_points():
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if _len(parts) > 4:
                points.append(parts[4].replace("\\040", " "))
    return points


def setup_mount_namespace():
    """Private mount namespace: private propagation, tmpfs on /tmp and /dev/shm, the rest read-only."""
    if not _unshare(_CLONE_NEWNS):
        return False
    # Without private propagation, the mounts below could propagate to the host: stop if this fails.
    if not _mount("none", "/", None, _MS_REC | _MS_PRIVATE, None):
        return False
    needed = [p for p in sys.path + [sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)] if p]
    # Import directories under /tmp or /dev/shm (a virtual environment made there, say) would vanish
    # under the private tmpfs: hold them open, and bind them back (read-only) once it is mounted.
    held = _hold_paths_under(needed, ("/tmp", "/dev/shm"))
    try:
        for path, size in (("/tmp", "1g"), ("/dev/shm", "64m")):
            if os.path.isdir(path):
                if not _mount("tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=%s,mode=1777" % size):
                    return False
        for path, fd in held:
            os.makedirs(path, 0o755, exist_ok=True)
            if _mount("/proc/self/fd/%d" % fd, path, None, _MS_BIND | _MS_REC, None):
                _mount(None, path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, None)
    finally:
        for _, fd in held:
            os.close(fd)
    expose_paths(needed)
    skip = ("/proc", "/sys", "/dev", "/tmp")
    for point in _mount_points():
        if any(point == s or point.startswith(s + "/") for s in skip):
            continue
        _mount(None, point, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID, None)
    return True


def _hold_paths_under(paths, tops):
    """Open (``O_PATH``) the outermost existing directories of ``paths`` that lie under one of ``tops``."""
    real = {os.path.realpath(p) for p in paths}
    under = sorted(p for p in real if any(p.startswith(t + "/") for t in tops))
    outer = []
    for path in under:
        if os.path.isdir(path) and not any(path.startswith(o + "/") for o in outer):
            outer.append(path)
    held = []
    for path in outer:
        try:
            held.append((path, os.open(path, getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY)))
        except OSError:
            pass
    return held


def _blocked_dirs(paths):
    """Map each directory that others cannot traverse to the entries of ``paths`` needed inside it."""
    blocked = {}
    for path in paths:
        path = os.path.abspath(path)
        cur = "/"
        for comp in path.strip("/").split("/"):
            if not comp:
                break
            try:
                mode = os.stat(cur).st_mode
            except OSError:
                break
            if not mode & 0o001:
                blocked.setdefault(cur, set()).add(comp)
                break
            cur = os.path.join(cur, comp)
    return blocked


def expose_paths(paths):
    """Make ``paths`` reachable for the sandbox uid inside the private mount namespace.

    A directory such as ``/root`` (mode 700) that holds the interpreter is covered with an empty tmpfs
    (mode 755) into which only the needed entries are bind-mounted back: the sandbox can import the
    standard library but sees nothing else of that directory. Only ever called in a private namespace.
    """
    for _ in range(4):
        blocked = _blocked_dirs(paths)
        blocked.pop("/", None)
        if not blocked:
            return True
        for directory, names in sorted(blocked.items()):
            stash = make_temp_dir("/tmp", "codegym-stash-")
            kept = []
            for name in sorted(names):
                src = os.path.join(directory, name)
                if not os.path.exists(src):
                    continue
                dst = os.path.join(stash, name)
                if os.path.isdir(src):
                    os.mkdir(dst)
                else:
                    open(dst, "w").close()
                if _mount(src, dst, None, _MS_BIND | _MS_REC, None):
                    kept.append(name)
            if not _mount("tmpfs", directory, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=755"):
                return False
            for name in kept:
                src = os.path.join(stash, name)
                dst = os.path.join(directory, name)
                if os.path.isdir(src):
                    os.mkdir(dst)
                else:
                    open(dst, "w").close()
                _mount(src, dst, None, _MS_BIND | _MS_REC, None)
                _umount_detached(src)  # the stash is no longer needed
    return not _blocked_dirs(paths)


def _own_cgroup(controller):
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                if controller in names.split(","):
                    return path
    except OSError:
        pass
    return None


def make_cgroup(controller, name):
    """Create a cgroup v1 directory for this zygote's jobs under its own cgroup; None if impossible."""
    base = "/sys/fs/cgroup/" + controller
    own = _own_cgroup(controller)
    if own is None or not os.path.isdir(base):
        return None
    parent = base + own.rstrip("/")
    path = parent + "/" + name
    _sweep(parent, "codegym-", _remove_stale_cgroup)
    try:
        if os.path.isdir(path):
            kill_cgroup(path)
            os.rmdir(path)
        os.mkdir(path)
        # Probe that the controller works (e.g. read-only in a container).
        with open(path + "/cgroup.procs") as f:
            f.read()
        return path
    except OSError:
        return None


def _pid_dead(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _sweep(directory, prefix, remove):
    """Remove what zygotes that died without cleaning up left in ``directory`` (``<prefix><pid>...``)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        digits = name[_len(prefix) :].split("-", 1)[0]
        if digits.isdigit() and int(digits) != os.getpid() and _pid_dead(int(digits)):
            try:
                remove(os.path.join(directory, name))
            except OSError:
                pass


_O_PARENT = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_O_DIR = _O_PARENT | getattr(os, "O_NOFOLLOW", 0)  # never through a symbolic link a program left


def _unlink_or_rmdir(dir_fd, name):
    """Remove ``name`` in ``dir_fd`` if it is not a directory or an empty one; True if it is gone."""
    try:
        os.unlink(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        pass
    try:
        os.rmdir(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def remove_entry(dir_fd, name):
    """Remove ``name`` in the directory ``dir_fd`` and everything under it; True if it is gone.

    Iterative and descriptor-based: one directory open at a time, symbolic links never followed, and
    neither a recursion limit nor ``PATH_MAX`` stops it (a program may leave a tree thousands of levels
    deep, which ``shutil.rmtree`` cannot remove). Only called once every process of the run is dead, so
    nothing changes the tree while it is removed.
    """
    if _unlink_or_rmdir(dir_fd, name):
        return True
    fd = -1
    try:
        fd = os.open(name, _O_DIR, dir_fd=dir_fd)
        stack = [(name, os.listdir(fd))]  # stack[-1]: the directory open as fd, and its names left to do
        while True:
            todo = stack[-1][1]
            while todo:
                entry = todo.pop()
                if not _unlink_or_rmdir(fd, entry):  # a directory that is not empty: descend
                    child = os.open(entry, _O_DIR, dir_fd=fd)
                    os.close(fd)
                    fd = child
                    stack.append((entry, os.listdir(fd)))
                    break
            else:  # this directory is empty now: go up and remove it
                done = stack.pop()[0]
                if not stack:
                    os.close(fd)
                    fd = -1
                    os.rmdir(done, dir_fd=dir_fd)
                    return True
                parent = os.open("..", _O_PARENT, dir_fd=fd)
                os.close(fd)
                fd = parent
                os.rmdir(done, dir_fd=fd)
    except OSError:
        return False
    finally:
        if fd >= 0:
            os.close(fd)


def remove_path(path):
    """Remove ``path`` and everything under it with :func:`remove_entry`; True if it is gone."""
    try:
        dir_fd = os.open(os.path.dirname(path) or ".", _O_PARENT)
    except OSError:
        return not os.path.lexists(path)
    try:
        return remove_entry(dir_fd, os.path.basename(path))
    finally:
        os.close(dir_fd)


def temp_base():
    """The directory for temporary files, chosen as ``tempfile.gettempdir`` chooses it.

    Not imported from ``tempfile``: it and what it imports would add about a megabyte to the zygote,
    which every fork then copies.
    """
    for name in ("TMPDIR", "TEMP", "TMP"):
        path = os.environ.get(name)
        if path and os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK):
            return os.path.abspath(path)
    for path in ("/tmp", "/var/tmp", "/usr/tmp"):
        if os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK):
            return path
    return os.getcwd()


def make_temp_dir(base, prefix):
    """Create a new directory ``<base>/<prefix><random>`` with mode 700 (as ``tempfile.mkdtemp``)."""
    for _ in range(100):
        path = os.path.join(base, prefix + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
    raise FileExistsError("no unused temporary directory name under %s" % base)


def _remove_stale_cgroup(path):
    if os.path.isdir(path) and os.path.exists(path + "/cgroup.procs"):
        kill_cgroup(path, rounds=20)
        os.rmdir(path)


def _write(path, text):
    # Raw system calls, not open(): no stream objects to build, which matters in a freshly forked child.
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def cgroup_pids(path):
    """The pids in a cgroup (empty list if it is gone)."""
    try:
        return [int(x) for x in _read(path + "/cgroup.procs").split()]
    except OSError:
        return []


def kill_cgroup(path, rounds=200):
    """SIGKILL every process in the cgroup until it is empty (pids.max bounds a fork bomb)."""
    for _ in range(rounds):
        pids = cgroup_pids(path)
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        reap()
        time.sleep(0.0005)
    return not cgroup_pids(path)


_REAPED = {}


def reap():
    """Reap every exited child (the zygote is a subreaper, so orphans of jobs come back to it).

    Statuses are kept in ``_REAPED`` so that a job's main child reaped here is still accounted for.
    """
    while True:
        try:
            pid, status, rusage = os.wait3(os.WNOHANG)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if pid == 0:
            return
        _REAPED[pid] = (status, rusage)


def wait_child(pid, block):
    """``wait4`` for ``pid`` that also finds it among children already reaped by :func:`reap`."""
    if pid in _REAPED:
        status, rusage = _REAPED.pop(pid)
        return pid, status, rusage
    while True:
        try:
            return os.wait4(pid, 0 if block else os.WNOHANG)
        except InterruptedError:
            continue
        except ChildProcessError:
            if pid in _REAPED:
                status, rusage = _REAPED.pop(pid)
                return pid, status, rusage
            raise


def _oom_kills(fd):
    """The memory cgroup's ``oom_kill`` count, read from an open ``memory.oom_control`` (0 without one)."""
    if fd is None:
        return 0
    try:
        data = os.pread(fd, 4096, 0)
    except OSError:
        return 0
    at = data.find(b"\noom_kill ")
    return int(data[at + 10 :].split(None, 1)[0]) if at >= 0 else 0


# --------------------------------------------------------------------------- the zygote


class Zygote:
    """The server: reads requests, forks children, supervises them and writes replies."""

    def __init__(self, uid="auto", netns=True, mountns=True, cgroup=True, workroot=None, ipcns=True):
        self.pid = os.getpid()
        self.root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.netns = False
        self.mountns = False
        self.ipcns = False
        if self.root and sys.platform.startswith("linux"):
            if netns:
                self.netns = _unshare(_CLONE_NEWNET)
            if ipcns:
                self.ipcns = _unshare(_CLONE_NEWIPC)
            if mountns:
                self.mountns = setup_mount_namespace()
        if uid == "auto":
            self.uid = _UID_BASE + self.pid if self.root else None
        elif uid == "none":
            self.uid = None
        else:
            self.uid = int(uid)
        self.memcg = self.pidscg = None
        if cgroup and self.root and sys.platform.startswith("linux"):
            name = "codegym-%d" % self.pid
            self.memcg = make_cgroup("memory", name)
            self.pidscg = make_cgroup("pids", name)
        self._memcg_limit = None
        self._pids_limit = None
        self.cpu = None  # the CPU the zygote (and so each child) is pinned to, if any (set by main)
        self.huge_arenas = False  # Python's arenas in transparent huge pages (set by main)
        self.huge_heap = 0  # bytes of malloc's heap in transparent huge pages (set by main)
        # Opened once: a child joins the cgroups by writing "0" to these (inherited) descriptors, and
        # takes stdin from /dev/null by dup2. Opening paths in every child costs more than its program.
        self._cgroup_fds = tuple(
            os.open(cg + "/cgroup.procs", os.O_WRONLY) for cg in (self.memcg, self.pidscg) if cg
        )
        self._devnull_fd = os.open(os.devnull, os.O_RDONLY)
        self._oom_fd = os.open(self.memcg + "/memory.oom_control", os.O_RDONLY) if self.memcg else None
        self._oom_count = _oom_kills(self._oom_fd)
        # pids.current counts the job's processes until they are reaped (zombies too): "0" after the
        # main child is reaped means nothing of the job is left to kill or reap.
        self._pids_current_fd = os.open(self.pidscg + "/pids.current", os.O_RDONLY) if self.pidscg else None
        self._pids_idle = b"0\n"  # pids.current with no job process left
        # SysV IPC objects and POSIX message queues outlive the process that made them: in the
        # zygote's own IPC namespace (or a container's) their limits are set to zero, so that no
        # run can leave one for the next. False where the limits could not be set.
        self.ipc_disabled = disable_ipc_objects(self.ipcns) if sys.platform.startswith("linux") else False
        if sys.platform.startswith("linux"):
            _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # also loads libc once, so children do not pay for it
            # Inherited by every child: no execve of theirs gains privileges (setuid bits, file caps).
            # The zygote itself never executes another program.
            _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        base = workroot or temp_base()
        if not self.mountns:  # with a private /tmp there is nothing of earlier zygotes to see
            _sweep(base, "codegym-zygote-", remove_path)
        self.workroot = make_temp_dir(base, "codegym-zygote-%d-" % self.pid)
        os.chmod(self.workroot, 0o711)
        self.pidfd = hasattr(os, "pidfd_open")
        self.jobdir = os.path.join(self.workroot, "job")
        self.shared_dirs = self._shared_dirs()
        self.tainted = False  # a run left something that could not be removed: exit after the reply
        self._rlimits = {}
        self._prepare_children()

    def _shared_dirs(self):
        """The world-writable directories cleaned after every run, each with the names to keep (or None).

        With the private mount namespace, ``/tmp`` and ``/dev/shm`` are this zygote's own tmpfs: after a
        run, everything in them but what the zygote made at start-up (its work root, ``expose_paths``'s
        stash) is removed. Without it they are shared (the host's, or a container's) and only entries
        owned by the run's unique uid are removed, also in ``/var/tmp``. Without a uid of their own, runs
        are not told apart from the zygote's user, whose files are never touched: nothing is cleaned.
        """
        if self.mountns:
            paths, keep = ("/tmp", "/dev/shm"), True
        elif self.uid is not None:
            paths, keep = ("/tmp", "/dev/shm", "/var/tmp"), False
        else:
            return []
        dirs = []
        for path in paths:
            try:
                dirs.append(
                    (path, frozenset(os.listdir(path)) if keep else None, self._empty_size(path, keep))
                )
            except OSError:
                pass
        return dirs

    def _empty_size(self, path, keep):
        """``st_size`` of ``path`` when it holds only the entries to keep, or None to always list it.

        Only for this zygote's own tmpfs mounts (mount namespace), where a directory's size is 40
        plus 20 per entry: a run that created, linked or renamed-in anything changes it, and the
        sticky, root-owned directory lets a run neither remove nor rename the zygote's entries. So one
        ``stat`` replaces a ``listdir`` per run; the size is checked against the count of entries.
        """
        if not keep or not self.mountns:
            return None
        try:
            names = os.listdir(path)
            size = os.stat(path).st_size
        except OSError:
            return None
        return size if size == 40 + 20 * _len(names) else None

    def clean_shared_dirs(self):
        """After a run, once all its processes are dead: remove what it left in ``/tmp`` and ``/dev/shm``.

        See :meth:`_shared_dirs` for what is removed in which mode. Costs one ``stat`` (own tmpfs) or
        one ``listdir`` per directory when the run left nothing. What cannot be removed taints the
        zygote (it exits after the reply and the pool starts a fresh one): the next run must not see it.
        """
        for path, keep, empty_size in self.shared_dirs:
            if empty_size is not None:
                try:
                    if os.stat(path).st_size == empty_size:
                        continue  # nothing added (see _empty_size)
                except OSError:
                    pass
            try:
                names = os.listdir(path)
            except OSError:
                continue
            if keep is not None:
                names = [n for n in names if n not in keep]
            else:
                owned = []
                for name in names:
                    try:
                        if os.lstat(os.path.join(path, name)).st_uid == self.uid:
                            owned.append(name)
                    except OSError:
                        pass
                names = owned
            if not names:
                continue
            try:
                dir_fd = os.open(path, _O_PARENT)
            except OSError:
                self.tainted = True
                continue
            try:
                for name in names:
                    if not remove_entry(dir_fd, name):
                        self.tainted = True
            finally:
                os.close(dir_fd)

    def _prepare_children(self):
        """Set up once, in the zygote, what every child would otherwise redo after fork (less copying)."""
        for sig in (signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        # As in any Python process: a write to a closed pipe raises BrokenPipeError (also in the zygote,
        # which then cleans up and exits when its parent is gone).
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        # The zygote's own environment is what children see (also in /proc/<pid>/environ): scrub it here.
        os.environ.clear()
        os.environ.update(
            {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": self.jobdir,
                "TMPDIR": self.jobdir,
                "LANG": "C.UTF-8",
                "PYTHONIOENCODING": "utf-8",
                "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1",
            }
        )
        # Stream objects for fds 0/1/2 of the children (dup2'd after fork); the zygote never uses them.
        _setup_stdio()
        import builtins

        if not hasattr(builtins, "exit"):  # `python -S`: add the builtins that site.py adds (exit, help, ...)
            try:
                import site  # under -S, importing it runs nothing but its definitions

                site.setquit()
                site.setcopyright()
                site.sethelper()
            except Exception:  # pragma: no cover - a Python without them: programs still call exit()
                builtins.exit = builtins.quit = _Exit()

    def watch_pids(self, path):
        """Check ``path`` (a ``pids.current``) after each run where the zygote has no pids cgroup.

        For a zygote alone in a container: the container's count with the zygote idle is taken now;
        after a run, the same count means that nothing of the run is left, and the helper that kills
        the run's uid (a fork, and a scan of ``/proc``) is skipped.
        """
        if self._pids_current_fd is not None:
            return
        try:
            fd = os.open(path, os.O_RDONLY)
            idle = os.pread(fd, 32, 0)
        except OSError:
            return
        if not idle.strip().isdigit():
            os.close(fd)
            return
        self._pids_current_fd, self._pids_idle = fd, idle

    def watch_oom_kills(self, path):
        """Count OOM kills from ``path`` (a ``memory.oom_control``) where the zygote has no cgroup.

        For a zygote alone in a container: the container's memory cgroup is then the run's, and a run
        whose main process it kills ends as ``memory_limit`` rather than ``runtime_error``.
        """
        if self._oom_fd is not None:
            return
        try:
            self._oom_fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        self._oom_count = _oom_kills(self._oom_fd)

    def features(self):
        """What this zygote enforces (the hello frame's ``features``)."""
        return {
            "root": self.root,
            "uid": self.uid,
            "netns": self.netns,
            "ipcns": self.ipcns,
            "ipc_objects_disabled": self.ipc_disabled,
            "mountns": self.mountns,
            "cgroup_memory": self.memcg,
            "cgroup_pids": self.pidscg,
            "cpu": self.cpu,
            "pidfd": self.pidfd,
            "native": _native is not None,
            "huge_arenas": self.huge_arenas,
            # Bytes of the interpreter's code and read-only data in huge pages (moved by the preload).
            "huge_text": _native.huge_text() if _native is not None else 0,
            "huge_heap": self.huge_heap,
            "workroot": self.workroot,
            # Import directories the sandbox uid cannot enter (then only pre-imported modules work).
            "unreadable_paths": sorted(_blocked_dirs([p for p in sys.path if p]))
            if self.uid is not None
            else [],
        }

    # ------------------------------------------------------------------ main loop

    def serve(self, fd_in=0, fd_out=1):
        """Answer requests until EOF or an exit request."""
        send_frame(
            fd_out,
            {
                "type": "hello",
                "protocol": PROTOCOL,
                "pid": self.pid,
                "python": "%d.%d.%d" % sys.version_info[:3],
                "features": self.features(),
            },
        )
        try:
            self._serve_loop(fd_in, fd_out)
        except OSError:  # the parent is gone (EOF/EPIPE on our pipes): clean up and exit
            pass
        finally:
            self.cleanup()

    def _serve_loop(self, fd_in, fd_out):
        """Answer requests one at a time until EOF or an exit request."""
        while True:
            try:
                req = read_frame(fd_in)
            except (ValueError, UnicodeDecodeError) as exc:
                send_frame(fd_out, {"type": "error", "id": None, "message": "bad frame: %s" % exc})
                return
            if req is None or not isinstance(req, dict) or req.get("type") == "exit":
                return
            kind = req.get("type")
            if kind == "ping":
                send_frame(fd_out, {"type": "pong"})
            elif kind == "run":
                try:
                    reply = self.run_job(req)
                except Exception as exc:  # the zygote's own fault: report it, stay up
                    reply = {
                        "type": "error",
                        "id": req.get("id"),
                        "message": "%s: %s" % (_type(exc).__name__, exc),
                    }
                send_frame(fd_out, reply)
                if self.tainted:
                    return
            else:
                send_frame(
                    fd_out,
                    {
                        "type": "error",
                        "id": req.get("id"),
                        "message": "unknown request type %r" % (kind,),
                    },
                )

    def cleanup(self):
        """Kill leftovers, remove cgroups and the work root."""
        for fd in [*self._cgroup_fds, self._devnull_fd, self._oom_fd, self._pids_current_fd]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._cgroup_fds = ()
        for cg in (self.pidscg, self.memcg):
            if cg:
                kill_cgroup(cg)
        reap()
        for cg in (self.pidscg, self.memcg):
            if cg:
                try:
                    os.rmdir(cg)
                except OSError:
                    pass
        remove_path(self.workroot)

    # ------------------------------------------------------------------ one job

    def run_job(self, req):
        """Run one request: one child (call mode) or one child per test (stdio mode)."""
        program = req["program"]
        mode = req.get("mode", "call")
        tests = req.get("tests", [])
        limits = req.get("limits", {})
        if not isinstance(program, str) or mode not in ("call", "stdio") or not isinstance(tests, list):
            raise ValueError("malformed run request")
        lim = {
            "timeout_s": float(limits.get("timeout_s", 5.0)),
            "memory_mb": int(limits.get("memory_mb", 512)),
            "max_output_bytes": int(limits.get("max_output_bytes", 1 << 20)),
            "max_file_mb": int(limits.get("max_file_mb", 16)),
            "max_open_files": int(limits.get("max_open_files", 64)),
            "max_procs": int(limits.get("max_procs", 32)),
        }
        self._set_cgroup_limits(lim)
        code = None
        if _len(program) <= _COMPILE_IN_ZYGOTE_MAX:
            # Small programs compile here, once: a syntax error needs no child at all, and the child
            # inherits the code object instead of compiling (fewer pages to copy). Compiling runs no
            # program code; bigger programs, whose compilation could take long, compile in the child.
            t0 = time.monotonic()
            try:
                code = compile(program, "<program>", "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as exc:
                run = _synthetic_run([_json_dumps(syntax_record(exc))], time.monotonic() - t0)
                return {"type": "result", "id": req.get("id"), "runs": [run]}
            except (MemoryError, RecursionError, OverflowError):
                code = None
        runs = []
        if mode == "call":
            spec = {
                "mode": "call",
                "program": program,
                "entry_point": req.get("entry_point", ""),
                "tests": tests,
                "code": code,
                # Decoded here, once: the child inherits the values instead of building (and copying
                # the pages of) its own. A malformed argument is the executor's fault, reported as such.
                "arguments": _call_arguments(tests),
            }
            runs.append(self.run_child(spec, None, lim))
        else:
            for test in tests:
                spec = {"mode": "stdio", "program": program, "code": code}
                runs.append(self.run_child(spec, test.get("stdin", ""), lim))
        return {"type": "result", "id": req.get("id"), "runs": runs}

    def _set_cgroup_limits(self, lim):
        if self.memcg:
            want = lim["memory_mb"] * 1024 * 1024
            if want != self._memcg_limit:
                # Swap counts too (memory.memsw.*, where the kernel accounts swap): on a machine with
                # swap, a limit on RAM alone lets a memory bomb thrash in swap until it times out
                # instead of being killed. memsw must stay >= the RAM limit, so the order of the two
                # writes follows the direction of the change
                # (a new cgroup starts unlimited: the first write lowers).
                files = ["memory.limit_in_bytes"]
                if os.path.exists(self.memcg + "/memory.memsw.limit_in_bytes"):
                    if self._memcg_limit is not None and want > self._memcg_limit:
                        files.insert(0, "memory.memsw.limit_in_bytes")
                    else:
                        files.append("memory.memsw.limit_in_bytes")
                try:
                    for name in files:
                        _write(self.memcg + "/" + name, str(want))
                    self._memcg_limit = want
                except OSError:
                    pass
        if self.pidscg:
            want = lim["max_procs"]
            if want != self._pids_limit:
                try:
                    _write(self.pidscg + "/pids.max", str(want))
                    self._pids_limit = want
                except OSError:
                    pass

    def run_child(self, spec, stdin_text, lim):
        """Fork one child for ``spec``, supervise it to the end, clean up, and describe what happened."""
        workdir = self.jobdir
        try:
            os.mkdir(workdir, 0o700)
        except FileExistsError:  # left by a run whose clean-up failed
            if not remove_path(workdir):
                raise OSError("cannot remove the previous work directory %s" % workdir) from None
            os.mkdir(workdir, 0o700)
        stdin_fd = self._devnull_fd
        if stdin_text is not None:
            stdin_fd = self._stdin_file(workdir, stdin_text)
        if self.uid is not None:
            os.chown(workdir, self.uid, self.uid)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        # Everything the supervision needs is built before the fork: what the zygote writes while the
        # child lives, it must copy (copy-on-write), so the zygote only closes, polls and reads then.
        watch = self._watch(out_r, err_r, res_r, lim)
        closes = (out_w, err_w, res_w) if stdin_fd == self._devnull_fd else (out_w, err_w, res_w, stdin_fd)
        if _native is not None:
            # Fork, child set-up and supervision until the child's exit (or a limit) in C: the zygote
            # runs no Python, so writes nothing, while the child lives (see _zygote_native.c).
            spawn_args = self._spawn_args(workdir, stdin_fd, out_w, err_w, res_w, lim, closes, watch)
            t0 = time.monotonic()
            try:
                watched = _native.spawn(*spawn_args)
            except OSError:  # fork failed: no child, and nothing closed
                self._close_all(closes, watch)
                raise
            if watched is None:  # ------------------------------------------------ child
                try:
                    _child_main(spec)
                finally:
                    os._exit(70)
            pid = watched[0]
        else:
            watched = None
            t0 = time.monotonic()
            try:
                pid = os.fork()
            except OSError:
                self._close_all(closes, watch)
                raise
            if pid == 0:  # ------------------------------------------------ child
                try:
                    os.close(out_r)
                    os.close(err_r)
                    os.close(res_r)
                    self._enter_child(workdir, stdin_fd, out_w, err_w, res_w, lim)
                    _child_main(spec)
                finally:
                    os._exit(70)
            for fd in closes:
                os.close(fd)
        run = self._supervise(pid, watch, t0, lim, watched)
        if self._oom_fd is not None:
            oom_count = _oom_kills(self._oom_fd)
            if oom_count != self._oom_count:  # the memory cgroup killed a process of this run
                self._oom_count = oom_count
                if run["limit"] is None and run["signal"] == signal.SIGKILL:
                    run["limit"] = "memory"
        try:
            os.rmdir(workdir)  # the common case: the program left nothing behind
        except OSError:
            if not remove_path(workdir):
                self.tainted = True
        self.clean_shared_dirs()
        return run

    @staticmethod
    def _stdin_file(workdir, text):
        """A read-only descriptor of a file holding ``text``, already unlinked from ``workdir``.

        The child reads its standard input from it; the program finds no such file in its directory,
        and the directory is empty again once the program has left nothing behind.
        """
        path = os.path.join(workdir, ".stdin")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            write_all(fd, text.encode("utf-8", "surrogatepass"))
            return os.open(path, os.O_RDONLY)
        finally:
            os.close(fd)
            os.unlink(path)

    @staticmethod
    def _close_all(closes, watch):
        """Close a run's descriptors when no child could be made (a failed fork must not leak them)."""
        for fd in (*closes, *watch[:3]):
            try:
                os.close(fd)
            except OSError:
                pass

    def _spawn_args(self, workdir, stdin_fd, out_w, err_w, res_w, lim, closes, watch):
        """The arguments of ``_native.spawn``: what :meth:`_enter_child` and :meth:`_supervise` do."""
        out_r, err_r, res_r, _, _, caps, _, _ = watch
        return (
            self._cgroup_fds,
            stdin_fd,
            out_w,
            err_w,
            res_w,
            _RESULT_FD,
            os.fsencode(workdir),
            self._limits_for(lim),
            -1 if self.uid is None else self.uid,
            int(signal.SIGKILL),
            closes,
            (out_r, err_r, res_r),
            (caps[out_r], caps[err_r], caps[res_r]),
            float(lim["timeout_s"]),
            _RECORDS_QUIET_S,
        )

    def _enter_child(self, workdir, stdin_fd, out_w, err_w, res_w, lim):
        """In the child, before any user code: session, cgroups, fds, limits, identity, environment."""
        os.setsid()
        for fd in self._cgroup_fds:
            os.write(fd, b"0")  # "0": the writing process joins the cgroup
        os.dup2(stdin_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(res_w, _RESULT_FD)
        os.closerange(_RESULT_FD + 1, 1 << 16)
        os.chdir(workdir)
        for which, soft, hard in self._limits_for(lim):
            try:
                _setrlimit(which, (soft, hard))
            except (ValueError, OSError):
                pass
        if self.uid is not None:
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
        if sys.platform.startswith("linux"):
            # PR_SET_NO_NEW_PRIVS is inherited from the zygote (set once in Zygote.__init__).
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it

    def _limits_for(self, lim):
        """A child's rlimits as ``(resource, soft, hard)`` (computed in the zygote, cached per limits)."""
        key = (
            lim["timeout_s"],
            lim["max_file_mb"],
            lim["max_open_files"],
            lim["max_procs"],
            lim["memory_mb"],
        )
        cached = self._rlimits.get(key)
        if cached is not None:
            return cached
        import resource

        mb = 1024 * 1024
        cpu = max(1, int(lim["timeout_s"] + 0.999))
        limits = [
            (resource.RLIMIT_CPU, cpu, cpu + 1),
            (resource.RLIMIT_FSIZE, lim["max_file_mb"] * mb, lim["max_file_mb"] * mb),
            (resource.RLIMIT_NOFILE, lim["max_open_files"], lim["max_open_files"]),
            (resource.RLIMIT_CORE, 0, 0),
        ]
        if self.uid is not None or not self.root:
            # Counted per uid: effective for a unique sandbox uid, ignored for root.
            limits.append((resource.RLIMIT_NPROC, lim["max_procs"], lim["max_procs"]))
        if self.memcg is None and hasattr(resource, "RLIMIT_AS"):
            # No memory cgroup: cap the address space at what the (small) zygote maps plus the limit.
            try:
                with open("/proc/self/statm") as f:
                    base = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, ValueError):
                base = 64 * mb
            cap = base + lim["memory_mb"] * mb
            limits.append((resource.RLIMIT_AS, cap, cap))
        self._rlimits[key] = limits = tuple(limits)
        return limits

    @staticmethod
    def _watch(out_r, err_r, res_r, lim):
        """The poller and buffers that :meth:`_supervise` uses for the pipes of one child."""
        cap = lim["max_output_bytes"]
        bufs = {out_r: [], err_r: [], res_r: []}
        sizes = {out_r: 0, err_r: 0, res_r: 0}
        caps = {out_r: cap, err_r: cap, res_r: max(cap, _MAX_RECORDS_BYTES)}
        poller = select.poll()
        for fd in (out_r, err_r):  # the result channel joins later: see _supervise
            poller.register(fd, select.POLLIN)
        return out_r, err_r, res_r, bufs, sizes, caps, poller, set(bufs)

    def _supervise(self, pid, watch, t0, lim, watched=None):
        """Drain the child's pipes until it exits or hits a limit; kill the whole job; reap it.

        ``watched`` is what ``_native.spawn`` returned when it has already watched the child to its exit
        or a limit: then only the end (reap, kill what is left, drain) is done here.
        """
        out_r, err_r, res_r, bufs, sizes, caps, poller, open_fds = watch
        deadline = t0 + lim["timeout_s"]
        pidfd = None
        if self.pidfd and watched is None:
            try:
                pidfd = os.pidfd_open(pid)
                poller.register(pidfd, select.POLLIN)
            except OSError:
                pidfd = None
        limit = None
        limit_stream = None
        status = None
        rusage = None
        # The result channel is read once the child has run for a moment, not at every record: most
        # runs end sooner, and then the zygote wakes once (at the exit) instead of once per test. A
        # pipe holds 64 KiB of records; a run that writes more waits at most _RECORDS_QUIET_S for it.
        records_watched = False
        watch_records_at = t0 + _RECORDS_QUIET_S
        if watched is not None:
            limit, limit_stream, status, rusage = self._take_watched(pid, watched, watch)
            records_watched = True
        while watched is None:
            now = time.monotonic()
            if now >= deadline:
                limit = "timeout"
                break
            if not records_watched and (pidfd is None or now >= watch_records_at):
                poller.register(res_r, select.POLLIN)
                records_watched = True
            until = deadline if records_watched else watch_records_at
            wait_ms = (until - now) * 1000 if pidfd is not None else min(10.0, (until - now) * 1000)
            try:
                events = poller.poll(max(1, int(wait_ms + 0.999)))
            except InterruptedError:
                continue
            exited = False
            for fd, _ in events:
                if fd == pidfd:
                    exited = True
                    continue
                data = self._read_some(fd)
                if data is None:
                    continue
                if not data:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    continue
                if self._take(fd, data, bufs, sizes, caps):
                    limit = "output"
                    limit_stream = {out_r: "stdout", err_r: "stderr", res_r: "results"}[fd]
            if limit:
                break
            if pidfd is None or exited:
                wpid, wstatus, ru = wait_child(pid, False)
                if wpid:
                    status, rusage = wstatus, ru
                    break
        # The main child is done (or over a limit): nothing of the job may outlive it.
        job_left = status is None or not self._job_empty()
        if job_left:
            self._kill_job(pid)
        if status is None:
            _, status, rusage = wait_child(pid, True)
        if pidfd is not None:
            poller.unregister(pidfd)  # readable for good now: it would turn the drain into a busy loop
        if not records_watched:
            poller.register(res_r, select.POLLIN)
        self._drain(open_fds, bufs, sizes, caps, poller)
        for fd in (out_r, err_r, res_r):
            os.close(fd)
        if pidfd is not None:
            os.close(pidfd)
        if job_left:
            reap()
            _REAPED.clear()  # only orphans of this job are left in it: their statuses are of no interest
        wall = time.monotonic() - t0
        exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        if limit is None and sig == signal.SIGXCPU:
            limit = "timeout"
        cpu_s = (rusage.ru_utime + rusage.ru_stime) if rusage else 0.0
        if limit is None and sig == signal.SIGKILL and cpu_s >= max(1, int(lim["timeout_s"] + 0.999)):
            limit = "timeout"  # the hard CPU limit
        return {
            "records": _split_records(b"".join(bufs[res_r])),
            "stdout": b"".join(bufs[out_r]).decode("utf-8", "replace"),
            "stderr": b"".join(bufs[err_r]).decode("utf-8", "replace"),
            "stdout_bytes": sizes[out_r],
            "stderr_bytes": sizes[err_r],
            "exit_code": exit_code,
            "signal": sig,
            "limit": limit,
            "limit_stream": limit_stream,
            "wall_s": wall,
            "cpu_s": cpu_s,
            "maxrss_kb": rusage.ru_maxrss if rusage else 0,
        }

    @staticmethod
    def _take_watched(pid, watched, watch):
        """Take in what ``_native.spawn`` read and saw: ``(limit, limit_stream, status, rusage)``."""
        out_r, err_r, res_r, bufs, sizes, _, poller, open_fds = watch
        _, reason, stream, out, err, res, out_size, err_size, res_size, hup = watched
        for fd, data, size, bit in (
            (out_r, out, out_size, 1),
            (err_r, err, err_size, 2),
            (res_r, res, res_size, 4),
        ):
            if data:
                bufs[fd].append(data)
            sizes[fd] = size
            if hup & bit:  # at its end: nothing is left to drain
                open_fds.discard(fd)
                if fd != res_r:
                    poller.unregister(fd)
            elif fd == res_r:
                poller.register(res_r, select.POLLIN)
        if reason == 1:
            return "timeout", None, None, None
        if reason == 2:
            return "output", ("stdout", "stderr", "results")[stream], None, None
        wpid, status, rusage = wait_child(pid, False)  # spawn saw the exit: the status is there
        if not wpid:
            _, status, rusage = wait_child(pid, True)
        return None, None, status, rusage

    @staticmethod
    def _take(fd, data, bufs, sizes, caps):
        """Count ``data`` read from ``fd`` and keep what fits under its cap; True once over the cap."""
        room = caps[fd] - sizes[fd]
        sizes[fd] += _len(data)
        if room > 0:
            bufs[fd].append(data if _len(data) <= room else data[:room])
        return sizes[fd] > caps[fd]

    @staticmethod
    def _read_some(fd):
        try:
            return os.read(fd, 1 << 16)
        except (InterruptedError, BlockingIOError):
            return None  # nothing yet: poll again
        except OSError:
            return b""

    def _drain(self, open_fds, bufs, sizes, caps, poller):
        """Read what is left in the pipes after the job is dead (writers gone: EOF comes quickly)."""
        end = time.monotonic() + 0.5
        while open_fds and time.monotonic() < end:
            events = poller.poll(50)
            if not events:
                continue
            for fd, revents in events:
                if fd not in open_fds:
                    continue
                # POLLHUP: every writer is gone, so reads reach the end without blocking.
                while True:
                    data = self._read_some(fd)
                    if data is None:
                        break
                    if not data:
                        poller.unregister(fd)
                        open_fds.discard(fd)
                        break
                    self._take(fd, data, bufs, sizes, caps)
                    if not revents & select.POLLHUP:
                        break

    def _job_empty(self):
        """True if the pids cgroup holds no process of the job, not even a zombie (False if unknown)."""
        if self._pids_current_fd is None:
            return False
        try:
            return os.pread(self._pids_current_fd, 32, 0) == self._pids_idle
        except OSError:
            return False

    def _kill_job(self, pid):
        """SIGKILL the child's process group, its cgroup, and every process of the sandbox uid.

        With a cgroup, every process of the job is in it (the group and setsid daemons alike), so the
        group needs no signal of its own. ``cgroup.procs`` is opened afresh for each look: cgroup v1
        keeps a snapshot of the list per open file for a second, so a re-read could miss new processes.
        """
        if self.pidscg is None and self.memcg is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.pidscg:
            kill_cgroup(self.pidscg)
        elif self.memcg:
            kill_cgroup(self.memcg)
        elif self.uid is not None:
            self._kill_uid()

    def _kill_uid(self):
        """Without cgroups: a helper with the sandbox uid sends kill(-1), reaching setsid daemons too.

        ``kill(-1)`` can miss a process forked while it runs, and its return value does not tell whether
        anything is left (it counts processes it may not signal), so the zygote checks ``/proc`` for live
        processes of the uid and repeats, reaping what dies (the job's orphans come back to it).
        """
        for _ in range(50):
            killer = os.fork()
            if killer == 0:
                try:
                    os.setgroups([])
                    os.setgid(self.uid)
                    os.setuid(self.uid)
                    for _ in range(3):
                        os.kill(-1, signal.SIGKILL)
                        time.sleep(0.0002)
                finally:
                    os._exit(0)
            while True:
                try:
                    pid, _, _ = os.wait4(killer, os.WNOHANG)
                except InterruptedError:
                    continue
                except ChildProcessError:
                    break
                reap()
                if pid or _REAPED.pop(killer, None) is not None:
                    break
                time.sleep(0.0002)
            reap()
            if not _uid_has_live_process(self.uid):
                return


def _uid_has_live_process(uid):
    """True if a process (not a zombie) of ``uid`` exists, by its real, effective or saved uid.

    Reads ``/proc/<pid>/status`` (the owner of ``/proc/<pid>`` is not enough: a process that makes
    itself non-dumpable shows as root there).
    """
    try:
        names = os.listdir("/proc")
    except OSError:
        return False
    needle = str(uid).encode()
    for name in names:
        if not name.isdigit():
            continue
        try:
            fd = os.open("/proc/" + name + "/status", os.O_RDONLY)
            try:
                status = os.read(fd, 2048)
            finally:
                os.close(fd)
        except OSError:
            continue
        at = status.find(b"\nUid:")
        if at < 0 or needle not in status[at : status.find(b"\n", at + 1)].split()[1:4]:
            continue
        state = status.find(b"\nState:")
        if state >= 0 and status[state + 7 : state + 10].strip()[:1] not in (b"Z", b"X"):
            return True
    return False


def _synthetic_run(records, wall):
    """A RUN for an outcome decided without a child (a syntax error found in the zygote)."""
    return {
        "records": records,
        "stdout": "",
        "stderr": "",
        "stdout_bytes": 0,
        "stderr_bytes": 0,
        "exit_code": 0,
        "signal": None,
        "limit": None,
        "wall_s": wall,
        "cpu_s": wall,
        "maxrss_kb": 0,
    }


class _Exit:
    """``exit()``/``quit()`` as the site module defines them (absent under ``python -S``)."""

    def __repr__(self):
        return "Use exit() or Ctrl-D (i.e. EOF) to exit"

    def __call__(self, code=None):
        raise SystemExit(code)


def _split_records(data):
    """Split the result channel into records (4-byte length + UTF-8 JSON each); a torn tail is dropped."""
    out = []
    pos = 0
    n = _len(data)
    while pos + 4 <= n:
        size = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        if pos + size > n:
            break
        out.append(data[pos : pos + size].decode("utf-8", "replace"))
        pos += size
    return out


# --------------------------------------------------------------------------- the child harness


def _write_record(data):
    try:
        while data:
            data = data[_os_write(_RESULT_FD, data) :]
    except _BaseException:
        pass


def _emit(record):
    """Write a record (a dict, or the JSON text of one) on the result channel."""
    try:
        text = record if _type(record) is _str else _dumps_record(record)
        data = _record_frame(text.encode("utf-8"))
    except _BaseException:
        return
    _write_record(data)


def _call_arguments(tests):
    """Per test, the tuple of arguments of a call test (decoded from the wire), None for an assert test."""
    return _tuple(_tuple(_from_wire(t["args"])) if t.get("kind") == "call" else None for t in tests)


def _exc_line(exc):
    name = _type(exc).__name__
    try:
        text = _str(exc)
    except _BaseException:
        text = "<unprintable>"
    if _len(text) > 500:
        text = text[:500] + "..."
    return "%s: %s" % (name, text) if text else name


def _program_lineno(exc):
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<program>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_STREAMS = []


def _setup_stdio():
    """Standard streams for the children's fds 0/1/2, built like CPython's own (buffered, UTF-8)."""
    import io

    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = io.TextIOWrapper(
        open(2, "wb", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
    )
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    _STREAMS[:] = [sys.stdout, sys.stderr]


def _flush():
    """Flush what the program printed: the current streams and the original ones (if it swapped them)."""
    out, err = sys.stdout, sys.stderr
    streams = (out, err) if out is _STREAMS[0] and err is _STREAMS[1] else (out, err, *_STREAMS)
    for stream in streams:
        try:
            stream.flush()
        except _BaseException:
            pass


def syntax_record(exc):
    """The ``syntax_error`` record of a SyntaxError (or ValueError: null bytes) raised by ``compile``."""
    return {
        "ev": "syntax_error",
        "msg": "%s: %s" % (_type(exc).__name__, _getattr(exc, "msg", None) or _str(exc)),
        "lineno": _getattr(exc, "lineno", None),
        "offset": _getattr(exc, "offset", None),
        "text": _getattr(exc, "text", None),
    }


def _report_error(i, exc, is_assert, dt):
    _emit(
        {
            "ev": "test",
            "i": i,
            "error": _exc_line(exc),
            "assert": is_assert and _isinstance(exc, _AssertionError),
            "memory": _isinstance(exc, _MemoryError),
            "t": dt / 1e9,
        }
    )


def _report_value(i, dt, value):
    try:
        wire = encode(value)
    except Unplain as exc:
        _emit({"ev": "test", "i": i, "unplain": _str(exc), "t": dt / 1e9})
        return
    except _RecursionError:
        _emit({"ev": "test", "i": i, "unplain": "nested too deep", "t": dt / 1e9})
        return
    try:
        text = "[%d,%d,%s]" % (i, dt, _dumps_record(wire))
    except _BaseException:  # a string too large to encode (MemoryError): the run fails this test
        return
    _emit(text)


def _run_test(i, test, ns, entry, arguments):
    """Run call or assert test ``i`` and write its record."""
    t0 = _perf_ns()
    is_assert = test.get("kind") == "assert"
    try:
        fn = ns[entry]
    except _KeyError:
        _emit(
            {
                "ev": "test",
                "i": i,
                "error": "NameError: name %r is not defined" % (entry,),
                "assert": is_assert,
                "t": 0.0,
            }
        )
        return
    try:
        if is_assert:
            ns["candidate"] = fn
            _exec(_compile(test["code"], "<test>", "exec", dont_inherit=True), ns)
            _emit("[%d,%d]" % (i, _perf_ns() - t0))
            return
        value = fn(*arguments[i])
    except _BaseException as exc:
        _report_error(i, exc, is_assert, _perf_ns() - t0)
        return
    _report_value(i, _perf_ns() - t0, value)


def _child_main(spec):
    """Run the program and its tests in this (already contained) child, reporting on the result channel."""
    builtins = _builtins_module  # not an import statement: that would look the module's spec up anew
    program = spec["program"]
    try:
        code = spec.get("code") or _compile(program, "<program>", "exec", dont_inherit=True)
    except (_SyntaxError, _ValueError) as exc:
        _emit(syntax_record(exc))
        _exit(0)
    except _BaseException as exc:  # e.g. MemoryError or RecursionError in the compiler
        _emit(
            {
                "ev": "program_error",
                "error": _exc_line(exc),
                "lineno": None,
                "memory": _isinstance(exc, _MemoryError),
            }
        )
        _exit(0)
    stdio = spec["mode"] == "stdio"
    # Arguments are decoded before any user code runs (json's Python layer uses patchable builtins).
    arguments = spec.get("arguments")
    if arguments is None:
        arguments = _call_arguments(spec.get("tests", []))
    ns = {"__name__": "__main__" if stdio else "__candidate__", "__builtins__": builtins}
    try:
        _exec(code, ns)
    except _SystemExit as exc:
        if not stdio:
            _emit(
                {
                    "ev": "program_error",
                    "error": "SystemExit: %s" % (exc.code,),
                    "lineno": _program_lineno(exc),
                }
            )
            _flush()
            _exit(0)
        _flush()
        code_ = exc.code
        if code_ is None or (_type(code_) is int and code_ == 0):
            _exit(0)
        if _type(code_) is not int:
            try:
                sys.stderr.write(_str(code_) + "\n")
            except _BaseException:
                pass
            _flush()
            _exit(1)
        _exit(code_ & 0xFF or 1)
    except _BaseException as exc:
        _emit(
            {
                "ev": "program_error",
                "error": _exc_line(exc),
                "lineno": _program_lineno(exc),
                "memory": _isinstance(exc, _MemoryError),
            }
        )
        _flush()
        _exit(1 if stdio else 0)
    if stdio:
        _write_record(_DONE_FRAME)
        _flush()
        _exit(0)
    entry = spec.get("entry_point", "")
    tests = spec.get("tests", [])
    n = _len(tests)
    # Native: the call tests run in C, each record written from a static buffer, up to a test that
    # needs this code (see _zygote_native.c); without the extension every test runs in _run_test.
    call_tests = _native.call_tests if _native is not None else None
    i = 0
    while i < n:
        if call_tests is not None:
            i, kind, outcome, dt = call_tests(ns, entry, arguments, i, _RESULT_FD)
            if kind == 0:  # returned a value that encode() is to encode (or name as not plain)
                _report_value(i, dt, outcome)
                i += 1
                continue
            if kind == 1:  # raised
                _report_error(i, outcome, False, dt)
                i += 1
                continue
            if kind != 2:  # all done
                break
        _run_test(i, tests[i], ns, entry, arguments)
        i += 1
    _write_record(_DONE_FRAME)
    _flush()
    _exit(0)


# --------------------------------------------------------------------------- entry point

# Modules that programs commonly import: children get them for free. Every module here also makes every
# fork dearer (more memory and mappings to copy and tear down), so a module is here only if programs
# import it often enough. Measured per run (child CPU of an empty program): heapq and bisect together
# cost 0.02 ms and save 0.7-0.8 ms each when imported; random costs 0.05 ms (its after-fork reseed and
# two extension modules) and saves 1.4 ms, so it pays only if more than one program in 30 imports it,
# which generated solutions rarely do: it is left out (``--preload-modules`` chooses another list).
PRELOAD = (
    "typing", "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
    "operator", "copy",
)  # fmt: skip


_USAGE = (
    "usage: zygote.py [--uid auto|none|N] [--no-netns] [--no-ipcns] [--no-mountns] [--no-cgroup] "
    "[--workroot DIR] [--oom-control FILE] [--pids-current FILE] "
    "[--preload] [--preload-modules a,b,c] [--site-dirs DIR:DIR] [--cpu N] [--no-native] [--no-huge-pages]"
)
_FLAGS = (
    "--no-netns",
    "--no-ipcns",
    "--no-mountns",
    "--no-cgroup",
    "--preload",
    "--no-native",
    "--no-huge-pages",
)
_VALUED = (
    "--uid",
    "--workroot",
    "--preload-modules",
    "--site-dirs",
    "--cpu",
    "--oom-control",
    "--pids-current",
)


def parse_args(argv):
    """The options of :func:`main` as a dict (keys without ``--``, ``-`` as ``_``).

    Parsed by hand: ``argparse`` would stay imported in the zygote and make every fork copy more.
    Exits with status 2 and a message naming the bad argument, as argparse does.
    """
    opts = {
        "uid": "auto",
        "workroot": None,
        "preload_modules": None,
        "site_dirs": None,
        "cpu": None,
        "oom_control": None,
        "pids_current": None,
    }
    opts.update({flag[2:].replace("-", "_"): False for flag in _FLAGS})
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            sys.stdout.write(_USAGE + "\n")
            raise SystemExit(0)
        name, eq, value = arg.partition("=")
        if name in _FLAGS and not eq:
            opts[name[2:].replace("-", "_")] = True
        elif name in _VALUED:
            if not eq:
                if not args:
                    sys.stderr.write(
                        "%s\nzygote.py: error: argument %s: expected one argument\n" % (_USAGE, name)
                    )
                    raise SystemExit(2)
                value = args.pop(0)
            opts[name[2:].replace("-", "_")] = value
        else:
            sys.stderr.write("%s\nzygote.py: error: unrecognized arguments: %s\n" % (_USAGE, arg))
            raise SystemExit(2)
    return opts


def warm_typing():
    """Compute common ``typing`` subscriptions (``List[int]``, ``Optional[str]``, ...) in the zygote.

    ``typing`` caches each subscription, but a child's own computation would die with it: every
    child whose annotations say ``List[int]`` would run typing's Python-level machinery anew (about a
    quarter of a millisecond, most of it copying pages). Computed here, they are cache hits in every
    child. Annotations are still evaluated as Python evaluates them; only the cache is warm.
    """
    typing = sys.modules.get("typing")
    if typing is None:
        return
    t = typing
    scalars = (int, float, str, bool, bytes, object, t.Any)
    try:
        for x in scalars:
            for alias in (t.List[x], t.Set[x], t.Optional[x], t.Tuple[x, x], t.Tuple[x, ...], t.Sequence[x]):
                t.Optional[alias]
            t.Dict[str, x]
            t.Dict[int, x]
            t.List[t.List[x]]
            t.List[t.Tuple[x, x]]
            t.Iterable[x]
            t.Union[x, None]
        t.Union[int, float]
        t.Union[int, str]
        t.Tuple[int, int, int]
        t.Tuple[str, int]
        t.Tuple[int, str]
        t.Tuple[t.List[int], t.List[int]]
    except Exception:  # another typing version: nothing is lost but the head start
        pass


def main(argv=None):
    """Parse the command line, set up the sandbox once, and serve requests on stdin/stdout."""
    global _native
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts["no_native"]:
        _native = None
    # Already done by LD_PRELOAD where the backend could use it (see LocalBackend.environment); else
    # here, before the preloads, so that at least their objects are allocated in huge-page arenas.
    huge = bool(_native is not None and not opts["no_huge_pages"] and _native.huge_arenas())
    cpu = None
    if opts["cpu"] is not None and hasattr(os, "sched_setaffinity"):
        try:  # children inherit it: each runs on the core whose caches hold the zygote's pages
            os.sched_setaffinity(0, {int(opts["cpu"])})
            cpu = int(opts["cpu"])
        except (ValueError, OSError):
            pass
    if opts["site_dirs"]:  # started with -S: the import directories that site.py would have added
        sys.path.extend(d for d in opts["site_dirs"].split(os.pathsep) if d and d not in sys.path)
    modules = list(PRELOAD) if opts["preload"] else []
    if opts["preload_modules"]:
        modules = [m for m in opts["preload_modules"].split(",") if m]
    if modules:
        for name in modules:
            try:
                __import__(name)
            except Exception:
                pass
    if opts["preload"] or opts["preload_modules"]:
        warm_typing()
    # The zygote's stdout carries frames only; anything printing to sys.stdout goes to stderr instead.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    zygote = Zygote(
        uid=opts["uid"],
        netns=not opts["no_netns"],
        ipcns=not opts["no_ipcns"],
        mountns=not opts["no_mountns"],
        cgroup=not opts["no_cgroup"],
        workroot=opts["workroot"],
    )
    zygote.cpu = cpu
    zygote.huge_arenas = huge
    if opts["oom_control"]:
        zygote.watch_oom_kills(opts["oom_control"])
    if opts["pids_current"]:
        zygote.watch_pids(opts["pids_current"])
    if hasattr(os, "set_inheritable"):
        os.set_inheritable(out_fd, False)
    import gc

    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()  # children then do not touch (and copy) the zygote's objects while collecting
    if huge:  # the heap as the zygote will fork it, in huge pages (where the preload prepared it)
        zygote.huge_heap = _native.huge_heap()
    zygote.serve(0, out_fd)


if __name__ == "__main__":
    main()
