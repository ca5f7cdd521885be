"""Pass/fail counting for the Python cross-checks: each failure on one line of
stderr, then the last line CI's log shows, "NAME: N passed, N failed"."""
import sys


class Report:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def __call__(self, ok, what, detail=""):
        """Count one check; returns whether it held."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}: {detail}" if detail else f"FAIL {what}", file=sys.stderr)
        return bool(ok)

    def finish(self, extra=""):
        """Print the summary line; the exit status: 1 if anything failed or nothing ran."""
        print(f"{self.name}: {self.passed} passed, {self.failed} failed{extra}")
        return 1 if self.failed or not self.passed else 0
