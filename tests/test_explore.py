"""The explorer's record and page (tinygrad_bn.viz.explore), without a browser.

The record is checked against the library's own backward pass (the leaves' ``.grad``) and the
chain rule by hand; the page is checked to be one self-contained file. What the page *does*
is tested in a real browser in test_explorer_browser.py.
"""
from __future__ import annotations

import html
import json
import re
import shutil
from importlib import resources
from pathlib import Path

import graphviz
import numpy as np
import pytest

from tinygrad_bn.files import OutputError

from tinygrad_bn import Tensor, Value, manual_seed, nn
from tinygrad_bn.cli.graph import batchnorm_by_hand
from tinygrad_bn.graph import topological_order
from tinygrad_bn.placement import build_model
from tinygrad_bn.viz import Explorer, GraphvizNotFoundError, draw_graph, explore

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is not installed")


def a_times_b_plus_c() -> tuple:
    a, b, c = Value(2.0, "a"), Value(-3.0, "b"), Value(10.0, "c")
    d = a * b + c
    d.label = "d"
    return d, (a, b, c)


def placement_loss(fused: bool = False) -> tuple:
    manual_seed(0)
    model = build_model(2, fused=fused)
    x = Tensor(np.array([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8], [-1.2, -0.4]], np.float32))
    y = Tensor(np.array([[1.0], [0.0], [1.0], [0.0]], np.float32))
    return nn.BCEWithLogitsLoss()(model(x), y), model


def final_grads(explorer: Explorer) -> dict:
    """Each node's gradient at the end of the recorded backward pass (node index → value)."""
    grads = {}
    for step in explorer.data["backward"]:
        if not grads:
            grads[step["node"]] = step["grad"]
        for send in step["sends"]:
            grads[send["to"]] = send["total"]
    return grads


# --- the record ---------------------------------------------------------------------------------

def test_value_record_is_the_chain_rule_with_numbers():
    d, (a, b, c) = a_times_b_plus_c()
    data = explore(d).data
    names = [node["name"] for node in data["nodes"]]
    assert names == ["a", "b", "(a * b)", "c", "d"]
    first, second = data["backward"]
    assert first["node"] == 4 and first["grad"] == 1.0  # d: ∂d/∂d = 1, then sends to a·b and c
    assert [(s["to"], s["local"], s["value"]) for s in first["sends"]] == [(2, 1.0, 1.0),
                                                                         (3, 1.0, 1.0)]
    # a.grad += ∂(ab)/∂a · (ab).grad = b · 1 = −3, and b.grad += a · 1 = 2.
    assert [(s["to"], s["local"], s["value"]) for s in second["sends"]] == [(0, -3.0, -3.0),
                                                                          (1, 2.0, 2.0)]
    assert data["forward"] == [0, 1, 2, 3, 4]


def test_exploring_leaves_the_real_gradients_alone():
    d, (a, b, c) = a_times_b_plus_c()
    explore(d)
    assert (a.grad, b.grad, d.grad) == (0.0, 0.0, 0.0)  # before backward: still untouched
    d.backward()
    explore(d)
    assert (a.grad, b.grad, c.grad, d.grad) == (-3.0, 2.0, 1.0, 1.0)
    loss, model = placement_loss()
    explore(loss, module=model)
    assert all(p.grad is None for p in model.parameters())


def test_reused_node_receives_one_contribution_per_use():
    a = Value(3.0, "a")
    b = a + a
    b.label = "b"
    c = b + b
    c.label = "c"
    data = explore(c).data
    to_b = data["backward"][0]["sends"]
    to_a = data["backward"][1]["sends"]
    assert [(s["value"], s["total"]) for s in to_b] == [(1.0, 1.0), (1.0, 2.0)]
    assert [(s["value"], s["total"]) for s in to_a] == [(2.0, 2.0), (2.0, 4.0)]  # ∂c/∂a = 4


def test_batchnorm_by_hand_record_ends_at_the_gradients_backward_computes():
    loss = batchnorm_by_hand()
    explorer = explore(loss)
    grads = final_grads(explorer)
    loss.backward()
    order = topological_order(loss)
    assert len(grads) == len(order)
    for index, node in enumerate(order):
        assert grads[index] == node.grad, explorer.data["nodes"][index]["name"]
    names = {node["name"] for node in explorer.data["nodes"]}
    assert {"μ_B[0]", "σ²_B[1]", "√(σ²_B[0]+ε)", "ẑ[2,0]", "y[3,1]", "γ[0]", "β[1]"} <= names


def test_tensor_record_ends_at_the_gradients_backward_computes():
    loss, model = placement_loss()
    explorer = explore(loss, module=model)
    grads = final_grads(explorer)
    loss.backward()
    order = topological_order(loss)
    for index, node in enumerate(order):
        if node.requires_grad:
            np.testing.assert_allclose(grads[index], node.grad, rtol=1e-3, atol=1e-12)
    by_name = {node["name"]: node for node in explorer.data["nodes"]}
    assert {"0.weight", "1.weight (γ)", "1.bias (β)", "μ_B", "σ²_B", "ẑ"} <= set(by_name)
    assert "∂L/∂a = g · b" in by_name["γ·ẑ"]["doc"]          # the op's docstring: Mul
    assert by_name["1.weight (γ)"]["kind"] == "parameter"
    np.testing.assert_allclose(by_name["0.weight"]["data"], model[0].weight.data, rtol=1e-3)


