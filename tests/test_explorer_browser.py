"""The explorer page in a real browser: headless Chromium driven by selenium.

Every page is checked to log no console error and to make no network request. Stepping with →
through the backward pass of ``a*b + c`` and of the notes' BatchNorm-by-hand example, the
gradients shown at every step are the ones this test works out itself from the graph (its own
table of local derivatives, not the library's), and at the end each leaf shows the ``.grad``
that ``backward()`` gives. Screenshots of a few steps and the measured page size and
time-to-interactive go to out/test-artifacts/explorer/ (ignored by git).

Needs Debian's ``chromium`` and ``chromium-driver`` (no browser is ever downloaded), selenium
and Graphviz's ``dot``; skips cleanly without them. One browser serves the whole module.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_bn import Tensor, Value, manual_seed, nn
from tinygrad_bn.cli.graph import batchnorm_by_hand, placement_step
from tinygrad_bn.graph import topological_order
from tinygrad_bn.placement import build_model
from tinygrad_bn.viz import explore
from tinygrad_bn.viz.labels import summary

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="Debian's chromium and chromium-driver are not installed"),
    pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed"),
]
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "out" / "test-artifacts" / "explorer"

# What the page shows, read in one round trip: each box's "grad …" text, the caption's lines.
READ_PAGE = """
const grads = {};
for (const g of document.querySelectorAll('#graph g.node')) {
  const text = [...g.querySelectorAll('text')].find(t => t.textContent.startsWith('grad'));
  if (text) grads[g.querySelector('title').textContent] = text.textContent;
}
const sends = [...document.querySelectorAll('#caption .send')].map(d => (
  {to: d.dataset.to, value: d.dataset.value, total: d.dataset.total, text: d.textContent}));
return {grads: grads, sends: sends, counter: document.getElementById('counter').textContent,
        phase: document.getElementById('phase').textContent};
