#!/usr/bin/env python3
"""Check a `sandmine report` page as a person would see it: in headless
Chromium (Debian's chromium and chromium-driver, driven by selenium from
/var/cache/sandmine/py).

Checks, each named in its failures:
  elements  the five sections; the images table lists exactly the
            --expect-image names, in order (without any: at least one
            image), then the (fleet) row; one convergence figure with two
            charts per image; the heatmap; the high-risk table lists
            exactly the --expect-risk IMAGE/SYSCALL pairs (without any: not
            compared; no rows: the "no image" line); no <script> element
            at all (image names are hostile input)
  console   the browser's console has no error (a fetch the page's CSP
            refuses is one, so is a failed load)
  csp       the page carries a Content-Security-Policy meta that starts
            with default-src 'none' and allows nothing unsafe or remote
  pixels    every chart's plot area has ink: pixels of a colour the
            frame and grid lines do not have

Usage:
  check-report.py REPORT.html [--png OUT.png] [--expect-image NAME]...
                  [--expect-risk IMAGE/SYSCALL]... [--self-test]

--png writes the rendered page (full height). --self-test first checks the
page, then broken copies of it, each of which must fail exactly the check
meant: an external <script src>, an external <img>, no CSP, an emptied
chart, a missing section. Exit status 0 when every check passed, 1
otherwise (one line per failure), 2 on a usage error.
"""

import argparse
import os
import re
import struct
import sys
import tempfile
import zlib

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SECTIONS = ["images", "convergence", "heatmap", "risks", "denials", "changes"]
WIDTH = 1400
# A chart must have at least this many ink pixels in its plot area.
MIN_INK = 20