def test_large_arrays_are_left_to_their_summary():
    x = Tensor(np.arange(5000, dtype=np.float32), requires_grad=True)
    data = explore((x * x).sum()).data
    big = data["nodes"][0]
    assert big["data"] is None and big["dataText"] == "mean 2500, std 1443"
    assert data["backward"][-1]["sends"][0]["total"] is None  # its gradient too
    small = explore((Tensor([1.0, 2.0], requires_grad=True) * 2.0).sum()).data
    assert small["nodes"][0]["data"] == [1.0, 2.0]


def test_local_backward_and_local_derivatives_are_one_chain_rule_step():
    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Tensor([3.0, -1.0])
    y = x * w
    (grad_x, grad_w) = y.local_backward(np.array([1.0, 1.0], np.float32))
    np.testing.assert_array_equal(grad_x, w.data)
    assert grad_w is None and x.local_backward(np.ones(2)) == () and x.grad is None
    a, b = Value(2.0), Value(5.0)
    assert (a * b).local_derivatives == (5.0, 2.0) and a.local_derivatives == ()


def test_bad_roots_are_explained():
    with pytest.raises(ValueError, match=r"one-element root .* shape \(2,\)"):
        explore(Tensor([1.0, 2.0], requires_grad=True) * 2.0)
    with pytest.raises(TypeError, match="needs a Value or a Tensor"):
        explore(3.0)
    with pytest.raises(ValueError, match="max_nodes must be a positive"):
        explore(Value(1.0), max_nodes=0)


def test_large_graphs_collapse_modules_and_say_so():
    loss, model = placement_loss()
    data = explore(loss, module=model, max_nodes=20).data
    assert "more than max_nodes=20: each module is drawn as one node" in " ".join(data["note"])
    boxes = {node["box"] for node in data["nodes"] if node["box"]}
    assert len([box for box in boxes if box.startswith("m")]) == 8 and not data["clusters"]
    assert len(data["backward"]) > 20  # every tensor is still a step


def test_draw_methods_return_the_same_digraph_as_draw_graph():
    d, _ = a_times_b_plus_c()
    assert isinstance(d.draw(), graphviz.Digraph)
    assert d.draw(rankdir="TB").source == draw_graph(d, rankdir="TB").source
    loss, model = placement_loss()
    assert loss.draw(module=model).source == draw_graph(loss, module=model).source


# --- the page -----------------------------------------------------------------------------------

def page_data_text(page: str) -> str:
    return re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                     page, re.S).group(1)


def page_data(page: str) -> dict:
    return json.loads(page_data_text(page))


@needs_dot
def test_page_is_one_file_that_fetches_nothing(tmp_path):
    loss, model = placement_loss()
    path = explore(loss, module=model).save(tmp_path / "step.html")
    page = path.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # No address to load anything from: no src= or href= at all, no url(), no @import.
    assert not re.search(r"\b(src|href)\s*=", page)
    assert "url(" not in page and "@import" not in page
    package = resources.files("tinygrad_bn.viz")
    assert package.joinpath("explore.js").read_text(encoding="utf-8") in page
    assert package.joinpath("explore.css").read_text(encoding="utf-8") in page
    assert page_data(page) == json.loads(json.dumps(explore(loss, module=model).data))
    assert "<svg" in page and "<?xml" not in page
    assert path.stat().st_size < 1_000_000


@needs_dot
def test_names_that_look_like_html_cannot_break_the_page(tmp_path):
    a = Value(1.0, "</script><b>")
    page = explore(a * 2.0).html()
    assert page_data(page)["nodes"][0]["name"] == "</script><b>"
    assert page.count("</script>") == 2  # the data's and the script's own


@needs_dot
def test_infinite_and_nan_numbers_are_written_as_text():
    x = Value(0.0, "x")
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        y = x.log() * Value(0.0, "zero")   # ln 0 = −inf, and −inf · 0 = nan
    page = explore(y).html()
    data = json.loads(page_data_text(page), parse_constant=lambda name: pytest.fail(name))
    assert [node["data"] for node in data["nodes"]][:2] == [0.0, "-inf"]
    assert data["nodes"][-1]["data"] == "nan"


@needs_dot
def test_jupyter_shows_the_page_in_an_iframe():
    d, _ = a_times_b_plus_c()
    explorer = explore(d)
    shown = explorer._repr_html_()
    assert shown.startswith('<iframe srcdoc="') and "<script" not in shown
    assert html.unescape(shown.split('srcdoc="', 1)[1].split('" style=', 1)[0]) == explorer.html()


def test_without_dot_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    d, _ = a_times_b_plus_c()
    target = tmp_path / "page.html"
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        explore(d).save(target)
    assert not target.exists()
    with pytest.raises(OutputError, match="does not exist"):
        explore(d).save(tmp_path / "missing" / "page.html")


def test_the_page_files_are_package_data():
    # The page's script, style and template are files beside explore.py; an installed (not
    # editable) package has them only if setup.cfg lists them.
    viz = resources.files("tinygrad_bn.viz")
    names = sorted(p.name for p in viz.iterdir() if p.name.startswith("explore.")
                   and not p.name.endswith(".py"))
    assert names == ["explore.css", "explore.html", "explore.js"]
    setup = (Path(__file__).resolve().parents[1] / "setup.cfg").read_text(encoding="utf-8")
    listed = re.search(r"^tinygrad_bn = (.*)$", setup, re.M).group(1)
    for name in names:
        assert f"viz/*{Path(name).suffix}" in listed, name
