"""Screenshots of a sweep in TensorBoard as a user sees it, for docs/images/: headless
Chromium (Debian's ``chromium``) opens a running convae-board on each view the docs explain
and saves what it shows.

    convae-board <sweep folder> --port 6006 &
    python scripts/board_screenshots.py http://localhost:6006/ docs/images

Writes ``board-timeseries.png`` (the Time Series tab), ``board-custom-scalars.png``,
``board-images.png`` (the artifact pictures), ``board-report.png`` (the report run's
figures, after ``convae-report`` has run), ``board-hparams-table.png`` and
``board-hparams-parallel.png`` (HPARAMS, table and parallel coordinates). Uses the DevTools
pipe of scripts/board_browser_check.py: nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
import base64
import time
from pathlib import Path

from board_browser_check import DEEP, Chromium

# Clicks the first element matching a selector whose text contains a string, in shadow
# roots too; returns whether it found one.
CLICK = (
    DEEP
    + """
(() => {
  const hit = deep(document, SELECTOR).find(e => e.textContent.includes(TEXT));
  if (hit) { hit.click(); return true; }
  return false;
})()"""
)

# Types into the tag filter box: Time Series' <input>, or the Images dashboard's
# <paper-input> (in shadow roots), whichever the view has.
FILTER = (
    DEEP
    + """
(() => {
  const label = e => (e.label || e.placeholder || '');
  const box = deep(document, 'paper-input').find(e => label(e).includes('Filter tags'))
    || deep(document, 'input').find(e => label(e).includes('Filter tags'));
  if (!box) return false;
  box.value = TEXT;
  box.dispatchEvent(new Event('input', {bubbles: true}));
  box.dispatchEvent(new Event('change', {bubbles: true}));
  return true;
})()"""
)

# (file, hash route, action after loading: None, ("click", selector, text), ("filter", regex))
VIEWS = [
    ("board-timeseries.png", "timeseries", ("filter", "loss|psnr|grid$")),
    ("board-custom-scalars.png", "custom_scalars", None),
    ("board-images.png", "images", ("filter", "artifacts/")),
    ("board-report.png", "images", ("filter", "report/")),
    ("board-hparams-table.png", "hparams", None),
    ("board-hparams-parallel.png", "hparams", ("click", "paper-tab", "PARALLEL COORDINATES")),
]


def shoot(chrome: Chromium, path: Path) -> None:
    data = chrome.call("Page.captureScreenshot", format="png")["data"]
    path.write_bytes(base64.b64decode(data))


def js(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace(name, repr(value))
    return template


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="a running convae-board, e.g. http://localhost:6006/")
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    parser.add_argument("--wait", type=float, default=15.0, help="seconds to let a view load")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chrome = Chromium(width=1600, height=1000)
    try:
        chrome.call("Page.enable")
        for name, route, action in VIEWS:
            chrome.call("Page.navigate", url="about:blank")
            chrome.call("Page.navigate", url=f"{args.url.rstrip('/')}/#{route}")
            time.sleep(args.wait)
            if action is not None:
                if action[0] == "click":
                    done = chrome.evaluate(js(CLICK, SELECTOR=action[1], TEXT=action[2]))
                else:
                    done = chrome.evaluate(js(FILTER, TEXT=action[1]))
                print(f"{name}: {action[0]} {'done' if done else 'NOT FOUND'}")
                time.sleep(args.wait / 2)
            shoot(chrome, args.out / name)
            print(f"wrote {args.out / name}")
    finally:
        chrome.close()


if __name__ == "__main__":
    main()
