"""Graph drawing (tinygrad_bn.viz): the DOT text of known graphs, parsed and counted.

Most tests need no Graphviz: they read ``draw_graph(...).source``. The few that render SVG
or PNG skip when the ``dot`` program is missing (CI installs it); missing ``dot`` itself is
simulated by emptying PATH.
"""
from __future__ import annotations

import re
import shutil
import struct
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import graphviz
import numpy as np
import pytest

from tinygrad_bn import Tensor, Value, manual_seed, nn
from tinygrad_bn.placement import build_model
from tinygrad_bn.viz import (COLOURS, GraphvizNotFoundError, draw_graph, output_format,
                             render)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is not installed")

NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+)")
ATTRIBUTE_STATEMENTS = {"graph", "node", "edge"}


@dataclass
class Dot:
    """The nodes (id → attribute text, in order), edges and clusters of a DOT source."""

    source: str
    nodes: dict
    edges: list
    clusters: list

    def label(self, node_id: str) -> str:
        attributes = self.nodes[node_id]
        html = re.search(r"label=<(.*)>", attributes)
        if html:
            return re.sub(r"<[^>]+>", " ", html.group(1))  # the text of an HTML-like label
        return re.search(r'label="((?:[^"\\]|\\.)*)"', attributes).group(1)

    def title(self, node_id: str) -> str:
        """The bold first row of a Tensor graph's box."""
        return re.search(r"<B>(.*?)</B>", self.nodes[node_id]).group(1)

    def titled(self, title: str) -> str:
        (node_id,) = [n for n in self.nodes if "<B>" in self.nodes[n] and self.title(n) == title]
        return node_id

    def titled_first(self, title: str) -> str:
        """The first box with this title (a step named in every BatchNorm layer)."""
        return [n for n in self.nodes if "<B>" in self.nodes[n] and self.title(n) == title][0]

    def find(self, text: str) -> list:
        """Ids of the nodes whose label contains ``text``."""
        return [node_id for node_id in self.nodes if text in self.label(node_id)]


def parse(graph: graphviz.Digraph) -> Dot:
    nodes, edges = {}, []
    for line in graph.source.splitlines():
        edge = EDGE.match(line)
        if edge:
            edges.append(edge.groups())
            continue
        node = NODE.match(line)
        if node and node.group(1) not in ATTRIBUTE_STATEMENTS:
            nodes[node.group(1)] = node.group(2)
    clusters = re.findall(r'subgraph (cluster_\d+) \{\n\s*.*label="([^"]*)"', graph.source)
    return Dot(graph.source, nodes, edges, clusters)


def placement_loss(fused: bool, *, seed: int = 0) -> tuple:
    """One training step of the placement architecture on a fixed 4-row batch."""
    manual_seed(seed)
    model = build_model(2, fused=fused)
    x = Tensor(np.array([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8], [-1.2, -0.4]], np.float32))
    y = Tensor(np.array([[1.0], [0.0], [1.0], [0.0]], np.float32))
    loss = nn.BCEWithLogitsLoss()(model(x), y)
    loss.backward()
    return loss, model, x, y


# --- Value graphs -------------------------------------------------------------------------------

def a_times_b_plus_c() -> Value:
    a, b, c = Value(2.0, "a"), Value(-3.0, "b"), Value(10.0, "c")
    d = a * b + c
    d.label = "d"
    d.backward()
    return d


def test_a_times_b_plus_c_has_five_values_two_ops_and_six_arrows():
    dot = parse(draw_graph(a_times_b_plus_c()))
    assert list(dot.nodes) == ["v0", "v1", "v2", "v2_op", "v3", "v4", "v4_op"]
    assert [dot.label(n) for n in ("v2_op", "v4_op")] == ["*", "+"]
    assert sorted(dot.edges) == sorted([("v0", "v2_op"), ("v1", "v2_op"), ("v2_op", "v2"),
                                        ("v2", "v4_op"), ("v3", "v4_op"), ("v4_op", "v4")])
    assert all("shape=record" in dot.nodes[f"v{i}"] for i in range(5))


def test_value_records_carry_label_data_and_grad():
    dot = parse(draw_graph(a_times_b_plus_c()))
    assert dot.label("v0") == "{ a | data 2 | grad -3 }"      # ∂d/∂a = b
    assert dot.label("v1") == "{ b | data -3 | grad 2 }"      # ∂d/∂b = a
    assert dot.label("v2") == "{ data -6 | grad 1 }"          # an unnamed intermediate
    assert dot.label("v4") == "{ d | data 4 | grad 1 }"
    assert COLOURS["root"] in dot.nodes["v4"] and COLOURS["input"] in dot.nodes["v0"]


