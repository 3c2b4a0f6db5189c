#!/usr/bin/env python3
"""cdp.py: drives headless Chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: JSON messages, NUL-terminated, on fds 3 and 4),
so no WebSocket library is needed.

  cdp.py CHROMIUM URL OUTDIR GOFILE MOTION_DIR

Loads URL BEFORE the scenario sends anything: once the page has its
event stream's opening state, with no action in its list, it marks the
window (window.gfeMark, gone on any reload) and makes GOFILE, which lets
the sim play (await_file).  Then it reads what the page must show from
the FIFO OUTDIR/expect.fifo ({"actions": {id: state}, "jobs": [names],
"printer": {"name", "model", "state"} or null: the FlashForge line},
written by browser-check.sh once the scenario passed) and waits (in the
page, at most 30 s) until the live list and the gallery match it and every
gallery image has decoded; then keeps one more job in MOTION_DIR (a copy
of the first, under a new name, .info first as the store does) and waits
for the gallery to show it, drawn.  The mark must still be there: all of
it came without a reload.  Saves OUTDIR/page.png (desktop),
OUTDIR/page-phone.png and OUTDIR/dom.json (what the page showed); writes
"passed" or why not to the FIFO OUTDIR/result.fifo.
Exit 0 when all held, 1 when not, 2 when Chromium would not run.
"""
import base64
import json
import os
import random
import signal
import shutil
import subprocess
import sys

TIMEOUT_MS = 30000


class Cdp:
    def __init__(self, chromium, profile):
        r_cmd, w_cmd = os.pipe()    # we write commands, Chromium reads fd 3
        r_ev, w_ev = os.pipe()      # Chromium writes fd 4, we read
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--remote-debugging-pipe", "--user-data-dir=" + profile,
             "about:blank"],
            pass_fds=(3, 4), stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(profile, "chromium.log"), "w"),
            preexec_fn=lambda: (os.dup2(r_cmd, 3), os.dup2(w_ev, 4)))
        os.close(r_cmd)
        os.close(w_ev)
        self.w = os.fdopen(w_cmd, "wb", buffering=0)
        self.r = os.fdopen(r_ev, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.session = None
        self.events = set()

    def wait_event(self, method):
        while method not in self.events:
            m = self._read()
            if "method" in m:
                self.events.add(m["method"])

    def _read(self):
        while b"\0" not in self.buf:
            chunk = self.r.read(65536)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.w.write(json.dumps(msg).encode() + b"\0")
        while True:     # events in between: only their names are kept
            m = self._read()
            if "method" in m:
                self.events.add(m["method"])
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {
            "expression": expr, "awaitPromise": True,
            "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(json.dumps(r["exceptionDetails"])[:800])
        return r["result"].get("value")

    def shot(self, path, width, height, scale, mobile):
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": scale,
            "mobile": mobile})
        # Laid out again at the new size before the picture.
        self.eval("new Promise(r => requestAnimationFrame(() => "
                  "requestAnimationFrame(() => r(1))))")
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# In the page: resolves with what it shows once cond() holds, rejects
# after the timeout with what it showed then.
WAIT = r"""
new Promise((resolve, reject) => {
  const want = %s;
  const seen = () => ({
    actions: [...document.querySelectorAll("#actions li")].map(li =>
      ({id: li.dataset.id, type: li.dataset.type, state: li.dataset.state})),
    jobs: [...document.querySelectorAll("#gallery figure.job")].map(f => {
      const img = f.querySelector("img");
      return {name: f.dataset.name,
        img: img ? {complete: img.complete, w: img.naturalWidth,
                    h: img.naturalHeight} : null};
    }),
    state: document.getElementById("state")?.textContent,
    printer: document.getElementById("printer")?.textContent,
    live: document.getElementById("live")?.textContent,
  });
  const cond = (s) => {
    const ids = {};
    for (const a of s.actions) ids[a.id] = a.state;
    for (const id in want.actions)
      if (ids[id] !== want.actions[id]) return false;
    if (s.jobs.length !== want.jobs.length) return false;
    if (want.printer && !(s.printer.includes(want.printer.name) &&
        s.printer.includes(want.printer.model) &&
        s.printer.includes(want.printer.state))) return false;
    return s.jobs.every(j => want.jobs.includes(j.name) && j.img &&
      j.img.complete && j.img.w > 0);
  };
  const t0 = Date.now();
  const tick = () => {
    const s = seen();
    if (cond(s)) return resolve(s);
    if (Date.now() - t0 > %d) return reject(new Error(JSON.stringify(s)));
    setTimeout(tick, 100);
  };
  tick();
})
"""


