"""Confinement the worker applies to itself before any student code runs: Landlock and seccomp.

Loaded by harness.py by path (stdlib + ctypes only; pyseccomp when the worker's Python has it). The
parent says what to apply (``--confine`` JSON: read-only paths, the writable scratch, which layers);
the harness reports which layers really took effect in its "ready" message, sent before the
submission is imported, so the report names the layers in force.

Landlock (hand-written over the three syscalls: the PyPI binding covers the ABI 1-3 filesystem rights
only, not TCP (ABI 4) or the abstract-socket and signal scopes (ABI 6) this needs):
- filesystem: read (and execute) below the allowlisted paths, read-write below scratch, nothing else;
- network (ABI >= 4): no TCP bind or connect at all;
- scopes (ABI >= 6): no abstract unix socket outside the worker, no signal to a process outside it.
seccomp (pyseccomp over libseccomp): no socket but AF_UNIX, no ptrace or cross-process memory access,
no mount/unshare/setns, no keyctl, bpf, perf_event_open, io_uring, userfaultfd, kernel modules; clone3
answers ENOSYS so the C library falls back to clone, whose namespace flags are refused.
"""
import ctypes
import errno
import os

SYS_LANDLOCK_CREATE_RULESET = 444   # the same number on every architecture (new syscall table)
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_CHAR, FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_FIFO, FS_MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
FS_MAKE_SYM, FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ_FILE_RIGHTS = FS_EXECUTE | FS_READ_FILE
READ_DIR_RIGHTS = READ_FILE_RIGHTS | FS_READ_DIR

AF_UNIX = 1
#: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
CLONE_NEW_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080)
DENIED_SYSCALLS = ("ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root",
                   "chroot", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
                   "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load",
                   "kexec_file_load", "init_module", "finit_module", "delete_module", "swapon", "swapoff",
                   "reboot", "open_by_handle_at", "name_to_handle_at", "fanotify_init", "move_mount",
                   "open_tree", "fsopen", "fsmount", "fspick", "mount_setattr", "personality")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is absent or disabled."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                           ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1            # ABI 1: bits 0-12
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def apply_landlock(read_only, writable, listable=()):
    """Restrict this process (and everything it starts) to the given paths. Returns the ABI in force.

    ``read_only``: paths (files or folders) readable and executable; ``writable``: folders with every
    right below them; ``listable``: folders whose tree may be listed, not read (under bubblewrap: /,
    which holds nothing but the allowlist). Raises OSError when a rule cannot be added (a half-applied ruleset is never
    enforced: restrict_self comes last)."""
    abi = landlock_abi()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available in this kernel")
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        rules = [(p, None) for p in read_only] + [(p, handled) for p in writable] + [(p, FS_READ_DIR) for p in listable]
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a listed path that does not exist grants nothing
            try:
                is_dir = os.path.isdir(f"/proc/self/fd/{fd}") if rights is None else True
                allowed = rights if rights is not None else (READ_DIR_RIGHTS if is_dir else READ_FILE_RIGHTS)
                rule = _PathBeneath(allowed & handled, fd)
                if libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                                ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def _import_pyseccomp(sonames):
    """pyseccomp, whose import looks its libraries up with ctypes.util.find_library: that runs
    ldconfig, which the sandbox does not have, so the names the parent found are handed in. A
    stand-in ``ctypes.util`` answers during the import (the real one imports subprocess, shutil and
    tempfile: a tenth of the worker's start); the real one is what any later import gets."""
    import ctypes
    import sys
    import types
    stand_in = types.ModuleType("ctypes.util")
    stand_in.find_library = lambda name: sonames.get(name)
    had = sys.modules.get("ctypes.util")
    sys.modules["ctypes.util"] = stand_in
    ctypes.util = stand_in
    try:
        import pyseccomp  # noqa: PLC0415 - optional: only where the worker's Python has it
    finally:
        if had is None:
            del sys.modules["ctypes.util"]
            del ctypes.util
        else:
            sys.modules["ctypes.util"] = ctypes.util = had
    return pyseccomp


def apply_seccomp(sonames=None):
    """Load the syscall filter (needs pyseccomp and the system libseccomp). Returns the rule count."""
    sc = _import_pyseccomp(sonames or {})
    filt = sc.SyscallFilter(defaction=sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    count = 0
    filt.add_rule(deny, "socket", sc.Arg(0, sc.NE, AF_UNIX))
    filt.add_rule(deny, "socketpair", sc.Arg(0, sc.NE, AF_UNIX))
    for flag in CLONE_NEW_FLAGS:  # no new namespace of any kind through clone
        filt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        count += 1
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # its flags live in memory: make libc fall back to clone
    count += 3
    for name in DENIED_SYSCALLS:
        try:
            filt.add_rule(deny, name)
            count += 1
        except (RuntimeError, ValueError, OSError):
            pass  # a syscall this architecture does not have
    filt.load()
    return count


def apply(spec):
    """Apply what ``spec`` asks for; returns the layers in force, e.g. ["landlock:7", "seccomp"].

    A requested layer that fails is left out of the list (the parent compares it with the level's
    promise and refuses to go on with less than the course's minimum)."""
    layers = []
    if spec.get("seccomp"):
        try:
            apply_seccomp(spec.get("sonames"))
            layers.append("seccomp")
        except Exception:  # noqa: BLE001 - reported as absent, never silently claimed
            pass
    if spec.get("landlock"):
        try:
            abi = apply_landlock(spec.get("read_only", []), spec.get("writable", []), spec.get("listable", []))
            layers.append(f"landlock:{abi}")
        except Exception:  # noqa: BLE001
            pass
    return layers
