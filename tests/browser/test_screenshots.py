"""Every main page of the dashboard in a real browser, on a desktop and a phone screen: it renders, every
form control has a label, every button and link is reached by Tab, nothing is wider than a phone's screen;
and a screenshot of it. `scripts/screenshots` runs this with SIPLINE_SCREENSHOTS=docs/screenshots, which keeps
them for README; otherwise they go to the test's temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.browser.harness import add_line, dashboard_link, wait_for
from tests.integration.operator import cli
from tests.peers.sipp import SippRegistrar

PHONE = (390, 844)
DESKTOP = (1280, 900)

UNLABELLED = """
return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(control => !control.closest('label') && !control.getAttribute('aria-label')
          && !(control.id && document.querySelector(`label[for="${control.id}"]`)))
  .map(control => control.outerHTML);
"""
TOO_WIDE = "return document.documentElement.scrollWidth > window.innerWidth + 1"


def folder(tmp_path: Path) -> Path:
    into = Path(os.environ.get("SIPLINE_SCREENSHOTS") or tmp_path / "screenshots")
    into.mkdir(parents=True, exist_ok=True)
    return into


FOCUSABLE = """
return [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select')]
  .filter(element => element.offsetParent !== null).map(element => element.outerHTML.slice(0, 160));
"""
FOCUSED = "return document.activeElement.outerHTML.slice(0, 160)"


def reached_by_tab(browser, count: int) -> set[str]:
    """What focus lands on, pressing Tab `count` times from the top of the page."""
    reached = set()
    for _ in range(count):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        reached.add(browser.execute_script(FOCUSED))
    return reached


def shoot(browser, url: str, heading: str, into: Path, name: str) -> None:
    browser.set_window_size(*DESKTOP)
    browser.get(url)
    wait_for(browser, "h1", text=heading)
    whole = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(DESKTOP[0], min(max(whole + 140, DESKTOP[1]), 4000))  # the whole page in one picture
    browser.save_screenshot(str(into / f"{name}.png"))
    browser.set_window_size(*DESKTOP)
    assert browser.execute_script(UNLABELLED) == [], name
    focusable = browser.execute_script(FOCUSABLE)
    reached = reached_by_tab(browser, len(focusable) + 2)  # +2: the skip link, and one past the end
    assert [each for each in focusable if each not in reached] == [], name
    browser.set_window_size(*PHONE)
    browser.get(url)
    wait_for(browser, "h1", text=heading)
    # wide tables scroll inside their own box; the page itself never does
    assert not browser.execute_script(TOO_WIDE), f"{name} is wider than a phone"
    browser.save_screenshot(str(into / f"{name}-phone.png"))


def test_the_main_pages_render_are_labelled_keyboard_reachable_and_fit_a_phone(tmp_path, registering, browser):
    into = folder(tmp_path)
    base = registering.base_url
    with SippRegistrar(tmp_path / "ok", "ok") as provider, SippRegistrar(tmp_path / "no", "403") as refusing:
        main = add_line(registering, TITLE="Main trunk", SERVER=f"127.0.0.1:{provider.port}", LOGIN="trunk1")
        add_line(registering, TITLE="Backup trunk", SERVER=f"127.0.0.1:{refusing.port}", LOGIN="trunk2")
        office = add_line(registering, TYPE="office", TITLE="Office PBX")
        cli(registering.data_dir, "app", "create", "--name", "CRM connector")
        events = httpx.post(registering.webhook + "event.bind", timeout=10,
                            json={"event": "OnSiplineRegistrationChange", "handler": "", "event_type": "offline"})
        assert events.status_code == 200, events.text
        browser.get(f"{base}/ui/")
        shoot(browser, f"{base}/ui/", "Sign in", into, "signed-out")
        browser.get(dashboard_link(registering))
        wait_for(browser, f"#line-{main['ID']} .status.ok", timeout=10)
        wait_for(browser, "#line-rows .status.bad", timeout=15)
        shoot(browser, f"{base}/ui/", "SIP lines", into, "lines")
        shoot(browser, f"{base}/ui/lines/{main['ID']}", "Main trunk", into, "line-cloud")
        shoot(browser, f"{base}/ui/lines/{office['ID']}", "Office PBX", into, "line-office")
        shoot(browser, f"{base}/ui/providers", "Providers", into, "providers")
        shoot(browser, f"{base}/ui/events", "Events", into, "events")
        shoot(browser, f"{base}/ui/webhooks", "Webhooks", into, "webhooks")
        shoot(browser, f"{base}/ui/apps", "Applications", into, "apps")
        shoot(browser, f"{base}/ui/portals", "Portals", into, "portals")
    shots = sorted(path.name for path in into.glob("*.png"))
    assert len(shots) == 18 and all((into / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in shots)