def test_show_data_and_show_grad_remove_their_fields():
    root = a_times_b_plus_c()
    assert parse(draw_graph(root, show_grad=False)).label("v0") == "{ a | data 2 }"
    assert parse(draw_graph(root, show_data=False)).label("v0") == "{ a | grad -3 }"
    no_numbers = draw_graph(root, show_data=False, show_grad=False).source
    assert "data" not in no_numbers and "grad" not in no_numbers


def test_top_to_bottom_layout_keeps_the_fields_side_by_side():
    graph = draw_graph(a_times_b_plus_c(), rankdir="TB")
    assert "rankdir=TB" in graph.source
    assert parse(graph).label("v0") == "a | data 2 | grad -3"


def test_a_reused_operand_gets_one_arrow_per_use_in_operand_order():
    a = Value(3.0, "a")
    b = a * a
    c = b + Value(1.0, "one")
    dot = parse(draw_graph(c))
    assert dot.edges.count(("v0", "v1_op")) == 2
    assert dot.edges[:3] == [("v0", "v1_op"), ("v0", "v1_op"), ("v1_op", "v1")]


def test_record_characters_in_labels_are_escaped():
    weird = Value(1.0, "{x|y}<z>")
    dot = parse(draw_graph(weird * 2.0))
    assert r"\{x\|y\}\<z\>" in dot.label("v0")


def test_labels_mapping_names_values_without_a_label():
    a = Value(2.0)
    out = a * 3.0
    assert "{ input a | data 2 |" in parse(draw_graph(out, labels={a: "input a"})).label("v0")


def test_a_long_value_chain_keeps_the_nodes_nearest_the_root():
    x = Value(0.5, "x")
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()  # 20 001 values: each step adds a constant and a product
    dot = parse(draw_graph(y, max_nodes=50))
    records = [n for n, attrs in dot.nodes.items() if "shape=record" in attrs]
    assert len(records) == 50
    assert "earlier" in dot.nodes and "20001 values are more than max_nodes=50" in dot.source
    assert records[-1] == "v20000"                      # the root is always drawn
    assert any(source == "earlier" for source, _ in dot.edges)


# --- Tensor graphs ------------------------------------------------------------------------------

def test_tensor_graph_of_a_product_and_a_sum():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = Tensor([0.5, -1.0, 2.0], requires_grad=True)
    loss = (x * w).sum()
    loss.backward()
    dot = parse(draw_graph(loss, labels={x: "x", w: "w"}))
    assert list(dot.nodes) == ["t0", "t1", "t2", "t3"]
    assert dot.edges == [("t0", "t2"), ("t1", "t2"), ("t2", "t3")]
    mul, total = dot.label("t2"), dot.label("t3")
    assert "Mul" in mul and "a × b" in mul and "(3,) float32" in mul
    assert "data [0.5, -2, 6]" in mul and "grad [1, 1, 1]" in mul
    assert "Sum" in total and "Σ over all elements" in total and "scalar float32" in total
    assert "data 4.5" in total and "grad 1" in total
    assert "grad [0.5, -1, 2]" in dot.label("t0")           # ∂loss/∂x = w
    assert COLOURS["root"] in dot.nodes["t3"]


def test_large_arrays_are_summarised_by_mean_and_std():
    x = Tensor(np.arange(10, dtype=np.float32), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    label = parse(draw_graph(loss)).label("t0")
    assert "data mean 4.5, std 2.872" in label and "grad mean 9, std 5.745" in label


def test_scalar_constants_are_written_into_their_op():
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x * 0.25 + 1e-5).sum()
    loss.backward()
    dot = parse(draw_graph(loss))
    assert len(dot.nodes) == 4  # x, ×0.25, +1e-05, Σ: the two numbers are not boxes
    assert dot.find("× 0.25") and dot.find("+ 1e-05")
    assert len(dot.edges) == 3


def test_before_backward_gradients_are_not_computed_yet():
    x = Tensor([1.0, 2.0], requires_grad=True)
    label = parse(draw_graph((x * x).sum())).label("t0")
    assert "grad not computed" in label


