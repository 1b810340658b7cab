"""What a user sees in TensorBoard's images tab, checked in a real browser: headless Chromium
(Debian's ``chromium``) opens a running convae-board, moves the step slider of every
``images/reconstructions`` card through each position, prints the step shown at each, and
saves a screenshot with the first card on its first step.

    convae-board outputs/multirun/<date>/<time> --port 6006 &
    python scripts/board_browser_check.py http://localhost:6006/ --screenshot board.png

Talks to Chromium over its DevTools pipe (``--remote-debugging-pipe``: JSON messages ending
in NUL on file descriptors 3 and 4), so it needs nothing beyond the standard library. Exits
non-zero when there is no card, a card's slider does not start at step 0, or (``--steps N``)
it offers other than N steps.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
from typing import Any

TAG = "images/reconstructions"

# Every element matching a selector, inside shadow roots too (TensorBoard is Polymer).
DEEP = """function deep(root, sel, acc) { acc = acc || [];
  root.querySelectorAll('*').forEach(e => { if (e.matches(sel)) acc.push(e);
    if (e.shadowRoot) deep(e.shadowRoot, sel, acc); }); return acc; }"""

SLIDE = (
    DEEP
    + """
(async () => {
  const cards = deep(document, 'tf-image-loader').filter(c => c.tag === TAG);
  const report = [];
  for (const card of cards) {
    const slider = deep(card.shadowRoot, 'paper-slider')[0];
    const steps = [];
    for (let i = 0; i <= slider.max; i++) {
      card._stepIndex = i; slider.value = i;
      await new Promise(r => setTimeout(r, 150));
      const m = card.shadowRoot.textContent.replace(/\\s+/g, ' ').match(/step (\\d+)/);
      steps.push(m ? Number(m[1]) : null);
    }
    report.push({run: card.run, positions: slider.max + 1, steps: steps});
  }
  if (cards.length) {
    cards[0]._stepIndex = 0; deep(cards[0].shadowRoot, 'paper-slider')[0].value = 0;
    cards[0].scrollIntoView();
  }
  await new Promise(r => setTimeout(r, 500));
  return report;
})()"""
)


class Chromium:
    """A headless Chromium driven over its DevTools pipe, one page attached."""

    def __init__(self, width: int = 1500, height: int = 1000) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        fds = {3: to_chrome_r, 4: from_chrome_w}

        def child_fds() -> None:  # in the child: its fds 3 and 4 become the pipe ends
            copies = {target: os.dup(fd) for target, fd in fds.items()}  # in case fd is 3 or 4
            for target, fd in copies.items():
                os.dup2(fd, target)

        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-pipe", f"--window-size={width},{height}", "about:blank"],
            pass_fds=(3, 4, to_chrome_r, from_chrome_w), preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._id, self._buffer, self.session = 0, b"", None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        reply = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return reply.get("result", {}).get("value")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="a running convae-board, e.g. http://localhost:6006/")
    parser.add_argument("--screenshot", help="PNG file for the images tab as the browser shows it")
    parser.add_argument("--wait", type=float, default=12.0, help="seconds to let the page load")
    parser.add_argument("--steps", type=int, help="the image steps each card must offer")
    args = parser.parse_args()
    chrome = Chromium()
    try:
        chrome.call("Page.enable")
        chrome.call("Page.navigate", url=f"{args.url.rstrip('/')}/#images")
        time.sleep(args.wait)
        cards = chrome.evaluate(SLIDE.replace("TAG", json.dumps(TAG)))
        if args.screenshot:
            shot = chrome.call("Page.captureScreenshot", format="png")["data"]
            with open(args.screenshot, "wb") as file:
                file.write(base64.b64decode(shot))
    finally:
        chrome.close()
    for card in cards or []:
        print(f"{card['run']}: {card['positions']} slider positions, steps {card['steps']}")
    ok = bool(cards) and all(c["steps"] and c["steps"][0] == 0 for c in cards)
    if args.steps is not None:
        ok = ok and all(c["positions"] == args.steps for c in cards)
    if not ok:
        wanted = f" and {args.steps} steps" if args.steps is not None else ""
        print(f"not every {TAG} card reaches step 0{wanted}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
