"""What the scripts in benches/ share: the release binary, free loopback ports, core pinning and
a process's resident memory."""
import os
import shutil
import socket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# IB_BIN runs another build (e.g. the one before a change, for a before/after comparison).
BIN = os.environ.get("IB_BIN") or os.path.join(ROOT, "target", "release", "inference-benchmarker")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core, argv):
    """argv run on one core (taskset), when there is taskset and more than one core."""
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() >= 2:
        return ["taskset", "-c", str(core)] + argv
    return argv


def rss_kb(pid):
    """Resident memory of a live process (VmRSS), in KB; 0 when /proc does not say."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU time a live process has used so far (/proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