def test_placement_parameters_carry_state_dict_names_and_their_own_colour():
    loss, model, x, y = placement_loss(fused=False)
    dot = parse(draw_graph(loss, module=model, labels={x: "x", y: "y"}))
    for name in ("0.weight", "0.bias", "1.weight (γ)", "1.bias (β)", "3.weight", "3.bias",
                 "4.weight (γ)", "4.bias (β)", "6.weight", "6.bias"):
        assert COLOURS["parameter"] in dot.nodes[dot.titled(name)], name
    for name in ("x", "y"):
        assert COLOURS["input"] in dot.nodes[dot.titled(name)], name
    assert dot.source.count(COLOURS["parameter"]) == 10


def test_module_clusters_are_labelled_and_hold_their_ops():
    loss, model, _, _ = placement_loss(fused=True)
    dot = parse(draw_graph(loss, module=model))
    labels = [label for _, label in dot.clusters]
    assert labels == ["(0): Linear(2→16)", "(1): BatchNorm1d(16)", "(2): ReLU()",
                      "(3): Linear(16→16)", "(4): BatchNorm1d(16)", "(5): ReLU()",
                      "(6): Linear(16→1)", "BCEWithLogitsLoss()"]
    bn_block = dot.source.split("subgraph")[2]  # the second cluster: (1) BatchNorm1d
    assert "1.weight (γ)" in bn_block and "1.bias (β)" in bn_block
    assert "all steps in one fused op" in bn_block


# The names nn.functional.batch_norm gives the composed BatchNorm's steps, in the notes' order.
COMPOSED_STEPS = ["Σᵢ xᵢ", "μ_B", "x − μ_B", "(x − μ_B)²", "Σᵢ (xᵢ − μ_B)²", "σ²_B",
                  "σ²_B + ε", "√(σ²_B+ε)", "ẑ", "γ as a row", "γ·ẑ", "β as a row", "y = γ·ẑ + β"]


def test_composed_batchnorm_shows_its_steps_in_order():
    loss, model, _, _ = placement_loss(fused=False)
    dot = parse(draw_graph(loss, module=model))
    assert "(1): BatchNorm1d(16), composed" in [label for _, label in dot.clusters]
    titles = [dot.title(n) for n in dot.nodes]
    first_layer = []
    for step in COMPOSED_STEPS:
        ids = [n for n in dot.nodes if dot.title(n) == step]
        assert titles.count(step) == (4 if step == "x − μ_B" else 2), step  # x − μ_B twice
        first_layer.append(int(ids[0][1:]))
    assert first_layer == sorted(first_layer)  # topological order: the order of the steps
    # The op moves under the name; 1/m and ε are written into their ops.
    assert "Mul × 0.25" in dot.label(dot.titled_first("μ_B"))
    assert "Add + 1e-05" in dot.label(dot.titled_first("σ²_B + ε"))
    assert "Reshape " in dot.label(dot.titled_first("γ as a row"))


def test_names_come_from_construction_not_from_the_shape_of_the_graph():
    # The same ops as a composed BatchNorm, written by hand and unnamed: nothing is guessed.
    x = Tensor(np.array([[1.0, 2.0], [3.0, 5.0], [0.0, 1.0]], np.float32), requires_grad=True)
    mean = x.sum(0, keepdims=True) * (1 / 3)
    centred = x - mean
    out = (centred / ((centred * centred).sum(0, keepdims=True) * (1 / 3) + 1e-5).sqrt()).sum()
    titles = [parse(draw_graph(out)).title(n) for n in parse(draw_graph(out)).nodes]
    assert not set(titles) & set(COMPOSED_STEPS)
    # …and a name set afterwards, or given to the constructor, is shown as the title.
    centred.name = "x − μ_B"
    w = Tensor([1.0, 2.0], requires_grad=True, name="w")
    dot = parse(draw_graph((out * w).sum()))
    assert "Sub a − b" in dot.label(dot.titled("x − μ_B")) and dot.titled("w")
    assert not dot.find("μ_B =")


def test_functional_batch_norm_names_its_steps_and_eval_its_running_statistics():
    x = Tensor(np.arange(8, dtype=np.float32).reshape(4, 2), requires_grad=True)
    w, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([0.0, 1.0], requires_grad=True)
    out = nn.functional.batch_norm(x, None, None, w, b, training=True, fused=False)
    assert out.name == "y = γ·ẑ + β" and out.parents[0].name == "γ·ẑ"
    z_hat = out.parents[0].parents[0]
    assert z_hat.name == "ẑ" and [p.name for p in z_hat.parents] == ["x − μ_B", "√(σ²_B+ε)"]
    evaluated = nn.functional.batch_norm(x, Tensor([0.0, 0.0]), Tensor([1.0, 1.0]), w, b,
                                         fused=False)
    z_hat = evaluated.parents[0].parents[0]
    assert [p.name for p in z_hat.parents] == ["x − running mean", "√(running var+ε)"]
    fused = nn.functional.batch_norm(x, None, None, w, b, training=True, fused=True)
    assert fused.name == ""  # one op: its drawing says "all steps in one fused op"


