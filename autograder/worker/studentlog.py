"""Student output in the worker: fd 1 and 2 (and sys.stdout/stderr) go to a capped log file, so
prints never reach the protocol and a flood never fails the worker. Loaded by the harness by path
(standard library only)."""
import io
import os
import signal
import sys

MAX_LOG = 1024**2                 # student output kept (the newest part); never an error for the student


class _CappedLog(io.RawIOBase):
    """Student output: writes always succeed; past MAX_LOG bytes the log starts over (newest kept)."""

    def __init__(self, fd):
        super().__init__()
        self.fd = fd

    def writable(self):
        return True

    def write(self, data):
        data = bytes(data)
        size = len(data)
        try:
            if os.lseek(self.fd, 0, os.SEEK_CUR) + size > MAX_LOG:
                os.ftruncate(self.fd, 0)
                os.lseek(self.fd, 0, os.SEEK_SET)
                os.write(self.fd, b"... (earlier output cut)\n")
                data = data[-MAX_LOG // 2:]
            os.write(self.fd, data)
        except OSError:
            pass
        return size


def redirect(path):
    """Point fd 1/2 and sys.stdout/stderr at the capped log ``path`` (the protocol has its own fd)."""
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout, sys.stderr = (io.TextIOWrapper(io.BufferedWriter(_CappedLog(fd)), encoding="utf-8",
                                               errors="backslashreplace", line_buffering=True) for fd in (1, 2))
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a flooded log fails writes, not the worker
