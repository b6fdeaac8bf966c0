"""Accessibility in a real browser: axe-core (bundled by axe-playwright-python) finds no violation on
any screen, at desktop width and at 390 px, and every control can be reached and used from the keyboard."""
from __future__ import annotations

import pytest

from tests.support.screens import seed_every_screen
from tests.support.web import PASSWORD
from tests.test_browser import EMAIL, LAPTOP, PHONE, browser, page, server  # noqa: F401 - shared fixtures

pytestmark = [pytest.mark.browser, pytest.mark.db, pytest.mark.slow]

# What axe checks: the WCAG 2.x A and AA rules and its best practices.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                                     "best-practice"]}}


def axe_violations(page) -> list[str]:  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_OPTIONS)
    return [f"{v['id']} ({v['impact']}): {v['help']} -- " + "; ".join(n["html"][:120] for n in v["nodes"][:3])
            for v in results.response["violations"]]


def log_in(page, server, email=EMAIL):  # noqa: F811
    page.goto(server.url + "/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(lambda url: "/login" not in url)


def test_every_screen_passes_axe_at_desktop_width_and_on_a_phone(page, server):  # noqa: F811
    seeded = seed_every_screen()
    found = {}
    page.goto(server.url + "/login")
    found["login"] = axe_violations(page)
    page.fill("#email", EMAIL)
    page.click("button:has-text('Log in')")  # no password: the form shows its errors
    found["login refused"] = axe_violations(page)
    log_in(page, server)
    for viewport in (LAPTOP, PHONE):
        page.set_viewport_size(viewport)
        for name, path in seeded.pages().items():
            page.goto(server.url + path)
            found[f"{name} at {viewport['width']} px"] = axe_violations(page)
    page.set_viewport_size(LAPTOP)
    page.goto(server.url + f"/settings/{seeded.endpoint}")
    for auth_type, shows in (("basic", "username"), ("aws", "region"), ("aws-s3", "filename_format"),
                             ("hmac", "signing_secret")):
        page.select_option("#auth_type", auth_type)
        page.wait_for_selector(f"#auth-fields label[for={shows}]")
        found[f"settings with {auth_type}"] = axe_violations(page)
    page.fill("#url", "not a url")
    page.click("button:has-text('Save')")
    page.wait_for_selector(".field-error")
    found["settings refused"] = axe_violations(page)
    page.goto(server.url + "/operators")
    page.click("button:has-text('Add operator')")
    page.wait_for_selector(".field-error")
    found["add operator refused"] = axe_violations(page)
    assert {name: problems for name, problems in found.items() if problems} == {}
    # The only console lines: Chromium noting the 422s that carried the refused forms back.
    assert [p for p in page.problems if "status of 422" not in p] == []


def test_axe_finds_what_it_should(page, server):  # noqa: F811
    """The check above is only worth something if axe runs and reports: break a page on purpose."""
    page.goto(server.url + "/login")
    page.evaluate("""() => {
        document.querySelector('label[for=email]').remove();
        document.querySelector('.login').insertAdjacentHTML('beforeend', '<p class="muted">faint</p>');
        document.querySelector('.login .muted:last-child').style.color = '#eee';
    }""")
    found = " ".join(axe_violations(page))
    assert "label" in found and "color-contrast" in found, found


TABBABLE = ("a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), "
            "textarea:not([disabled]), [tabindex]:not([tabindex='-1'])")
# The same words for an element whichever way it was found (an htmx poll may have swapped it in since).
DESCRIBE = """el => el === document.body || !el ? "(body)" : [el.tagName.toLowerCase(), el.id,
    el.parentElement && el.parentElement.closest("[id]") ? el.parentElement.closest("[id]").id : "", el.name || "",
    el.getAttribute("href") || "", el.type || "", (el.innerText || el.value || "").trim().slice(0, 40)].join("|")"""
# One stop per radio group: Tab enters the group at its checked radio, the arrow keys move within it.
ONE_PER_RADIO_GROUP = """el => el.type !== "radio" || el.checked
    || !document.querySelector(`input[type=radio][name="${el.name}"]:checked`)"""


def tab_through(page) -> tuple[list[str], list[str], list[str]]:  # noqa: F811
    """Press Tab from the top of the page until focus comes round again. Returns the controls on the page
    that a keyboard should reach, the ones it reached in order, and any reached without a visible focus mark."""
    expected = page.evaluate(f"""() => Array.from(document.querySelectorAll({TABBABLE!r}))
        .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== "hidden")
        .filter({ONE_PER_RADIO_GROUP}).map({DESCRIBE})""")
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    reached, unmarked = [], []
    for _ in range(4 * len(expected) + 5):  # a date input takes a Tab per part (year, month, day)
        page.keyboard.press("Tab")
        here = page.evaluate(f"() => ({DESCRIBE})(document.activeElement)")
        if reached and here == reached[0]:
            break  # round again
        if here in reached:
            continue
        reached.append(here)
        marked = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none"; }""")
        if not marked and here != "(body)":
            unmarked.append(here)
    return expected, [r for r in reached if r != "(body)"], unmarked


def test_every_control_is_reached_by_tab_with_a_visible_focus_mark(page, server):  # noqa: F811
    seeded = seed_every_screen()
    log_in(page, server)
    missed, unmarked = {}, {}
    for name, path in seeded.pages().items():
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        expected, reached, no_mark = tab_through(page)
        assert expected, name
        if set(expected) - set(reached):
            missed[name] = sorted(set(expected) - set(reached))
        if no_mark:
            unmarked[name] = no_mark
    assert missed == {} and unmarked == {}


def test_the_screens_work_from_the_keyboard_alone(page, server):  # noqa: F811
    seeded = seed_every_screen()
    page.goto(server.url + "/login")
    page.keyboard.type(EMAIL)  # the e-mail field has the focus when the page opens
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)

    # The log: type a filter and press Enter; open a message with Enter on its View link.
    page.goto(server.url + "/log")
    page.focus("input[name=customer]")
    page.keyboard.type("customer-0")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "customer=customer-0" in url)
    page.wait_for_function("document.querySelectorAll('#log-results tbody tr').length === 1")
    page.focus(f"#message-{seeded.failed} a")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + f"/log/{seeded.failed}")

    # Resend with the space bar on the focused button.
    page.focus("button:has-text('Resend')")
    page.keyboard.press(" ")
    page.wait_for_selector("text=queued again as")

    # Settings: change the authentication type with the arrow keys; tick a checkbox with space.
    page.goto(server.url + f"/settings/{seeded.endpoint}")
    page.focus("#auth_type")
    page.keyboard.press("ArrowDown")  # None -> Basic
    page.wait_for_selector("#auth-fields label[for=username]")
    page.focus("#use_proxy")
    checked = page.is_checked("#use_proxy")
    page.keyboard.press(" ")
    assert page.is_checked("#use_proxy") != checked

    # Operators: add one, typing and pressing Enter.
    page.goto(server.url + "/operators")
    page.focus("#email")
    page.keyboard.type("keyboard@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type("typed by keys only")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Operator keyboard@example.com added")

    # Log out with Enter on the focused button.
    page.focus("button:has-text('Log out')")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" in url)
    assert page.problems == []
