"""Why a run stopped on purpose, in one line and one exit code: a signal, a failed write, divergence, a lost worker.

``keras-vit train`` prints the exception's message and exits with its code, so a scheduler can tell a
preemption (rerun at once) from a full disk (free space first) or a diverged run (change the recipe):

==========  ==========================  ==================================================================
exit code   exception                   meaning
==========  ==========================  ==================================================================
75          :class:`Preempted`          SIGTERM/SIGINT: a checkpoint of the current step was saved; rerun
74          :class:`WriteFailed`        a write failed (ENOSPC, EDQUOT, EFBIG, EIO, read-only); earlier
                                        checkpoints and ``best.keras`` are intact; free space and rerun
65          :class:`Diverged`           a non-finite loss or gradient; nothing of it was saved
69          :class:`WorkerLost`         a peer of a multi-worker run died or hung; restart all workers
73          :class:`FolderLocked`       another live run holds the output folder; nothing was touched
==========  ==========================  ==================================================================

75, 74, 65, 69 and 73 are sysexits.h's EX_TEMPFAIL, EX_IOERR, EX_DATAERR, EX_UNAVAILABLE and EX_CANTCREAT.

Example:
    >>> with StopSignals() as signals:
    ...     signals.requested is None   # a signal sets it; the loop checks it between steps
    True
"""

import contextlib
import errno
import fcntl
import os
import re
import signal
import threading

PREEMPTED, WRITE_FAILED, DIVERGED, WORKER_LOST, FOLDER_LOCKED = 75, 74, 65, 69, 73

# errno -> what ran out or broke, as the one line says it.
DISK_ERRORS = {
    errno.ENOSPC: "no space left on device (ENOSPC)",
    errno.EDQUOT: "disk quota exceeded (EDQUOT)",
    errno.EFBIG: "file size limit exceeded (EFBIG)",
    errno.EIO: "input/output error (EIO)",
    errno.EROFS: "read-only file system (EROFS)",
}


class RunStopped(RuntimeError):
    """A run that stopped on purpose; ``str(error)`` is the one line to show, ``exit_code`` the status."""

    exit_code = 1


class Preempted(RunStopped):
    exit_code = PREEMPTED


class WriteFailed(RunStopped):
    exit_code = WRITE_FAILED

    def __init__(self, path: str, reason: str, note: str = ""):
        super().__init__(f"Could not write {path}: {reason}." + (f" {note}" if note else ""))
        self.path, self.reason = path, reason


class Diverged(RunStopped):
    exit_code = DIVERGED


class WorkerLost(RunStopped):
    exit_code = WORKER_LOST


class FolderLocked(RunStopped):
    exit_code = FOLDER_LOCKED


class FolderLock:
    """Holds ``folder/run.lock`` (an ``flock``, with the holder's PID inside) for the life of a run.

    A second run on the same folder is refused with :class:`FolderLocked` naming the holder, before it
    reads or writes anything there. The kernel releases an ``flock`` when its process dies however it
    dies, so the lock a killed run leaves behind is taken over by the next one (a SIGSTOPped run is
    alive and keeps it). ``enabled=False`` (the non-chief workers of a multi-worker run, which share the
    chief's folder) does nothing.
    """

    NAME = "run.lock"

    def __init__(self, folder: str, enabled: bool = True):
        self.path, self.enabled, self._handle = os.path.join(folder, self.NAME), enabled, None

    def __enter__(self):
        if not self.enabled:
            return self
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with writing(self.path):
            handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderLocked(f"{os.path.dirname(self.path)} is in use by a live run (PID {holder}); nothing was "
                               "changed. Wait for it to end, stop it, or give another --output-dir.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc):
        if self._handle is not None:
            self._handle.close()  # releases the flock
            self._handle = None
        return False


def divergence_fixes(config, precision: str) -> str:
    """The usual cures of a diverging run, with the values this run used."""
    fixes = [f"a lower --learning-rate (now {config.learning_rate:g})",
             f"a longer --warmup-epochs (now {config.warmup_epochs:g})",
             f"a smaller --clip-norm (now {config.clip_norm:g})" if config.clip_norm
             else "gradient clipping, --clip-norm 1 (now off)"]
    if precision != "float32":
        fixes.append(f"--precision float32 (now {precision})")
    if config.on_nan == "stop":
        fixes.append("or --on-nan skip to skip such steps")
    return "Try " + ", ".join(fixes) + "."


def disk_reason(error: BaseException):
    """What ran out, for an ``OSError`` or a TensorFlow error caused by a failed write; else None.

    TensorFlow's file system reports errno only as ``strerror`` text inside its message, so that
    text is what is matched there.
    """
    if isinstance(error, OSError) and error.errno in DISK_ERRORS:
        return DISK_ERRORS[error.errno]
    message = str(getattr(error, "message", None) or error)
    for code, reason in DISK_ERRORS.items():
        if os.strerror(code) in message:
            return reason
    if error.__cause__ is not None and error.__cause__ is not error:
        return disk_reason(error.__cause__)
    return None


def lost_peer(error: BaseException) -> str:
    """Which peer a collective's error names, and why, from TensorFlow's message (``worker 1 (Connection
    reset by peer)``); "another worker" when the message names none."""
    message = str(getattr(error, "message", None) or error)
    task = re.search(r"/job:(\w+)/replica:\d+/task:(\d+)", message)
    why = re.search(r'grpc_message:"(?:[a-z]+:)?([^"]+)"', message) or re.search(r"(\w[^\n]* is down)", message)
    who = f"{task.group(1)} {task.group(2)}" if task else "another worker"
    return who + (f" ({why.group(1)})" if why else f" ({type(error).__name__})")


@contextlib.contextmanager
def writing(path: str):
    """Turns a disk error raised inside the block into :class:`WriteFailed` naming ``path``."""
    try:
        yield
    except WriteFailed:
        raise
    except Exception as error:  # noqa: BLE001 - classified below, others re-raised as they are
        reason = disk_reason(error)
        if reason is None:
            raise
        raise WriteFailed(os.fspath(path), reason) from error


class StopSignals:
    """Records the first SIGTERM or SIGINT instead of dying; the training loop checks ``requested``.

    The handler only sets a flag: checkpoints are saved by the loop, between steps. After the first
    signal the previous handlers are back, so a second Ctrl-C (or SIGTERM) stops at once. Outside the
    main thread (where Python cannot install handlers) this does nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.requested = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.requested = signal.Signals(signum).name
        self._restore()

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        self._restore()
        return False