def start_browser(profile_dir):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # As root, with no network: no sandbox, no GPU, nothing in the
    # background that would try to reach the closed network.
    for a in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        f"--window-size={WIDTH},900",
        f"--user-data-dir={profile_dir}",
    ]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def png_pixels(data):
    """Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's
    screenshots are) into (width, height, rows of (r, g, b))."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, w = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, colour type {ctype}")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def ink(r, g, b):
    """A pixel a chart's data drew: coloured, or dark. The frame, the grid
    lines and the backgrounds are light greys."""
    return max(r, g, b) - min(r, g, b) > 24 or (r + g + b) / 3 < 150


def check_elements(d, expect_images, expect_risks):
    fails = []
    for s in SECTIONS:
        if not d.find_elements(By.ID, s):
            fails.append(f"elements: no section #{s}")
    scripts = d.find_elements(By.TAG_NAME, "script")
    if scripts:
        fails.append(f"elements: {len(scripts)} <script> element(s) in the page")
    rows = d.find_elements(By.CSS_SELECTOR, "#images-table tbody tr")
    names = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
    if expect_images is None:
        # No expectation: the page's own table, which must not be empty.
        expect_images = names[:-1] if len(names) > 1 else ["(an image)"]
    if names != expect_images + ["(fleet)"]:
        fails.append(f"elements: image rows {names}, expected {expect_images + ['(fleet)']}")
    figs = d.find_elements(By.CSS_SELECTOR, "#convergence figure.convergence")
    shown = [f.get_attribute("data-image") for f in figs]
    if shown != expect_images:
        fails.append(f"elements: convergence figures {shown}, expected {expect_images}")
    for f in figs:
        n = len(f.find_elements(By.CSS_SELECTOR, "svg.chart"))
        if n != 2:
            fails.append(f"elements: {f.get_attribute('data-image')!r} has {n} charts, expected 2")
    if len(d.find_elements(By.CSS_SELECTOR, "#heatmap svg.heatmap")) != 1:
        fails.append("elements: no heatmap chart")
    risks = [
        f"{r.get_attribute('data-image')}/{r.get_attribute('data-syscall')}"
        for r in d.find_elements(By.CSS_SELECTOR, "#risks-table tbody tr")
    ]
    if expect_risks is not None and risks != expect_risks:
        fails.append(f"elements: high-risk rows {risks}, expected {expect_risks}")
    if not risks and not d.find_elements(By.ID, "risks-none"):
        fails.append("elements: no high-risk rows and no #risks-none line")
    return fails


def check_console(logs):
    return [
        f"console: {e.get('level')}: {e.get('message')}"
        for e in logs
        if e.get("level") in ("SEVERE", "ERROR")
    ]


def check_csp(d):
    metas = d.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="Content-Security-Policy"]')
    if len(metas) != 1:
        return [f"csp: {len(metas)} Content-Security-Policy meta element(s), expected 1"]
    c = metas[0].get_attribute("content") or ""
    fails = []
    if not c.startswith("default-src 'none'"):
        fails.append(f"csp: does not start with default-src 'none': {c!r}")
    for bad in ["unsafe-inline", "unsafe-eval", "http:", "https:", "data:", "*"]:
        if bad in c:
            fails.append(f"csp: allows {bad}: {c!r}")
    return fails


def check_pixels(d, png_out):
    height = d.execute_script("return document.documentElement.scrollHeight")
    width = d.execute_script("return document.documentElement.scrollWidth")
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": max(width, WIDTH), "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    png = d.get_screenshot_as_png()
    if png_out:
        with open(png_out, "wb") as f:
            f.write(png)
    w, h, bpp, rows = png_pixels(png)
    fails = []
    charts = d.find_elements(By.CSS_SELECTOR, "svg.chart")
    if not charts:
        return ["pixels: no chart"]
    for svg in charts:
        name = svg.get_attribute("aria-label")
        areas = svg.find_elements(By.CSS_SELECTOR, ".plot-area")
        if len(areas) != 1:
            fails.append(f"pixels: {name!r} has {len(areas)} plot areas")
            continue
        r = d.execute_script(
            "const b = arguments[0].getBoundingClientRect();"
            "return [b.left + window.scrollX, b.top + window.scrollY, b.width, b.height];",
            areas[0],
        )
        x0, y0 = int(r[0]) + 2, int(r[1]) + 2
        x1, y1 = min(int(r[0] + r[2]) - 2, w), min(int(r[1] + r[3]) - 2, h)
        n = 0
        for y in range(max(y0, 0), y1):
            line = rows[y]
            for x in range(max(x0, 0), x1):
                p = x * bpp
                if ink(line[p], line[p + 1], line[p + 2]):
                    n += 1
        if n < MIN_INK:
            fails.append(f"pixels: chart {name!r} is empty ({n} ink pixels in its plot area)")
    return fails


def check(path, expect_images, expect_risks, png_out=None):
    """Every check on one page: {check name: [failures]}."""
    with tempfile.TemporaryDirectory() as profile:
        d = start_browser(profile)
        try:
            d.get("file://" + os.path.abspath(path))
            out = {
                "elements": check_elements(d, expect_images, expect_risks),
                "csp": check_csp(d),
                "pixels": check_pixels(d, png_out),
            }
            # Read last: everything the page did is logged by now.
            out["console"] = check_console(d.get_log("browser"))
            return out
        finally:
            d.quit()


def broken_samples(html):
    """(name, the checks that must fail, page)."""
    head_end = html.index("</head>")

    def at_head(tag):
        return html[:head_end] + tag + html[head_end:]

    csp = re.compile(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n?')
    # The first chart's marks (its data) removed: an empty chart.
    fig = html.index('<figure class="convergence"')
    end = html.index("</svg>", fig)
    first = html[fig:end]
    emptied = re.sub(r'<(path|circle|rect) class="mark"[^>]*?(/>|>.*?</\1>)', "", first)
    sec = re.compile(r'<section id="heatmap">.*?</section>\n?', re.S)
    return [
        # A script element is an element failure too.
        ("external script", ["console", "elements"], at_head('<script src="http://127.0.0.1:9/x.js"></script>')),
        ("external image", ["console"], html.replace("<body>", '<body><img src="http://127.0.0.1:9/x.png" alt="">', 1)),
        ("no CSP", ["csp"], csp.sub("", html, count=1)),
        ("empty chart", ["pixels"], html[:fig] + emptied + html[end:]),
        ("missing section", ["elements"], sec.sub("", html, count=1)),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report")
    ap.add_argument("--png")
    ap.add_argument("--expect-image", action="append", help="default: the page's own image rows")
    ap.add_argument("--expect-risk", action="append", help="default: not compared")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    failures = []
    result = check(a.report, a.expect_image, a.expect_risk, a.png)
    for name, fails in result.items():
        failures += fails
        print(f"check-report: {name}: {'ok' if not fails else 'FAILED'}")
    if a.self_test:
        with open(a.report, encoding="utf-8") as f:
            html = f.read()
        expect_risks = a.expect_risk
        with tempfile.TemporaryDirectory() as tmp:
            for name, meant, page in broken_samples(html):
                p = os.path.join(tmp, "broken.html")
                with open(p, "w", encoding="utf-8") as f:
                    f.write(page)
                r = check(p, a.expect_image, expect_risks)
                failed = sorted(k for k, v in r.items() if v)
                if failed != meant:
                    failures.append(f"self-test: the {name} sample failed {failed}, expected exactly {meant}: {r}")
                else:
                    print(f"check-report: self-test: {name}: caught by {meant}: {r[meant[0]][0]}")
    for f in failures:
        print(f"check-report: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
