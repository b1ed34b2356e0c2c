"""Runs a command and reports its peak resident set size (standard library only).

    /usr/bin/python3 tests/support/peak_rss.py OUT COMMAND [ARG...]

Writes the command's peak RSS in KiB (ru_maxrss from wait4) to the file OUT and exits with the
command's exit code. Why not wait4 in the test itself: a child's ru_maxrss starts at its
parent's peak when it execs (Linux carries the high-water mark of the memory it leaves behind
across exec), so a child of a big test process reports the test's memory, not its own. This
small process in between is the parent instead.
"""

import os
import subprocess
import sys

child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
