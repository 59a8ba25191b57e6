"""`waypoint serve` as a child process on loopback, for scripts/crash_test.py and scripts/soak.py:
start (the port is read from its "listening on" line), SIGKILL, SIGTERM then SIGKILL, clean stop,
resident memory, the tail of its log. Python 3.11 standard library only.
"""
import re
import signal
import subprocess
import time


class Server:
    """`waypoint serve` on loopback; the port is parsed from its "listening on" line."""

    def __init__(self, binary, data, port, threads, log_path):
        self.binary, self.data, self.want_port, self.threads = binary, data, port, threads
        self.log_path = log_path
        self.proc = None
        self.port = None

    def start(self, timeout=900.0):
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--data", self.data, "--host", "127.0.0.1",
                 "--port", str(self.want_port), "--threads", str(self.threads)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                m = re.search(rb"listening on https?://[0-9.]+:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode} at start:\n"
                                   + self.log_tail())
            time.sleep(0.02)
        raise RuntimeError(f"server not listening after {timeout:.0f} s:\n" + self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_mb(self):
        """The server's resident memory (VmRSS) in MiB; nan when it cannot be read."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate_then_kill(self, delay_s):
        """SIGTERM, then SIGKILL after delay_s unless it has exited; True when it exited alone."""
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + delay_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return True
            time.sleep(0.0005)
        if self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return False

    def stop(self, timeout=600.0):
        """Clean shutdown (SIGTERM): (exit status, seconds it took)."""
        t0 = time.monotonic()
        if not self.alive():
            return (self.proc.returncode if self.proc else 0), 0.0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "hung (killed)"
        return rc, time.monotonic() - t0

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""
