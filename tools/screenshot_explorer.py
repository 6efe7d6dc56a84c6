"""Screenshot of the station explorer for the README (docs/explorer.png).

Start the API on the full data set first (``make run``), then:

    .venv/bin/python tools/screenshot_explorer.py [--url http://127.0.0.1:8000/]
        [--station USC00110072] [--year 2010] [--width 1280] [--out docs/explorer.png]

Uses Debian's chromium and chromium-driver, as the browser tests do.
"""

from __future__ import annotations

import argparse
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

SETTLE_S = 0.5  # the charts' resize observer waits 100 ms before redrawing


def main() -> None:
    """Open the page at one station and year, wait for both charts, save the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/")
    parser.add_argument("--station", default="USC00110072")
    parser.add_argument("--year", type=int, default=2010)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--out", default="docs/explorer.png")
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={args.width},1000")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"{args.url}#station={args.station}&year={args.year}")
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return document.getElementById('daily-chart').dataset.state === 'ready'"
            )
        )
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(args.width, height + 100)
        time.sleep(SETTLE_S)
        driver.save_screenshot(args.out)
    finally:
        driver.quit()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
