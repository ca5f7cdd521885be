"""For the Python cross-checks that load the library through ctypes."""
import os
import subprocess
import sys


def preload_sanitizers():
    """A library built with -DVP_SANITIZE=ON needs the ASan runtime loaded
    first: re-run the calling script with it preloaded (leak checks off: the
    Python interpreter itself is not leak-clean)."""
    with open(os.environ["VP_LIB"], "rb") as f:
        if b"libasan.so" not in f.read() or "libasan" in os.environ.get("LD_PRELOAD", ""):
            return
    libs = [subprocess.run(["gcc", "-print-file-name=%s" % n], capture_output=True, text=True).stdout.strip()
            for n in ("libasan.so", "libubsan.so")]
    env = dict(os.environ, LD_PRELOAD=" ".join(libs),
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)