def test_without_module_parameters_are_named_after_their_layer_attribute():
    loss, _, _, _ = placement_loss(fused=True)
    dot = parse(draw_graph(loss))
    titles = [dot.title(n) for n in dot.nodes]
    assert titles.count("weight") == 3 and titles.count("weight (γ)") == 2
    assert len(dot.find("bias (β)")) == 2
    assert [label for _, label in dot.clusters][:2] == ["Linear(2→16)", "BatchNorm1d(16)"]


def test_evaluation_mode_names_the_running_statistics_as_buffers():
    manual_seed(0)
    model = build_model(2, fused=False).eval()
    out = model(Tensor(np.ones((3, 2), np.float32))).sum()
    dot = parse(draw_graph(out, module=model))
    assert COLOURS["buffer"] in dot.nodes[dot.titled("1.running_mean")]
    assert COLOURS["constant"] in dot.nodes[dot.titled_first("√(running var+ε)")]
    assert "Div a ÷ b" in dot.label(dot.titled_first("ẑ"))
    assert dot.titled_first("x − running mean")
    assert "(1): BatchNorm1d(16), eval: running statistics" in [label for _, label in dot.clusters]


def test_nested_modules_draw_nested_clusters():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Linear(2, 3)

        def forward(self, x: Tensor) -> Tensor:
            return self.inner(x) * 2.0

    model = Scaled()
    out = model(Tensor(np.ones((2, 2), np.float32))).sum()
    lines = draw_graph(out, module=model).source.splitlines()

    def line_of(text: str) -> int:
        (index,) = [i for i, line in enumerate(lines) if text in line]
        return index

    outer, inner = line_of('label="Scaled()"'), line_of('label="(inner): Linear(2→3)"')
    assert outer < inner and lines[inner].startswith("\t\t\t")  # a cluster in a cluster
    assert lines[line_of("<B>Mul</B>")].startswith("\t\tt")       # Scaled's own op
    assert lines[line_of("<B>inner.weight</B>")].startswith("\t\t\tt")


def test_above_max_nodes_modules_collapse_into_one_node_each():
    loss, model, x, y = placement_loss(fused=False)
    dot = parse(draw_graph(loss, module=model, max_nodes=20, labels={x: "x", y: "y"}))
    assert not dot.clusters
    modules = [n for n in dot.nodes if n.startswith("m")]
    assert len(modules) == 8 and len(dot.nodes) == 10  # 7 layers + the loss, and x, y
    assert "module: 14 ops, 2 parameters" in dot.label(modules[1])
    assert "(1): BatchNorm1d(16), composed" in dot.label(modules[1])
    assert "46 tensors are more than max_nodes=20" in dot.source
    assert len(dot.edges) == 9 and len(set(dot.edges)) == 9


def test_when_collapsing_is_not_enough_the_nearest_nodes_are_kept():
    loss, model, _, _ = placement_loss(fused=True)
    dot = parse(draw_graph(loss, module=model, max_nodes=3))
    assert len([n for n in dot.nodes if n != "earlier"]) == 3
    assert "earlier" in dot.nodes and "the 3 nearest the root are drawn" in dot.source


def test_tensor_graph_without_modules_above_max_nodes_is_cut():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(30):
        y = y.tanh()
    dot = parse(draw_graph(y, max_nodes=10))
    assert len(dot.nodes) == 11 and "earlier" in dot.nodes
    assert "t30" in dot.nodes and "t0" not in dot.nodes


def test_dot_text_is_identical_across_two_builds():
    first = draw_graph(a_times_b_plus_c()).source
    assert draw_graph(a_times_b_plus_c()).source == first
    loss_a, model_a, _, _ = placement_loss(fused=False)
    loss_b, model_b, _, _ = placement_loss(fused=False)
    assert draw_graph(loss_a, module=model_a).source == draw_graph(loss_b, module=model_b).source
    loss_c, model_c, _, _ = placement_loss(fused=False, seed=1)
    assert draw_graph(loss_c, module=model_c).source != draw_graph(loss_a, module=model_a).source


