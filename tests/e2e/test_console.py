"""The web console (``/console/``) in a real browser against the local stack: headless Chromium from
Debian's packages, driven by Playwright. What a person does in the console is checked through the public
REST API, and what the API holds is checked on the page.

``CONSOLE_SCREENSHOT=docs/console.png`` makes the desktop test also write the README's screenshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from chalicelib.transport.rest_console import CONTENT_SECURITY_POLICY, FILES, FOLDER
from infra.local.processes import free_port
from tests.e2e.browser import launched
from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
expect.set_options(timeout=15_000)
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 320, "height": 640}
# fails for good at once: no delay between the retries but the backoff phase's one of 5 s
QUICK_FAILURE = {"retries_with_no_delay": 0, "minimum_delay_retries": 0, "minimum_delay": 0, "maximum_delay": 10,
                 "maximum_delay_retries": 0}


class Rest:
    def __init__(self, base: str, project: str, **headers: str) -> None:
        self.base = base
        self.headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project, **headers}

    def __call__(self, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
        return requests.request(method, self.base + path, headers={**self.headers, **headers}, json=body, timeout=10)

    def total(self, queue: str) -> int:
        return int(self("GET", f"/v2/queues/{queue}/stats").json()["messages"]["total"])

    def post(self, queue: str, *bodies: Any) -> list[str]:
        reply = self("POST", f"/v2/queues/{queue}/messages", {"messages": [{"body": b} for b in bodies]})
        assert reply.status_code == 201, reply.text
        return [href.rsplit("/", 1)[1] for href in reply.json()["resources"]]


@pytest.fixture
def rest(stack: Stack, project: str) -> Rest:
    return Rest(stack.http, project)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as found:
        yield found


class Watched:
    """A page whose uncaught script errors and Content-Security-Policy refusals fail the test."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        page.on("console", lambda message: self.problems.append(f"console: {message.text}")
                if "Content Security Policy" in message.text or message.type == "assert" else None)


def _watched(browser: Browser, viewport: dict[str, int]) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    watched = Watched(page)
    try:
        yield page
    finally:
        context.close()
    assert not watched.problems, "\n".join(watched.problems)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from _watched(browser, DESKTOP)


@pytest.fixture
def narrow(browser: Browser) -> Iterator[Page]:
    yield from _watched(browser, NARROW)


def _open(page: Page, stack: Stack, project: str, route: str = "") -> None:
    page.goto(f"{stack.http}/console/?project={project}{route}")


def _row(page: Page, queue: str) -> Any:
    return page.locator(f'tr[data-queue="{queue}"]')