# In the page: the opening state came (one "update"), the list is empty.
OPENED = r"""
new Promise((resolve, reject) => {
  const t0 = Date.now();
  const tick = () => {
    if (+document.body.dataset.updates >= 1)
      return resolve(document.querySelectorAll("#actions li").length);
    if (Date.now() - t0 > %d) return reject(new Error("no update event"));
    setTimeout(tick, 50);
  };
  tick();
})
"""


def fifo(path, mode):
    """Opens a FIFO, which blocks until the other end is there: 240 s."""
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(
        TimeoutError("nobody at " + path)))
    signal.alarm(240)
    try:
        return open(path, mode)
    finally:
        signal.alarm(0)


def live(cdp, url, outdir, gofile, motion):
    """Raises on any failure."""
    cdp.events.discard("Page.loadEventFired")
    cdp.call("Page.navigate", {"url": url})
    cdp.wait_event("Page.loadEventFired")
    n = cdp.eval(OPENED % TIMEOUT_MS)
    if n != 0:
        raise RuntimeError("%d actions shown before play" % n)
    mark = "%016x" % random.getrandbits(64)
    cdp.eval("window.gfeMark = %s" % json.dumps(mark))
    with open(gofile, "w"):
        pass
    with fifo(os.path.join(outdir, "expect.fifo"), "r") as f:
        expect = json.load(f)
    shown = cdp.eval(WAIT % (json.dumps(expect), TIMEOUT_MS))
    # A job kept now must show without a reload (the "jobs" event).
    planted = "2026-01-02_000000_motion_777"
    for ext in (".info", ".puls"):
        shutil.copyfile(os.path.join(motion, expect["jobs"][0] + ext),
                        os.path.join(motion, "." + planted + ext))
        os.rename(os.path.join(motion, "." + planted + ext),
                  os.path.join(motion, planted + ext))
    expect2 = dict(expect, jobs=expect["jobs"] + [planted])
    shown = cdp.eval(WAIT % (json.dumps(expect2), TIMEOUT_MS))
    still = cdp.eval("[window.gfeMark, +document.body.dataset.updates]")
    if still[0] != mark:
        raise RuntimeError("the page was reloaded (mark %r, was %r)" % (
            still[0], mark))
    shown["updates"] = still[1]
    with open(os.path.join(outdir, "dom.json"), "w") as f:
        json.dump(shown, f, indent=1)
    cdp.shot(os.path.join(outdir, "page.png"), 1100, 1000, 1, False)
    cdp.shot(os.path.join(outdir, "page-phone.png"), 390, 844, 2, True)
    return "%d actions shown live (%d updates, no reload), %d jobs, " \
        "every image decoded" % (len(shown["actions"]), still[1],
                                 len(shown["jobs"]))


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    chromium, url, outdir, gofile, motion = sys.argv[1:]
    profile = os.path.join(outdir, "profile")
    os.makedirs(profile, exist_ok=True)
    try:
        cdp = Cdp(chromium, profile)
        tid = cdp.call("Target.createTarget", {"url": "about:blank"},
                       session=False)["targetId"]
        cdp.session = cdp.call("Target.attachToTarget", {
            "targetId": tid, "flatten": True}, session=False)["sessionId"]
        cdp.call("Page.enable")
        cdp.call("Emulation.setDeviceMetricsOverride", {
            "width": 1100, "height": 1000, "deviceScaleFactor": 1,
            "mobile": False})
    except Exception as e:
        print("cdp: chromium did not start: %s" % e, file=sys.stderr)
        return 2
    rc = 0
    try:
        verdict = "passed"
        print("cdp: " + live(cdp, url, outdir, gofile, motion))
    except Exception as e:
        verdict = "FAIL: %s" % str(e)[:1500]
        print("cdp: " + verdict, file=sys.stderr)
        rc = 1
    cdp.close()
    try:
        with fifo(os.path.join(outdir, "result.fifo"), "w") as f:
            f.write(verdict.replace("\n", " ") + "\n")
    except Exception as e:
        print("cdp: no verdict given: %s" % e, file=sys.stderr)
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
