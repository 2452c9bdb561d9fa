// The explorer page: replays a recorded forward and backward pass over the graph's SVG.
//
// tinygrad_bn.viz.explore (explore.py) fills in the data below as JSON: the nodes (name, op,
// data, which SVG box draws them), the forward order and the backward steps (for each node in
// the order backward visits it: its gradient and what it sends to each parent, with the running
// totals). This script only shows them; it computes no gradient itself.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("explorer-data").textContent);
  const nodes = data.nodes;
  const scalar = data.engine === "value";
  const $ = (id) => document.getElementById(id);

  // --- numbers as text: 4 significant digits, as the drawings write them ----------------------

  function fmt(x) {
    if (typeof x === "string") return x;  // "inf", "-inf", "nan": JSON has no such numbers
    if (x === 0) return "0";
    if (!Number.isFinite(x)) return String(x);
    const size = Math.abs(x);
    if (size >= 1e-4 && size < 1e6) return String(Number(x.toPrecision(4)));
    return x.toExponential(3).replace(/\.?0+e/, "e");
  }

  // A number inside a formula: negative numbers in parentheses, with a real minus sign.
  function num(x) {
    const text = fmt(x).replace("-", "−");
    return x < 0 ? "(" + text + ")" : text;
  }

  // A name inside a formula: "x − μ_B" becomes "(x − μ_B)" so that ".grad" reads right.
  function ref(name) {
    const wrapped = name.startsWith("(") && name.endsWith(")");
    return /\s/.test(name) && !wrapped ? "(" + name + ")" : name;
  }

  function arrayText(value) {
    if (value === null) return "(too many elements to include in the page: see the summary)";
    if (!Array.isArray(value)) return fmt(value);
    if (value.length === 0) return "[]";
    if (!Array.isArray(value[0])) return "[" + value.map(fmt).join(", ") + "]";
    if (!Array.isArray(value[0][0])) {
      const rows = value.map((row) => row.map(fmt));
      const width = Math.max(...rows.flat().map((t) => t.length));
      return rows.map((row) => "[" + row.map((t) => t.padStart(width)).join(", ") + "]")
        .join("\n");
    }
    return value.map(arrayText).join("\n\n");
  }

  // --- the SVG: boxes by their Graphviz id, arrows by their ends ------------------------------

  const svg = document.querySelector("#graph svg");
  const boxes = new Map();  // box id → <g class="node">
  for (const g of svg.querySelectorAll("g.node")) {
    boxes.set(g.querySelector("title").textContent, g);
  }
  const edges = [];         // {from, to, g}
  for (const g of svg.querySelectorAll("g.edge")) {
    const [from, to] = g.querySelector("title").textContent.split("->");
    edges.push({ from: from, to: to, g: g });
  }

  // The text element showing a box's gradient ("grad …"), filled in as backward goes.
  const gradTexts = new Map();  // node id → <text>
  for (const node of nodes) {
    const owns = scalar ? node.box : node.owner && node.requiresGrad;
    const g = owns ? boxes.get(node.box) : null;
    if (!g) continue;
    const text = [...g.querySelectorAll("text")].find((t) => t.textContent.startsWith("grad"));
    if (text) gradTexts.set(node.id, text);
  }
  for (const node of nodes) {
    for (const id of [node.box, node.opBox]) {
      const g = id ? boxes.get(id) : null;
      if (g && !g.dataset.node) g.dataset.node = node.id;
      if (g) g.addEventListener("click", () => showDetails(node.id));
    }
  }

  // --- the steps: every node forward, then every node backward --------------------------------

  const steps = data.forward.map((id) => ({ phase: "forward", node: id }))
    .concat(data.backward.map((step, index) => ({ phase: "backward", index: index,
                                                  node: step.node })));
  const forwardAt = new Map(data.forward.map((id, index) => [id, index]));
  // Each node's gradient over the backward pass: [backward step, value, text] in order.
  const history = new Map(nodes.map((node) => [node.id, []]));
  data.backward.forEach((step, index) => {
    if (index === 0) history.get(step.node).push([0, step.grad, step.gradText]);
    for (const send of step.sends) {
      history.get(send.to).push([index, send.total, send.totalText]);
    }
  });

  function gradAt(id, backwardIndex) {
    let found = null;
    for (const entry of history.get(id)) {
      if (entry[0] > backwardIndex) break;
      found = entry;
    }
    return found;
  }

  let current = 0;
  let detailsFor = null;

  function go(k) {
    current = Math.max(0, Math.min(steps.length - 1, k));
    render();
  }

  function render() {
    const step = steps[current];
    const backwardIndex = step.phase === "backward" ? step.index : -1;
    const shownUpTo = step.phase === "forward" ? forwardAt.get(step.node) : Infinity;
    $("counter").textContent = (current + 1) + " / " + steps.length;
    $("slider").value = current + 1;
    $("phase").textContent = step.phase;
    $("phase").className = step.phase;

    // Which boxes exist yet: in the forward phase, the nodes computed so far.
    const shown = new Set();
    for (const node of nodes) {
      const at = forwardAt.has(node.id) ? forwardAt.get(node.id) : -1;
      if (at <= shownUpTo) {
        if (node.box) shown.add(node.box);
        if (node.opBox) shown.add(node.opBox);
      }
    }
    for (const [id, g] of boxes) {
      g.classList.toggle("future", !shown.has(id) && id !== "earlier");
      g.classList.remove("current", "receiving");
    }
    for (const edge of edges) {
      edge.g.classList.toggle("future", !(shown.has(edge.from) || edge.from === "earlier") ||
                                        !shown.has(edge.to));
      edge.g.classList.remove("flow", "flow-forward");
    }

    // Gradients as accumulated so far; none before a node is reached.
    for (const [id, text] of gradTexts) {
      const grad = backwardIndex >= 0 ? gradAt(id, backwardIndex) : null;
      text.textContent = grad ? "grad " + (scalar ? fmt(grad[1]) : grad[2]) : "grad";
      text.classList.toggle("grad-pending", !grad);
    }

    highlight(step);
    const focus = boxes.get(nodes[step.node].box);
    if (focus) focus.scrollIntoView({ block: "nearest", inline: "nearest" });
    $("caption").replaceChildren(...caption(step));
    if (detailsFor !== null) showDetails(detailsFor);
  }

  function mark(id, cls) {
    const g = id ? boxes.get(id) : null;
    if (g) g.classList.add(cls);
  }

  function markEdges(from, to, cls) {
    for (const edge of edges) {
      if (edge.from === from && edge.to === to) edge.g.classList.add(cls);
    }
  }

  // The current node, and the arrows its data came along (forward) or its gradient goes back
  // along (backward), to the parents that receive it.
  function highlight(step) {
    const node = nodes[step.node];
    const cls = step.phase === "forward" ? "flow-forward" : "flow";
    mark(node.box, "current");
    mark(node.opBox, "current");
    const into = node.opBox || node.box;
    for (const parentId of node.parents) {
      const parent = nodes[parentId];
      markEdges(parent.box, into, cls);
      if (step.phase === "backward") mark(parent.box, "receiving");
    }
    if (node.opBox) markEdges(node.opBox, node.box, cls);
  }

  // --- the caption: the step in words and numbers ---------------------------------------------

  const SYMBOLS = { "+": "+", "-": "−", "*": "·", "/": "/" };

  function line(cls, text, attributes) {
    const div = document.createElement("div");
    div.className = cls;
    div.textContent = text;
    for (const [key, value] of Object.entries(attributes || {})) div.dataset[key] = value;
    return div;
  }

  function forwardText(node) {
    const parents = node.parents.map((id) => nodes[id]);
    if (scalar) {
      if (!parents.length) return node.name + " = " + num(node.data) + "   (a leaf)";
      if (parents.length === 2) {
        const symbol = SYMBOLS[node.op] || node.op;
        return node.name + " = " + parents[0].name + " " + symbol + " " + parents[1].name +
          " = " + num(parents[0].data) + " " + symbol + " " + num(parents[1].data) + " = " +
          num(node.data);
      }
      if (node.op.startsWith("**")) {
        return node.name + " = (" + parents[0].name + ")^" + node.op.slice(2) + " = " +
          num(parents[0].data) + "^" + node.op.slice(2) + " = " + num(node.data);
      }
      return node.name + " = " + node.op + "(" + parents[0].name + ") = " + node.op + "(" +
        num(parents[0].data) + ") = " + num(node.data);
    }
    if (!parents.length) {
      return node.name + ": " + node.kind + ", " + node.shape + ", data " + node.dataText;
    }
    return node.name + " = " + node.op + " " + node.formula + " of (" +
      parents.map((p) => p.name).join(", ") + ") → " + node.shape + ", data " + node.dataText;
  }

  function caption(step) {
    const node = nodes[step.node];
    if (step.phase === "forward") {
      return [line("head", "Forward: compute " + node.name),
              line("send", forwardText(node))];
    }
    const record = data.backward[step.index];
    const root = nodes[data.backward[0].node];
    const gText = scalar ? num(record.grad) : record.gradText;
    const lines = [];
    if (step.index === 0) {
      lines.push(line("head", ref(node.name) + ".grad = ∂" + ref(root.name) + "/∂" +
                      ref(root.name) + " = " + gText + "   (backward starts at the root)"));
    } else {
      lines.push(line("head", ref(node.name) + ".grad = ∂" + root.name + "/∂" + node.name + " = " +
                      gText + "   (complete: every path to " + ref(root.name) + " is added)"));
    }
    if (!record.sends.length) {
      lines.push(line("send", node.parents.length ? "its inputs need no gradient: it sends nothing"
                                                  : "a leaf: nothing to send"));
    }
    for (const send of record.sends) {
      const parent = nodes[send.to];
      let text;
      if (scalar) {
        text = ref(parent.name) + ".grad += ∂" + ref(node.name) + "/∂" + ref(parent.name) +
          " · " +
          ref(node.name) + ".grad = " + num(send.local) + " · " + num(record.grad) + " = " +
          num(send.value) + "   → " + ref(parent.name) + ".grad = " + num(send.total) +
          " so far";
      } else {
        text = ref(parent.name) + ".grad += " + node.op + ".backward(" + ref(node.name) +
          ".grad) = " +
          send.text + "   → " + send.totalText + " so far";
      }
      lines.push(line("send", text, { to: send.to, value: scalar ? send.value : "",
                                      total: scalar ? send.total : "" }));
    }
    return lines;
  }

  // --- details: a node's full arrays and its op's formulas ------------------------------------

  function showDetails(id) {
    detailsFor = id;
    const node = nodes[id];
    const step = steps[current];
    $("details").hidden = false;
    $("details-name").textContent = node.name;
    const what = scalar
      ? (node.parents.length ? "made by " + node.op : "a leaf")
      : (node.parents.length ? node.op + " " + node.formula + " · " : node.kind + " · ") +
        node.shape;
    $("details-what").textContent = what;
    $("details-doc").textContent = node.doc;
    $("details-data").textContent = arrayText(node.data);
    const grad = step.phase === "backward" ? gradAt(id, step.index) : null;
    $("details-grad").textContent = grad ? arrayText(grad[1])
      : (step.phase === "forward" ? "backward has not started" : "not reached yet");
  }

  $("close").addEventListener("click", () => {
    detailsFor = null;
    $("details").hidden = true;
  });

  // --- module clusters: click a name to collapse the module to its output box ----------------

  const clusters = [];
  for (const g of svg.querySelectorAll("g.cluster")) {
    const record = data.clusters.find((c) => c.svg === g.querySelector("title").textContent);
    if (!record) continue;
    const cluster = { g: g, record: record, folded: false };
    clusters.push(cluster);
    const label = g.querySelector(":scope > text");
    if (label) label.addEventListener("click", () => fold(cluster, !cluster.folded));
  }

  function fold(cluster, folded) {
    cluster.folded = folded;
    cluster.g.classList.toggle("folded", folded);
    refreshFolds();
  }

  function refreshFolds() {
    const away = new Set();
    for (const cluster of clusters) {
      if (!cluster.folded) continue;
      for (const id of cluster.record.boxes) {
        if (id !== cluster.record.output) away.add(id);
      }
    }
    for (const [id, g] of boxes) g.classList.toggle("folded-away", away.has(id));
    for (const edge of edges) {
      edge.g.classList.toggle("folded-away", away.has(edge.from) || away.has(edge.to));
    }
  }

  if (clusters.length) {
    const button = $("fold-all");
    button.hidden = false;
    button.addEventListener("click", () => {
      const folding = !clusters.every((c) => c.folded);
      for (const cluster of clusters) fold(cluster, folding);
      button.textContent = folding ? "expand all modules" : "collapse all modules";
    });
  }

  // --- controls ---------------------------------------------------------------------------------

  $("note").textContent = data.note.join(" ");
  $("slider").max = steps.length;
  $("slider").addEventListener("input", (event) => go(Number(event.target.value) - 1));
  $("first").addEventListener("click", () => go(0));
  $("prev").addEventListener("click", () => go(current - 1));
  $("next").addEventListener("click", () => go(current + 1));
  $("last").addEventListener("click", () => go(steps.length - 1));
  document.addEventListener("keydown", (event) => {
    const moves = { ArrowRight: current + 1, ArrowLeft: current - 1, Home: 0,
                    End: steps.length - 1 };
    if (!(event.key in moves) || event.target.tagName === "INPUT") return;
    event.preventDefault();
    go(moves[event.key]);
  });

  // The text helpers, for the browser tests of this file (tests/test_explorer_browser.py).
  window.explorerText = { fmt: fmt, num: num, ref: ref, arrayText: arrayText };

  go(0);
  // When the page became usable, for the browser test's time-to-interactive measurement.
  document.body.dataset.ready = String(performance.now());
})();