def _fits(page: Page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide in a {width} px viewport"


# -- the files --------------------------------------------------------------------------------


def test_every_file_of_the_console_folder_is_allow_listed_and_nothing_else() -> None:
    assert sorted(p.name for p in FOLDER.iterdir() if p.is_file()) == sorted(FILES)


def test_the_console_is_served_as_static_files_with_their_types_and_a_strict_policy(stack: Stack) -> None:
    page = requests.get(f"{stack.http}/console/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert 'src="console.js"' in page.text and "http" not in page.text.split("<body>")[0]  # nothing from elsewhere
    for name, content_type in FILES.items():
        reply = requests.get(f"{stack.http}/console/{name}", timeout=10)
        assert (reply.status_code, reply.headers["Content-Type"]) == (200, content_type), name
        assert reply.text == (FOLDER / name).read_text()
        again = requests.get(f"{stack.http}/console/{name}", headers={"If-None-Match": reply.headers["ETag"]}, timeout=10)
        assert (again.status_code, again.content) == (304, b""), name
    for name in FILES:
        if name.endswith(".js"):
            text = (FOLDER / name).read_text()
            assert not re.search(r"https?://(?!example\.com)", text.replace("http://www.w3.org/2000/svg", "")), name
            assert "innerHTML" not in text and "eval(" not in text, name


def test_only_the_allow_listed_names_are_served(stack: Stack) -> None:
    for target in ["/console/app.py", "/console/..%2fapp.py", "/console/%2e%2e", "/console/..%2F..%2Fetc%2Fpasswd",
                   "/console/index.html%00.js", "/console/INDEX.HTML", "/console/rest_console.py",
                   "/console/sub/index.html"]:
        reply = requests.get(stack.http + target, timeout=10)
        assert reply.status_code in (400, 404), target  # a NUL is refused before any lookup
        assert set(reply.json()) == {"title", "description"}, target


def test_the_bare_path_redirects_below_itself_keeping_the_query(stack: Stack) -> None:
    reply = requests.get(f"{stack.http}/console?project=demo&x=1", allow_redirects=False, timeout=10)
    assert reply.status_code == 302 and reply.headers["Location"] == "console/index.html?project=demo&x=1"
    followed = requests.get(f"{stack.http}/console?project=demo", timeout=10)
    assert followed.url.endswith("/console/index.html?project=demo") and "<title>Zaqar console" in followed.text


# -- signing in, the queues -------------------------------------------------------------------


def test_signing_in_shows_a_queue_created_through_the_api_with_its_counts(
        page: Page, stack: Stack, project: str, rest: Rest) -> None:
    assert rest("PUT", "/v2/queues/orders").status_code == 201
    rest.post("orders", {"n": 1}, {"n": 2}, {"n": 3})
    assert rest("POST", "/v2/queues/orders/claims?limit=1", {"ttl": 120, "grace": 60}).status_code == 201
    page.goto(f"{stack.http}/console/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Project", exact=True).fill(project)
    page.get_by_role("button", name="Sign in").click()
    row = _row(page, "orders")
    expect(row.locator("td.free")).to_have_text("2")
    expect(row.locator("td.claimed")).to_have_text("1")
    expect(row.locator("td.total")).to_have_text("3")
    expect(row.locator("td.oldest")).to_have_text(re.compile(r"^\d+ s$"))
    expect(page.locator("#identity")).to_have_text(f"Project {project}")
    expect(page.locator("#live")).to_contain_text("Live")
    page.reload()  # the session keeps the sign-in
    expect(_row(page, "orders").locator("td.total")).to_have_text("3")


def test_counts_follow_the_api_live(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest.post("live", "a")
    _open(page, stack, project)
    total = _row(page, "live").locator("td.total")
    expect(total).to_have_text("1")
    rest.post("live", "b", "c")
    expect(total).to_have_text("3")  # no reload: the page polls
    samples = page.locator('tr[data-queue="live"] svg.spark')
    expect(samples).to_have_attribute("aria-label", re.compile(r"from 1 to 3, now 3"))


def test_a_message_posted_from_the_console_changes_the_count(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest("PUT", "/v2/queues/inbox")
    _open(page, stack, project, "#/queues/inbox/messages")
    expect(page.locator(".counts .total")).to_have_text("0")
    page.get_by_label("Body (JSON)").fill('{"order": 42, "items": ["tea"]}')
    page.get_by_label("TTL (s)").fill("120")
    page.get_by_label("Attributes (JSON object, optional)").fill('{"color": "blue", "size": 3}')
    page.get_by_role("button", name="Post message").click()
    expect(page.locator("#notice")).to_contain_text("Posted message")
    expect(page.locator(".counts .total")).to_have_text("1")
    (listed,) = rest("GET", "/v2/queues/inbox/messages?echo=true").json()["messages"]
    assert listed["body"] == {"order": 42, "items": ["tea"]} and listed["attributes"] == {"color": "blue", "size": 3}
    assert listed["ttl"] == 120
    row = page.locator(f'tr[data-message="{listed["id"]}"]')
    expect(row).to_contain_text("color = blue")
    page.get_by_role("link", name="Queues", exact=True).first.click()
    expect(_row(page, "inbox").locator("td.total")).to_have_text("1")


def test_create_purge_and_delete_ask_first(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    _open(page, stack, project)
    page.get_by_label("New queue").fill("made-here")
    page.get_by_role("button", name="Create queue").click()
    expect(_row(page, "made-here")).to_be_visible()
    assert [q["name"] for q in rest("GET", "/v2/queues").json()["queues"]] == ["made-here"]
    rest.post("made-here", 1, 2)
    expect(_row(page, "made-here").locator("td.total")).to_have_text("2")
    _row(page, "made-here").get_by_role("button", name="Purge").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert rest.total("made-here") == 2
    _row(page, "made-here").get_by_role("button", name="Purge").click()
    page.get_by_role("dialog").get_by_role("button", name="Purge").click()
    expect(_row(page, "made-here").locator("td.total")).to_have_text("0")
    assert rest.total("made-here") == 0
    _row(page, "made-here").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("dialog")).to_contain_text("cannot be undone")
    page.get_by_role("dialog").get_by_role("button", name="Delete queue").click()
    expect(_row(page, "made-here")).to_have_count(0)
    assert rest("GET", "/v2/queues").json()["queues"] == []


def test_errors_from_the_api_show_as_their_title_and_description(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    expected = rest("PUT", "/v2/queues/not%20a%20name").json()
    _open(page, stack, project)
    expect(page.locator("#live")).to_contain_text("Live")
    page.get_by_label("New queue").fill("not a name")
    page.get_by_role("button", name="Create queue").click()
    alert = page.get_by_role("alert")
    expect(alert.locator("#alert-title")).to_have_text(expected["title"])
    expect(alert.locator("#alert-description")).to_have_text(expected["description"])
    alert.get_by_role("button", name="Dismiss the error").click()
    expect(alert).to_be_hidden()


def test_live_updates_back_off_while_the_service_does_not_answer(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest.post("steady", "x")
    _open(page, stack, project)
    expect(_row(page, "steady").locator("td.total")).to_have_text("1")
    listing = re.compile(r"/v2/queues\?")
    page.route(listing, lambda route: route.abort())
    live = page.locator("#live")
    expect(live).to_have_text(re.compile(r"Network error · retrying in \d+ s"))
    first = int(re.findall(r"\d+", live.inner_text())[0])
    expect(live).not_to_have_text(f"Network error · retrying in {first} s", timeout=20_000)
    second = int(re.findall(r"\d+", live.inner_text())[0])
    assert 5 <= first <= 8 and 10 <= second <= 15, (first, second)  # 3 s doubled, then doubled again (±20%)
    page.unroute(listing)
    expect(live).to_have_text(re.compile(r"^Live · updated"), timeout=25_000)
    expect(page.get_by_role("alert")).to_be_hidden()  # a network error is the status line's, not an API error


# -- messages ---------------------------------------------------------------------------------


def test_peeking_claimed_messages_shows_their_claims_and_pretty_bodies(
        page: Page, stack: Stack, project: str, rest: Rest) -> None:
    claimed_id, free_id = rest.post("peek", {"a": [1, 2]}, "free")
    claim = rest("POST", "/v2/queues/peek/claims?limit=1", {"ttl": 300, "grace": 60})
    assert claim.json()["messages"][0]["id"] == claimed_id  # oldest first
    claim_id = claim.headers["Location"].rsplit("/", 1)[1]
    delayed = rest("POST", "/v2/queues/peek/messages", {"messages": [{"body": "later", "delay": 600}]}).json()
    delayed_id = delayed["resources"][0].rsplit("/", 1)[1]
    _open(page, stack, project, "#/queues/peek/messages")
    rows = page.locator("tr[data-message]")
    expect(rows).to_have_count(1)
    expect(page.locator(f'tr[data-message="{free_id}"]')).to_be_visible()
    page.get_by_label("Include delayed").check()
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-message="{delayed_id}"]')).to_be_visible()
    page.get_by_label("Include delayed").uncheck()
    page.get_by_label("Include claimed").check()
    expect(rows).to_have_count(2)
    held = page.locator(f'tr[data-message="{claimed_id}"]')
    expect(held.locator(".claim")).to_have_text(re.compile(rf"^{claim_id[:8]}… · expires in [45] min$"))  # ttl 300
    held.get_by_role("button", name="Show body").click()
    expect(held.locator("pre.body")).to_have_text(json.dumps({"a": [1, 2]}, indent=2))
    held.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("dialog")).to_contain_text(claim_id)
    page.get_by_role("dialog").get_by_role("button", name="Delete message").click()
    expect(rows).to_have_count(1)
    assert rest("GET", f"/v2/queues/peek/messages/{claimed_id}").status_code == 404


def test_one_message_is_shown_whole_and_can_be_deleted(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    reply = rest("POST", "/v2/queues/single/messages",
                 {"messages": [{"body": {"deep": {"x": "y"}}, "ttl": 600, "attributes": {"kind": "test"}}]})
    mid = reply.json()["resources"][0].rsplit("/", 1)[1]
    _open(page, stack, project, f"#/queues/single/messages/{mid}")
    expect(page.locator("pre.body")).to_have_text(json.dumps({"deep": {"x": "y"}}, indent=2))
    expect(page.locator("ul.attributes")).to_have_text("kind = test")
    page.get_by_role("button", name="Delete message").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete message").click()
    expect(page).to_have_url(re.compile(r"#/queues/single/messages$"))
    assert rest("GET", f"/v2/queues/single/messages/{mid}").status_code == 404


# -- subscriptions, metadata ------------------------------------------------------------------


def test_subscriptions_are_listed_created_deleted_and_show_their_secret(
        page: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest("PUT", "/v2/queues/hooks")
    _open(page, stack, project, "#/queues/hooks/subscriptions")
    expect(page.get_by_text("No subscriptions.")).to_be_visible()
    hook = f"http://127.0.0.1:{free_port()}/hook"
    page.get_by_label("Subscriber").fill(hook)
    page.get_by_label("Options (JSON object, optional)").fill('{"include_message_id": true}')
    page.get_by_role("button", name="Subscribe").click()
    rows = page.locator("tr[data-subscription]")
    expect(rows).to_have_count(1)
    page.get_by_label("Kind").select_option("mailto")
    page.get_by_label("Subscriber").fill(f"{project}@example.test")
    page.get_by_role("button", name="Subscribe").click()
    expect(rows).to_have_count(2)
    listed = {s["subscriber"]: s for s in rest("GET", "/v2/queues/hooks/subscriptions").json()["subscriptions"]}
    assert set(listed) == {hook, f"mailto:{project}@example.test"}
    assert listed[hook]["options"] == {"include_message_id": True}
    webhook = page.locator(f'tr[data-subscription="{listed[hook]["id"]}"]')
    expect(webhook).to_contain_text("not confirmed")
    webhook.get_by_role("button", name="Show secret").click()
    secret = rest("GET", f"/v2/queues/hooks/subscriptions/{listed[hook]['id']}").json()["signing_secret"]
    expect(webhook.locator(".secret code")).to_have_text(secret)
    webhook.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete subscription").click()
    expect(rows).to_have_count(1)
    assert [s["subscriber"] for s in rest("GET", "/v2/queues/hooks/subscriptions").json()["subscriptions"]] == [
        f"mailto:{project}@example.test"]


def test_the_reserved_settings_and_other_metadata_are_edited(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest("PUT", "/v2/queues/tuned", {"owner": "ops", "_max_claim_count": 5})
    _open(page, stack, project, "#/queues/tuned/metadata")
    expect(page.get_by_label("Claims before dead-lettering")).to_have_value("5")
    expect(page.get_by_label("Default message TTL (s)")).to_have_value("3600")
    page.get_by_label("Default message TTL (s)").fill("600")
    page.get_by_label("Claims before dead-lettering").fill("")
    page.get_by_label("Dead-letter queue", exact=True).fill("tuned-dlq")
    page.get_by_label("Keys not starting with _ (JSON object)").fill('{"team": "blue"}')
    page.get_by_role("button", name="Save metadata").click()
    expect(page.locator("#notice")).to_contain_text("Saved the metadata of tuned")
    metadata = rest("GET", "/v2/queues/tuned").json()
    assert metadata["_default_message_ttl"] == 600 and metadata["_dead_letter_queue"] == "tuned-dlq"
    assert metadata["_max_claim_count"] is None  # emptied: back to its default
    assert metadata["team"] == "blue" and "owner" not in metadata
    page.get_by_label("Default message TTL (s)").fill("30")  # below the minimum: the API says why
    page.get_by_role("button", name="Save metadata").click()
    expect(page.locator("#alert-description")).to_contain_text("_default_message_ttl")
    assert rest("GET", "/v2/queues/tuned").json()["_default_message_ttl"] == 600


# -- failed deliveries, dead letters ----------------------------------------------------------


def test_a_failed_delivery_appears_with_its_subscriber_attempts_and_error(
        page: Page, stack: Stack, project: str, rest: Rest) -> None:
    hook = f"http://127.0.0.1:{free_port()}/nobody-listens"
    made = rest("POST", "/v2/queues/notify/subscriptions", {"subscriber": hook, "options": {"_retry_policy": QUICK_FAILURE}})
    assert made.status_code == 201, made.text
    _open(page, stack, project, "#/failed")
    expect(page.get_by_text("No failed deliveries.")).to_be_visible()
    (mid,) = rest.post("notify", {"to": "nobody"})
    row = page.locator(f'tr[data-message-id="{mid}"]')
    expect(row).to_be_visible(timeout=60_000)
    (record,) = [m["body"] for m in rest("GET", "/v2/queues/failed-notifications/messages?echo=true").json()["messages"]]
    cells = row.locator("td")
    expect(cells.nth(1)).to_have_text(hook)
    expect(cells.nth(2)).to_have_text("notify")
    expect(cells.nth(5)).to_have_text(str(record["attempts"]))
    expect(cells.nth(6)).to_have_text(record["error"])
    assert "refused" in record["error"].lower()
    row.get_by_role("link", name=re.compile(mid[:8])).click()
    expect(page.locator("pre.body")).to_have_text(json.dumps({"to": "nobody"}, indent=2))
    page.get_by_role("link", name="Failed deliveries").click()
    page.locator(f'tr[data-message-id="{mid}"]').get_by_role("button", name="Dismiss").click()
    page.get_by_role("dialog").get_by_role("button", name="Dismiss").click()
    expect(page.get_by_text("No failed deliveries.")).to_be_visible()
    assert rest("GET", "/v2/queues/failed-notifications/messages?echo=true").json()["messages"] == []


def test_dead_letter_queues_are_marked_and_redriven(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest("PUT", "/v2/queues/work", {"_dead_letter_queue": "work-dlq", "_max_claim_count": 1})
    rest.post("work", "poison")
    first = rest("POST", "/v2/queues/work/claims?limit=5", {"ttl": 60, "grace": 60})
    assert rest("DELETE", first.headers["Location"]).status_code == 204  # released: claimed once
    assert rest("POST", "/v2/queues/work/claims?limit=5", {"ttl": 60, "grace": 60}).status_code == 204
    assert rest.total("work-dlq") == 1 and rest.total("work") == 0
    _open(page, stack, project)
    expect(_row(page, "work-dlq").locator(".badge.dlq")).to_have_text("dead-letter queue")
    expect(_row(page, "work")).to_contain_text("dead letters → work-dlq")
    page.get_by_role("link", name="Failed deliveries").click()
    letters = page.locator('tr[data-dlq="work-dlq"]')
    expect(letters).to_contain_text("work")
    expect(letters.locator("td").nth(2)).to_have_text("1")
    letters.get_by_role("button", name="Redrive").click()
    page.get_by_role("dialog").get_by_role("button", name="Redrive").click()
    expect(page.locator("#notice")).to_have_text("Moved 1 message out of work-dlq.")
    expect(letters.locator("td").nth(2)).to_have_text("0")
    assert rest.total("work") == 1 and rest.total("work-dlq") == 0


# -- other ways in ----------------------------------------------------------------------------


def test_a_pre_signed_url_opens_the_queues_it_covers(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest.post("shared", "visible")
    rest.post("private", "hidden")
    share = rest("POST", "/v2/queues/shared/share", {"paths": ["messages"], "methods": ["GET", "POST"]}).json()
    query = urlencode({**share, "paths": ",".join(share["paths"]), "methods": ",".join(share["methods"])})
    page.goto(f"{stack.http}/console/?{query}")
    expect(page.locator("#identity")).to_contain_text(f"Pre-signed URL, project {project}")
    expect(page.locator("tr[data-queue]")).to_have_count(1)
    expect(_row(page, "shared").locator("td.total")).to_have_text("—")  # stats are not covered
    _row(page, "shared").get_by_role("link", name="shared").click()
    expect(page.locator("tr[data-message]")).to_have_count(1)
    expect(page.locator("tr[data-message] .preview")).to_have_text("visible")
    page.get_by_label("Body (JSON)").fill('"from a signed link"')
    page.get_by_role("button", name="Post message").click()
    expect(page.locator("tr[data-message]")).to_have_count(2)
    assert rest.total("shared") == 2 and rest.total("private") == 1


def test_a_pasted_pre_signed_url_signs_in(page: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest.post("pasted", "seen")
    share = rest("POST", "/v2/queues/pasted/share", {"paths": ["messages"], "methods": ["GET"]}).json()
    page.goto(f"{stack.http}/console/")
    page.get_by_label("Pre-signed", exact=True).check()
    page.get_by_label("Pre-signed URL (JSON)").fill(json.dumps(share))
    page.get_by_role("button", name="Sign in").click()
    _row(page, "pasted").get_by_role("link", name="pasted").click()
    expect(page.locator("tr[data-message] .preview")).to_have_text("seen")
    expect(page.get_by_role("button", name="Post message")).to_have_count(0)  # POST is not signed


@pytest.mark.keystone
def test_a_keystone_token_signs_in(page: Page, keystone_stack: Stack, keystone: Any, redis_url: str) -> None:
    from tests.conftest import _delete_project_keys

    alpha = keystone.projects["alpha"]
    token = keystone.token("alice", "alpha")
    rest = Rest(keystone_stack.http, alpha, **{"X-Auth-Token": token})
    try:
        rest.post("ks-console", "via keystone")
        page.goto(f"{keystone_stack.http}/console/?project=alpha")  # noauth sign-in: refused, so the token is asked
        expect(page.locator("#alert-description")).to_contain_text("X-Auth-Token")
        page.get_by_role("button", name="Sign out").click()
        page.get_by_label("Project", exact=True).fill("alpha")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#alert-description")).to_contain_text("X-Auth-Token")
        expect(page.get_by_label("Keystone token")).to_be_visible()  # the form switched to what the service wants
        page.get_by_label("Keystone token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#identity")).to_have_text("Keystone token")
        expect(_row(page, "ks-console").locator("td.total")).to_have_text("1")
    finally:
        _delete_project_keys(redis_url, alpha)


# -- layouts and keyboard ---------------------------------------------------------------------


def test_the_console_works_at_320_pixels(narrow: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest("PUT", "/v2/queues/a-rather-long-queue-name-for-a-small-screen", {"_dead_letter_queue": "small-dlq"})
    rest.post("small-dlq", {"long": "x" * 300})
    _open(narrow, stack, project)
    row = _row(narrow, "small-dlq")
    expect(row.locator("td.total")).to_have_text("1")
    label = row.locator("td.total").evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label == '"Total"'  # the narrow layout: each value beside its column's name
    _fits(narrow, 320)
    row.get_by_role("link", name="small-dlq").click()
    expect(narrow.locator("tr[data-message]")).to_have_count(1)
    narrow.locator("tr[data-message]").get_by_role("button", name="Show body").click()
    _fits(narrow, 320)
    narrow.get_by_label("Body (JSON)").fill("[1, 2, 3]")
    narrow.get_by_role("button", name="Post message").click()
    expect(narrow.locator(".counts .total")).to_have_text("2")
    for route in ("#/queues/small-dlq/subscriptions", "#/queues/small-dlq/metadata", "#/failed"):
        narrow.goto(f"{stack.http}/console/?project={project}{route}")
        expect(narrow.locator("h1")).to_be_visible()
        narrow.wait_for_timeout(300)
        _fits(narrow, 320)


def test_the_keyboard_alone_signs_in_opens_a_queue_and_answers_a_dialog(
        page: Page, stack: Stack, project: str, rest: Rest) -> None:
    rest.post("by-keys", "k")
    page.goto(f"{stack.http}/console/")
    expect(page.get_by_label("Project", exact=True)).to_be_focused()
    page.keyboard.type(project)
    page.keyboard.press("Enter")
    expect(_row(page, "by-keys")).to_be_visible()

    def tab_to(name: str, key: str = "Tab") -> None:
        for _ in range(40):
            page.keyboard.press(key)
            if page.evaluate("document.activeElement.textContent.trim()") == name:
                return
        raise AssertionError(f"{name!r} cannot be reached with Tab")

    tab_to("Delete")
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_role("dialog").get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice first
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert rest.total("by-keys") == 1
    expect(page.get_by_role("button", name="Delete")).to_be_focused()  # back where it was
    tab_to("by-keys", "Shift+Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/queues/by-keys/messages$"))
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    expect(page.locator(".counts .total")).to_have_text("1")


def test_the_queues_page_at_desktop_width(page: Page, stack: Stack, project: str, rest: Rest, tmp_path: Path) -> None:
    """Also the README's screenshot: CONSOLE_SCREENSHOT=docs/console.png writes it there."""
    rest("PUT", "/v2/queues/orders", {"_dead_letter_queue": "orders-dlq", "_max_claim_count": 3})
    rest("PUT", "/v2/queues/invoices")
    rest("PUT", "/v2/queues/orders-dlq")
    _open(page, stack, project)
    posted = 0
    for n in range(6):  # depth changing over a few polls: the sparklines have a shape
        rest.post("orders", *range(n + 2))
        posted += n + 2
        rest.post("invoices", n)
        if n == 3:
            rest("POST", "/v2/queues/orders/claims?limit=4", {"ttl": 300, "grace": 60})
        expect(_row(page, "orders").locator("td.total")).to_have_text(str(posted))  # one poll at least
    rest.post("orders-dlq", "poison")
    expect(_row(page, "orders-dlq").locator("td.total")).to_have_text("1")
    expect(_row(page, "orders").locator("td.claimed")).to_have_text("4")
    shot = tmp_path / "console.png"
    box = page.locator("main").bounding_box()
    assert box is not None
    bottom = min(DESKTOP["height"], int(box["y"] + box["height"]) + 16)  # the page's content, not the empty rest
    page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": DESKTOP["width"], "height": bottom})
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])  # the PNG's IHDR
    assert width == DESKTOP["width"] and 300 < height <= DESKTOP["height"]
    target = os.environ.get("CONSOLE_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
