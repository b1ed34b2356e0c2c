#!/usr/bin/python3
"""Renders the monthly report's HTML in headless Chromium and says what the browser saw.

    render_report.py CHROMIUM REPORT.html OUT_DIR

Three runs of the browser, each with a fresh profile and nothing but the file:

1. a probe page that logs a console error, to prove this machine's Chromium reports console
   messages on stderr the way the check below reads them (otherwise "no console errors" would
   prove nothing);
2. the report, `--screenshot` at 1200x2000 into OUT_DIR/report.png;
3. the report, `--dump-dom`: the DOM after parsing and layout, as the browser built it.

Prints one JSON document: the PNG's size and dimensions, the console lines of runs 2 and 3,
every `data-value` inside each `data-chart` element of the rendered DOM (chart → key → value),
the number of <script> elements and the page's visible text. Exit status 1 on a browser that
fails or times out. Standard library only.
"""

import html.parser
import json
import os
import struct
import subprocess
import sys
import tempfile

TIMEOUT = 120


def chromium(binary, url, extra):
    with tempfile.TemporaryDirectory(prefix="madoguchi-chromium-") as profile:
        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            *extra,
            url,
        ]
        run = subprocess.run(args, capture_output=True, timeout=TIMEOUT)
    stderr = run.stderr.decode("utf-8", "replace")
    if run.returncode != 0:
        sys.stderr.write(f"chromium exited {run.returncode}:\n{stderr}\n")
        sys.exit(1)
    console = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    return run.stdout.decode("utf-8", "replace"), console


class Charts(html.parser.HTMLParser):
    """data-value of every element inside a data-chart element; <script> count; text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []  # (tag, chart name or None)
        self.charts = {}
        self.scripts = 0
        self.text = []
        self.in_style = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        chart = attrs.get("data-chart")
        inside = next((c for _, c in reversed(self.stack) if c), None)
        if tag == "script":
            self.scripts += 1
        if tag == "style":
            self.in_style += 1
        if inside and "data-value" in attrs:
            values = self.charts.setdefault(inside, {})
            values[attrs.get("data-key", "")] = attrs["data-value"]
        if chart is not None:
            self.charts.setdefault(chart, {})
        if tag not in ("meta", "link", "br", "img", "input", "rect", "line", "path"):
            self.stack.append((tag, chart))

    def handle_endtag(self, tag):
        if tag == "style":
            self.in_style -= 1
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_data(self, data):
        if not self.in_style:
            self.text.append(data)


def png_facts(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return {"bytes": len(data), "png": False}
    width, height = struct.unpack(">II", data[16:24])
    return {"bytes": len(data), "png": True, "width": width, "height": height}


def main():
    binary, report, out_dir = sys.argv[1:4]
    report_url = "file://" + os.path.abspath(report)

    probe = os.path.join(out_dir, "probe.html")
    with open(probe, "w", encoding="utf-8") as f:
        f.write('<!DOCTYPE html><html><body><script>console.error("madoguchi-probe")'
                "</script></body></html>")
    _, console = chromium(binary, "file://" + os.path.abspath(probe), ["--dump-dom"])
    if not any("madoguchi-probe" in line for line in console):
        sys.stderr.write("this Chromium does not report console messages on stderr; "
                         f"cannot check the report for console errors: {console}\n")
        sys.exit(1)

    shot = os.path.join(out_dir, "report.png")
    _, shot_console = chromium(
        binary, report_url, [f"--screenshot={shot}", "--window-size=1200,2000"])
    dom, dom_console = chromium(binary, report_url, ["--dump-dom"])
    parser = Charts()
    parser.feed(dom)
    print(json.dumps({
        "screenshot": png_facts(shot) if os.path.exists(shot) else {"bytes": 0, "png": False},
        "console": shot_console + dom_console,
        "charts": parser.charts,
        "scripts": parser.scripts,
        "text": " ".join(" ".join(parser.text).split()),
        "dom_bytes": len(dom),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
