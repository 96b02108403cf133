"""Every page as every role, at iPad size: the checks a nurse's eye makes, made by a machine.
A page fails on a control smaller than 44×44 px, text that is a raw code or developer English,
a UTC timestamp, a page-level horizontal scroll, or a link that leads this role to a 403."""
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import deque

import pytest
from selenium.webdriver.common.by import By

from conftest import make_driver
from rounds_process import Rounds, Session, send_hl7
from test_sign_in import sign_in

ROLES = ["wang.fang", "li.ming", "zhang.li", "zhu.lin", "ma.jun", "qian.li", "hu.bin", "admin"]
PAGES_PER_ROLE = 18
SKIP = re.compile(r"^/(logout|locale|api/|attachments/)|\.(csv|ics|hl7)$|/raw$|/export|/calendar-feed")
RAW_CODES = re.compile(
    r"\b(open|acknowledged|closed|pending|sent|dead|active|discharged|cancelled|archived|attending|ward_rule|"
    r"escalation|overdue|daily_at|every_hours|accepted|rejected|duplicate|success|denied|failure|head_nurse|"
    r"medical_affairs|quality_control|true|false|null|nil|HH|LL|AA|"
    r"(?:alert|patient|chat|auth|hl7|staff|token|audit|care_plan|assessment)\.[a-z_.]+)\b")
# A time shown in UTC: ISO 8601 with a T, or a clock time marked Z, UTC or GMT.
UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|\d{1,2}:\d{2}(:\d{2})?\s*(Z|UTC|GMT)\b")

CHECK_PAGE = """
const problems = [];
const seen = new Set();
for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')) {
  const style = getComputedStyle(el);
  if (style.display === 'none' || style.visibility === 'hidden') continue;
  let target = el;
  if ((el.type === 'checkbox' || el.type === 'radio') && el.closest('label')) target = el.closest('label');
  const r = target.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.height < 43.5 || r.width < 43.5) {
    const name = (el.innerText || el.value || el.name || el.getAttribute('href') || el.tagName).trim().slice(0, 30);
    const key = el.tagName + ':' + name;
    if (!seen.has(key)) { seen.add(key); problems.push('small ' + el.tagName.toLowerCase() + ' "' + name + '" ' + Math.round(r.width) + 'x' + Math.round(r.height)); }
  }
}
if (document.documentElement.scrollWidth > window.innerWidth + 1) problems.push('horizontal scroll: ' + document.documentElement.scrollWidth + ' > ' + window.innerWidth);
const main = document.querySelector('main').cloneNode(true);
main.querySelectorAll('pre, code, .raw, .verbatim, td.pos, script, .hl7-text').forEach(e => e.remove());
return [problems, main.innerText, Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))];
"""


@pytest.fixture(scope="module")
def rounds_server():
    rounds = Rounds().start()
    for name in ("adt_a01_utf8.hl7", "orm_o01_change.hl7", "oru_r01_critical_k.hl7"):
        send_hl7(rounds, name)
    group = [g for g in Session(rounds.base, "wang.fang").get("/api/v1/groups") if "MRN10001" in g["name"]][0]
    rounds.walk_from = ["/patients/" + group["patientId"], "/groups/" + group["id"]]
    yield rounds
    rounds.remove()


def status_of(session, path):
    request = urllib.request.Request(session.base + path, headers={"Accept": "text/html"})
    try:
        with session.opener.open(request) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("size", [(1024, 768), (768, 1024)], ids=["landscape", "portrait"])
@pytest.mark.parametrize("username", ROLES)
def test_every_page_reads_as_a_product(rounds_server, username, size):
    base = rounds_server.base
    session = Session(base, username)
    driver = make_driver(*size)
    failures, checked_links = [], {}
    try:
        sign_in(driver, base, username)
        queue, visited = deque([urllib.parse.urlparse(driver.current_url).path]), set()
        # A patient with orders, results and a critical value, where this role may see him.
        queue.extend(p for p in rounds_server.walk_from if status_of(session, p) == 200)
        while queue and len(visited) < PAGES_PER_ROLE:
            path = queue.popleft()
            if path in visited:
                continue
            visited.add(path)
            driver.get(base + path)
            problems, text, links = driver.execute_script(CHECK_PAGE)
            failures += ["%s %s" % (path, p) for p in problems]
            for match in set(RAW_CODES.findall(text)):
                failures.append("%s raw code: %s" % (path, match))
            for m in UTC.finditer(text):
                failures.append("%s UTC time: %s (…%s…)" % (path, m.group(0), text[max(0, m.start() - 40):m.end() + 20].replace("\n", " ")))
            for href in links:
                target = urllib.parse.urlparse(urllib.parse.urljoin(base + path, href))
                if target.netloc != urllib.parse.urlparse(base).netloc or SKIP.search(target.path):
                    continue
                if target.path not in checked_links:
                    checked_links[target.path] = status_of(session, target.path)
                    if checked_links[target.path] == 403:
                        failures.append("%s links to %s, a 403 for %s" % (path, target.path, username))
                # One of each kind of page is enough: ids collapse to one pattern.
                pattern = re.sub(r"/[0-9a-f]{8}-[0-9a-f-]{27,}", "/:id", target.path)
                if pattern not in {re.sub(r"/[0-9a-f]{8}-[0-9a-f-]{27,}", "/:id", v) for v in visited | set(queue)}:
                    queue.append(target.path)
    finally:
        driver.quit()
    assert not failures, "%d problems for %s:\n%s" % (len(failures), username, "\n".join(sorted(set(failures))[:80]))