"""


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="explorer-chromium-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-sync", f"--user-data-dir={profile}",
                     "--window-size=1400,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(browser, path: Path) -> float:
    """Load a page; return the milliseconds until it was interactive (its script said so)."""
    browser.get_log("browser")
    browser.get_log("performance")  # forget what earlier pages logged
    browser.get(path.as_uri())
    WebDriverWait(browser, 10).until(
        lambda driver: driver.execute_script("return document.body.dataset.ready"))
    return float(browser.execute_script("return document.body.dataset.ready"))


def assert_quiet(browser, path: Path) -> None:
    """No console errors (a CSP violation would be one) and no request but the page itself."""
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    requested = []  # (the document asking, the address asked for)
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            requested.append((params.get("documentURL"), params["request"]["url"]))
    # The page loads itself and nothing else (the browser's own chrome:// pages may load
    # theirs), and nothing at all goes to the network.
    assert [url for document, url in requested if document == path.as_uri()] == [path.as_uri()]
    assert [url for _, url in requested if not url.startswith(("file:", "chrome:", "data:"))] \
        == []


def press(browser, key: str, times: int = 1) -> None:
    actions = ActionChains(browser)
    for _ in range(times):
        actions.send_keys(key)
    actions.perform()


def shown_number(text: str) -> float:
    """The number in "grad -0.3578" (the page writes − in captions, - in boxes)."""
    return float(text.split()[-1].replace("−", "-").strip("()"))


# --- the chain rule, worked out by the test ------------------------------------------------------

def local_derivative(node: Value, which: int) -> float:
    """∂node/∂parent from the op's name and the parents' data (the test's own table)."""
    a = node.parents[0].data
    b = node.parents[1].data if len(node.parents) == 2 else None
    if node.op == "+":
        return 1.0
    if node.op == "-":
        return 1.0 if which == 0 else -1.0
    if node.op == "*":
        return b if which == 0 else a
    if node.op == "/":
        return 1.0 / b if which == 0 else -a / b ** 2
    if node.op.startswith("**"):
        k = float(node.op[2:])
        return k * a ** (k - 1)
    if node.op == "sqrt":
        return 0.5 / math.sqrt(a)
    raise AssertionError(f"no rule for {node.op}")


def expected_backward(root: Value) -> list:
    """Per backward step: (node, [(parent index, contribution)], the gradients so far)."""
    order = topological_order(root)
    index = {node: i for i, node in enumerate(order)}
    grads = {index[root]: 1.0}
    steps = []
    for node in reversed(order):
        if not node.parents:
            continue
        sends = []
        for which, parent in enumerate(node.parents):
            contribution = local_derivative(node, which) * grads[index[node]]
            grads[index[parent]] = grads.get(index[parent], 0.0) + contribution
            sends.append((index[parent], contribution))
        steps.append((index[node], sends, dict(grads)))
    return steps


def walk_backward(browser, root: Value, name: str, shots: tuple = ()) -> None:
    """Step through the page's backward pass with →, checking every step against the test's."""
    order = topological_order(root)
    path = ARTIFACTS / f"{name}.html"
    explore(root).save(path)
    open_page(browser, path)
    press(browser, Keys.HOME)
    press(browser, Keys.ARROW_RIGHT, len(order) - 1)  # to the last forward step
    page = browser.execute_script(READ_PAGE)
    assert page["phase"] == "forward" and all(g == "grad" for g in page["grads"].values())
    expected = expected_backward(root)
    for number, (node, sends, grads) in enumerate(expected, start=1):
        press(browser, Keys.ARROW_RIGHT)
        page = browser.execute_script(READ_PAGE)
        assert page["phase"] == "backward"
        assert page["counter"] == f"{len(order) + number} / {len(order) + len(expected)}"
        # The caption: one line per contribution, with exactly the test's numbers.
        assert [int(s["to"]) for s in page["sends"]] == [parent for parent, _ in sends]
        for shown, (_, contribution) in zip(page["sends"], sends):
            assert float(shown["value"]) == pytest.approx(contribution, rel=1e-12, abs=1e-300)
        # Every box: the gradient accumulated so far, and none where backward has not been.
        for i in range(len(order)):
            text = page["grads"][f"v{i}"]
            if i in grads:
                assert shown_number(text) == pytest.approx(grads[i], rel=6e-4, abs=1e-12), \
                    (number, i, text)
            else:
                assert text == "grad", (number, i, text)
        if number in shots:
            browser.save_screenshot(str(ARTIFACTS / f"{name}-step-{len(order) + number}.png"))
    assert_quiet(browser, path)
    # At the end, each leaf shows what backward() computes.
    root.backward()
    for i, node in enumerate(order):
        if not node.parents:
            assert shown_number(page["grads"][f"v{i}"]) == pytest.approx(node.grad, rel=6e-4)


def test_a_times_b_plus_c_step_by_step(browser):
    a, b, c = Value(2.0, "a"), Value(-3.0, "b"), Value(10.0, "c")
    d = a * b + c
    d.label = "d"
    walk_backward(browser, d, "a-times-b-plus-c", shots=(2,))
    # The caption of the last step, in the words.
    caption = browser.find_element(By.ID, "caption").text
    assert "a.grad += ∂(a * b)/∂a · (a * b).grad = (−3) · 1 = (−3)" in caption


def test_batchnorm_by_hand_step_by_step(browser):
    walk_backward(browser, batchnorm_by_hand(), "batchnorm-by-hand", shots=(1, 40, 71))


def test_a_reused_node_visibly_receives_two_contributions(browser):
    a = Value(3.0, "a")
    b = a + a
    b.label = "b"
    c = b + b
    c.label = "c"
    path = ARTIFACTS / "reused.html"
    explore(c).save(path)
    open_page(browser, path)
    press(browser, Keys.END)
    page = browser.execute_script(READ_PAGE)
    assert [s["to"] for s in page["sends"]] == ["0", "0"]  # b sends to a twice
    assert [s["text"].split("→ ")[1] for s in page["sends"]] == ["a.grad = 2 so far",
                                                                 "a.grad = 4 so far"]
    assert page["grads"]["v0"] == "grad 4"
    assert_quiet(browser, path)


def test_controls_buttons_slider_home_and_end(browser):
    a, b = Value(2.0, "a"), Value(5.0, "b")
    path = ARTIFACTS / "controls.html"
    explore(a * b).save(path)  # 3 forward steps, 1 backward step
    open_page(browser, path)
    counter = browser.find_element(By.ID, "counter")
    assert counter.text == "1 / 4"
    press(browser, Keys.END)
    assert counter.text == "4 / 4"
    press(browser, Keys.ARROW_RIGHT)
    assert counter.text == "4 / 4"  # the last step stays the last
    press(browser, Keys.HOME)
    assert counter.text == "1 / 4"
    browser.find_element(By.ID, "next").click()
    browser.find_element(By.ID, "next").click()
    assert counter.text == "3 / 4"
    browser.find_element(By.ID, "prev").click()
    assert counter.text == "2 / 4"
    browser.find_element(By.ID, "last").click()
    assert counter.text == "4 / 4" and browser.find_element(By.ID, "phase").text == "backward"
    browser.find_element(By.ID, "first").click()
    slider = browser.find_element(By.ID, "slider")
    browser.execute_script("arguments[0].value = 3; arguments[0].dispatchEvent("
                           "new Event('input'))", slider)
    assert counter.text == "3 / 4"
    # In the forward phase the nodes not computed yet are faint.
    future = browser.execute_script(
        "return [...document.querySelectorAll('#graph g.node.future')].length")
    assert future == 0
    press(browser, Keys.HOME)
    assert browser.execute_script(
        "return [...document.querySelectorAll('#graph g.node.future')].length") == 3
    assert_quiet(browser, path)


def test_placement_step_page_tensor_details_and_modules(browser):
    loss, model, labels = placement_step()
    path = ARTIFACTS / "placement-step.html"
    explore(loss, module=model, labels=labels).save(path)
    size = path.stat().st_size
    assert size < 1_000_000
    interactive = open_page(browser, path)
    browser.save_screenshot(str(ARTIFACTS / "placement-step-start.png"))
    (ARTIFACTS / "measurements.json").write_text(json.dumps(
        {"placement_step_page_bytes": size, "time_to_interactive_ms": interactive}, indent=2))
    print(f"\nplacement-step page: {size} bytes, interactive after {interactive:.0f} ms")

    press(browser, Keys.END)
    loss.backward()
    page = browser.execute_script(READ_PAGE)
    weight_box = _box_titled(browser, "0.weight")
    assert page["grads"][weight_box] == f"grad {summary(model[0].weight.grad)}"
    gamma_box = _box_titled(browser, "1.weight (γ)")
    assert page["grads"][gamma_box] == f"grad {summary(model[1].weight.grad)}"

    # Clicking a tensor opens its arrays (value and gradient) and its op's formulas.
    browser.find_element(By.CSS_SELECTOR, f"#graph g.node#{_svg_id(browser, weight_box)}").click()
    details = browser.find_element(By.ID, "details")
    assert details.is_displayed()
    assert browser.find_element(By.ID, "details-name").text == "0.weight"
    shown = [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?",
                                          browser.find_element(By.ID, "details-data").text)]
    np.testing.assert_allclose(shown, model[0].weight.data.reshape(-1), rtol=1e-3, atol=1e-6)
    grad_text = browser.find_element(By.ID, "details-grad").text
    shown = [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", grad_text)]
    np.testing.assert_allclose(shown, model[0].weight.grad.reshape(-1), rtol=1e-3, atol=1e-9)
    mu_box = _box_titled(browser, "ẑ")
    browser.find_element(By.CSS_SELECTOR, f"#graph g.node#{_svg_id(browser, mu_box)}").click()
    assert "∂L/∂a = g / b" in browser.find_element(By.ID, "details-doc").text  # Div's rule
    browser.save_screenshot(str(ARTIFACTS / "placement-step-details.png"))

    # A module's name folds it down to its output box.
    hidden_before = _count_hidden(browser)
    browser.execute_script("""
      for (const g of document.querySelectorAll('#graph g.cluster')) {
        const label = g.querySelector(':scope > text');
        if (label.textContent.startsWith('(1): BatchNorm1d')) label.dispatchEvent(
          new MouseEvent('click', {bubbles: true}));
      }""")
    assert _count_hidden(browser) > hidden_before + 10
    assert_quiet(browser, path)


def test_the_pages_number_formatting(browser):
    a = Value(2.0, "a")
    path = ARTIFACTS / "text.html"
    explore(a * 3.0).save(path)
    open_page(browser, path)
    cases = [("fmt", 0.0, "0"), ("fmt", -0.357812, "-0.3578"), ("fmt", 1.0, "1"),
             ("fmt", 1e-5, "1e-5"), ("fmt", 123456789.0, "1.235e+8"), ("fmt", 1.5e-12, "1.5e-12"),
             ("fmt", "-inf", "-inf"), ("num", -3.0, "(−3)"), ("num", 2.5, "2.5"),
             ("ref", "x − μ_B", "(x − μ_B)"),
             ("ref", "(a * b)", "(a * b)"), ("ref", "μ_B", "μ_B"),
             ("arrayText", [1.0, -2.5], "[1, -2.5]"),
             # a matrix: one row a line, every number padded to the widest
             ("arrayText", [[1.0, -20.5], [300.0, 4.0]], "[    1, -20.5]\n[  300,     4]")]
    for function, argument, expected in cases:
        shown = browser.execute_script(f"return window.explorerText.{function}(arguments[0])",
                                       argument)
        assert shown == expected, (function, argument)
    assert_quiet(browser, path)


def test_large_graphs_collapse_modules_and_say_so(browser):
    manual_seed(0)
    model = build_model(2, fused=False)
    x = Tensor(np.ones((4, 2), np.float32))
    loss = nn.BCEWithLogitsLoss()(model(x), Tensor(np.ones((4, 1), np.float32)))
    path = ARTIFACTS / "collapsed.html"
    explore(loss, module=model, max_nodes=20).save(path)
    open_page(browser, path)
    assert "each module is drawn as one node" in browser.find_element(By.ID, "note").text
    press(browser, Keys.END)
    assert_quiet(browser, path)


def _box_titled(browser, title: str) -> str:
    """The Graphviz id (t…) of the first box whose bold title is ``title``."""
    return browser.execute_script("""
      for (const g of document.querySelectorAll('#graph g.node')) {
        const bold = [...g.querySelectorAll('text')].find(t => t.getAttribute('font-weight')
                                                          === 'bold');
        if (bold && bold.textContent === arguments[0])
          return g.querySelector('title').textContent;
      }""", title)


def _svg_id(browser, box: str) -> str:
    return browser.execute_script("""
      for (const g of document.querySelectorAll('#graph g.node'))
        if (g.querySelector('title').textContent === arguments[0]) return g.id;""", box)


def _count_hidden(browser) -> int:
    return browser.execute_script(
        "return document.querySelectorAll('#graph .folded-away').length")