@pytest.mark.parametrize("call, error, message", [
    (lambda: draw_graph(3.0), TypeError, "needs a Value or a Tensor, got float"),
    (lambda: draw_graph(Value(1.0), rankdir="XY"), ValueError, "rankdir must be one of"),
    (lambda: draw_graph(Value(1.0), max_nodes=0), ValueError, "max_nodes must be a positive"),
    (lambda: draw_graph(Value(1.0), module=nn.ReLU()), ValueError, "a Value graph has none"),
    (lambda: draw_graph(Tensor([1.0]), module="model"), TypeError, "module must be a"),
], ids=["root", "rankdir", "max_nodes", "module-with-value", "module-type"])
def test_bad_arguments_are_explained(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- render -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, format, expected", [
    ("graph.svg", None, "svg"), ("graph.PNG", None, "png"), ("out/graph.pdf", None, "pdf"),
    ("graph.dot", None, "dot"), ("graph.svg", "dot", "dot"), ("graph", "PNG", "png"),
])
def test_output_format_comes_from_format_else_the_suffix(path, format, expected):
    assert output_format(path, format) == expected


@pytest.mark.parametrize("path, format, message", [
    ("graph.jpg", None, r"the suffix \.jpg is not a graph format"),
    ("graph", None, "without a suffix"),
    ("graph.svg", "gif", "unknown graph format 'gif'"),
])
def test_output_format_refuses_what_it_cannot_write(path, format, message):
    with pytest.raises(ValueError, match=message):
        output_format(path, format)


def test_render_dot_writes_the_source_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot program anywhere
    root = a_times_b_plus_c()
    written = render(root, tmp_path / "graph.dot")
    assert written.read_text(encoding="utf-8") == draw_graph(root).source
    other = render(root, tmp_path / "graph.txt", format="dot", show_grad=False)
    assert "grad" not in other.read_text(encoding="utf-8")


@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf"])
def test_without_dot_pictures_fail_with_an_install_hint(tmp_path, monkeypatch, suffix):
    monkeypatch.setenv("PATH", str(tmp_path))
    target = tmp_path / f"graph{suffix}"
    with pytest.raises(GraphvizNotFoundError) as failure:
        render(a_times_b_plus_c(), target)
    message = str(failure.value)
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install"):
        assert hint in message
    assert not target.exists()


def test_render_accepts_a_drawn_graph_but_not_options_with_it(tmp_path):
    graph = draw_graph(a_times_b_plus_c())
    assert render(graph, tmp_path / "g.dot").read_text(encoding="utf-8") == graph.source
    with pytest.raises(TypeError, match="already drawn"):
        render(graph, tmp_path / "g.dot", show_grad=False)


def test_render_into_a_missing_folder_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        render(a_times_b_plus_c(), tmp_path / "missing" / "g.dot")


def svg_node_titles(path) -> list:
    """The ids of the node groups of an SVG written by dot (each has a <title>)."""
    tree = ElementTree.parse(path)
    namespace = {"svg": "http://www.w3.org/2000/svg"}
    groups = tree.getroot().findall(".//svg:g[@class='node']", namespace)
    return [group.find("svg:title", namespace).text for group in groups]


def png_size(path) -> tuple:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@needs_dot
def test_svg_of_a_value_graph_has_one_group_per_node(tmp_path):
    root = a_times_b_plus_c()
    path = render(root, tmp_path / "graph.svg")
    assert sorted(svg_node_titles(path)) == sorted(parse(draw_graph(root)).nodes)


@needs_dot
def test_svg_and_png_of_the_placement_step(tmp_path):
    loss, model, _, _ = placement_loss(fused=False)
    dot = parse(draw_graph(loss, module=model))
    svg = render(loss, tmp_path / "step.svg", module=model)
    assert sorted(svg_node_titles(svg)) == sorted(dot.nodes)
    assert "BatchNorm1d(16)" in svg.read_text(encoding="utf-8")
    width, height = png_size(render(loss, tmp_path / "step.png", module=model))
    assert 500 < width < 20_000 and 100 < height < 5_000


@needs_dot
def test_pdf_is_written(tmp_path):
    assert render(a_times_b_plus_c(), tmp_path / "g.pdf").read_bytes().startswith(b"%PDF")


def test_a_label_on_an_op_becomes_its_title_and_the_op_moves_down():
    x = Tensor([1.0, -2.0], requires_grad=True)
    logits = x * 3.0
    dot = parse(draw_graph(logits.sum(), labels={logits: "logits"}))
    label = dot.label(dot.titled("logits"))
    assert label.count("× 3") == 1 and "Mul × 3" in label
