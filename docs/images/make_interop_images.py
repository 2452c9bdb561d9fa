"""Make the two pictures of docs/interop.md: the exported placement model as Netron draws it,
and the same model as `tinygrad_bn.viz.draw_graph` draws it.

Run from the repository root:

    python docs/images/make_interop_images.py

It needs onnx, Graphviz's `dot`, selenium with Chromium and its driver, a font with CJK
brackets for the shapes Netron writes as 〈2〉 (Debian's fonts-wqy-microhei), Pillow, and
Netron (``pip install netron``: it bundles its web page and serves it locally).

The model is the one `tinygrad-bn train --save` makes with its defaults (seed 0, 50 epochs),
exported as `tinygrad-bn export` exports it. Netron is served on 127.0.0.1 and opened in
headless Chromium whose name resolution maps every other host to "not found", so the page's
usage reporting reaches nothing; the cookie that records its consent question as answered
is set first, so the screenshot shows the graph.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import netron
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tinygrad_bn import Tensor
from tinygrad_bn.data import DEFAULT_FEATURES, DEFAULT_TARGET, bundled_placement_path, load_csv
from tinygrad_bn.onnx import export
from tinygrad_bn.placement import TrainConfig, inference_pipeline, train
from tinygrad_bn.viz import render

IMAGES = Path(__file__).resolve().parent
PORT = 18716


def trained_pipeline():
    dataset = load_csv(bundled_placement_path(), DEFAULT_FEATURES, DEFAULT_TARGET)
    result = train(dataset, TrainConfig())
    return inference_pipeline(result.model, result.standardizer), dataset


def netron_screenshot(model_path: Path, out: Path) -> None:
    netron.start(str(model_path), address=("127.0.0.1", PORT), browse=False)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--hide-scrollbars", "--window-size=1600,400",
                 "--force-device-scale-factor=2",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                 f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        url = f"http://127.0.0.1:{PORT}/"
        driver.get(url)
        driver.add_cookie({"name": "consent", "value": str(int(time.time() * 1000))})
        # Netron's own setting (View → Show Horizontal): left to right, like draw_graph.
        driver.execute_script("window.localStorage.setItem('options', arguments[0]);",
                              '{"direction": "horizontal"}')
        driver.get(url)
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#canvas g.node"))
        time.sleep(1)  # let the layout settle before the picture
        box = driver.execute_script(
            "const r = document.querySelector('#canvas > g').getBoundingClientRect();"
            "return [r.left, r.top, r.right, r.bottom, window.devicePixelRatio];")
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        netron.stop()
    # Keep the graph and a margin, not the empty page and Netron's buttons around it.
    left, top, right, bottom, scale = box
    margin = 12
    with Image.open(out) as image:
        image.crop((int((left - margin) * scale), int((top - margin) * scale),
                    int((right + margin) * scale), int((bottom + margin) * scale))).save(out)


def main() -> None:
    pipeline, dataset = trained_pipeline()
    with tempfile.TemporaryDirectory() as folder:
        model_path = Path(folder) / "placement.onnx"
        export(pipeline, dataset.X[:1], model_path, input_names=["features"],
               output_names=["probability"])
        netron_screenshot(model_path, IMAGES / "placement-netron.png")
    # The forward pass of four raw rows, as the exported model computes it. The input
    # requires grad only so that the standardiser's ops are recorded too; no gradient is drawn.
    rows = Tensor(dataset.X[:4].astype(np.float32), requires_grad=True)
    probability = pipeline(rows)
    render(probability, IMAGES / "placement-inference.svg", module=pipeline, show_grad=False,
           labels={rows: "features (raw)"})
    print("wrote docs/images/placement-netron.png and docs/images/placement-inference.svg")


if __name__ == "__main__":
    main()
