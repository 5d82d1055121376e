"""The course in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by selenium.

It opens notebook 1 and the explorer (notebook 9), runs all their cells, then drives the explorer as a student
would: types K and a question, switches RAG-Sequence's decoding mode, moves the beam size and picks a "try this"
input, and checks that what each changes is drawn (the passages and probabilities, the matrix image and its
caption, the answers). Screenshots go to the test's tmp dir, and to $RAGEDU_SCREENSHOTS if set.

Needs the Debian packages chromium and chromium-driver (.ci/run installs them) and the selenium package;
skips with a message without them. JupyterLab runs on copies of the notebooks, with its config, data, runtime
and workspace directories in a tmp dir, so it neither saves outputs into the repo nor touches the user's setup.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["01_retriever.ipynb", "09_explorer.ipynb"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

selenium = pytest.importorskip("selenium", reason="the browser test needs selenium: pip install -e '.[dev]'")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("the browser test needs Chromium and its driver: apt-get install -y chromium chromium-driver",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on copies of the notebooks    -> (base url, token, root dir)"""
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "course"
    (root / "notebooks").mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, root / "notebooks" / name)
    settings = home / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no "get notified about Jupyter news?" toast over the screenshots
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # up to 60 s
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}: {(home / 'lab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not answer on {url} within 60 s")
        yield url, token, root
    finally:
        try:  # shuts its kernels down too
            urllib.request.urlopen(urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST"),
                                   timeout=5)
            server.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1100"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    """Save a screenshot to the tmp dir, and to $RAGEDU_SCREENSHOTS if set."""
    out = tmp_path_factory.mktemp("screenshots")
    extra = os.environ.get("RAGEDU_SCREENSHOTS")

    def save(driver, name: str) -> Path:
        path = out / f"{name}.png"
        driver.save_screenshot(str(path))
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)
        return path
    return save


# What JupyterLab's own app object says about the open notebook (exposed by --expose-app-in-browser).
NOTEBOOK_STATE = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.sessionContext) return null;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
return {
  path: panel.context.path,
  kernel: kernel ? kernel.status : null,
  counts: cells.map(c => c.model.executionCount),
  errors: cells.flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                                   .map(o => o.ename + ': ' + o.evalue)),
};
"""


MATRIX = "div.ragedu-matrix"   # RAG-Sequence's matrix: a table (ragedu.viz_explorer.matrix_html)
FIGURE2 = "div.ragedu-figure2-table"   # both posteriors, the paper's Figure 2: two heatmap tables (figure2_html)


def wait_for(driver, condition, timeout: float, message: str):
    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(d), message=message)


def run_all_cells(driver, url: str, token: str, name: str, timeout: float = 90) -> dict:
    driver.get(f"{url}/lab/tree/notebooks/{name}?token={token}")
    wait_for(driver, lambda d: (s := d.execute_script(NOTEBOOK_STATE)) and s["path"].endswith(name)
             and s["kernel"] == "idle", 60, f"{name} did not open with an idle kernel")
    driver.execute_script("return window.jupyterapp.commands.execute('notebook:run-all-cells')")
    state = wait_for(driver, lambda d: (s := d.execute_script(NOTEBOOK_STATE)) and s["kernel"] == "idle"
                     and all(c is not None for c in s["counts"]) and s, timeout,
                     f"{name}: the cells did not all run within {timeout} s")
    assert not state["errors"], f"{name} raised: {state['errors']}"
    return state


def settle(driver) -> None:
    """Wait until the kernel has finished the widget's callback and the browser has what it sent."""
    wait_for(driver, lambda d: d.execute_script(NOTEBOOK_STATE)["kernel"] == "idle", 30, "the kernel stayed busy")
    time.sleep(0.5)


def explorer_numbers(driver) -> dict:
    """What the explorer shows: the passages table's titles and p(z|x), and the answers with p(y|x)."""
    def cells(selector):  # read in one script: the widget may replace the table between two reads
        return driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent.trim())", selector)
    return {"titles": cells(".ragedu-passages td.title"), "p_z": cells(".ragedu-passages td.p"),
            "answers": cells(".ragedu-answers td.answer"), "p_y": cells(".ragedu-answers td.p")}


def text_of(driver, selector: str) -> str:
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
                                 selector)


def html_of(driver, selector: str) -> str:
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerHTML : ''",
                                 selector)


def click_toggle(driver, css_class: str, label: str) -> None:
    """Click the button of an ipywidgets ToggleButtons whose text is `label`."""
    buttons = driver.find_elements(By.CSS_SELECTOR, f".{css_class} button")
    next(b for b in buttons if b.text.strip() == label).click()


def set_slider(driver, css_class: str, value: int) -> None:
    """Type into an ipywidgets slider's editable readout and press Enter, as a user can."""
    readout = driver.find_element(By.CSS_SELECTOR, f".{css_class} .widget-readout")
    readout.click()
    readout.send_keys(Keys.CONTROL, "a")
    readout.send_keys(str(value), Keys.ENTER)


def test_notebook_1_and_the_explorer_run_and_respond_in_jupyterlab(lab, browser, screenshots):
    url, token, root = lab
    started = time.monotonic()
    run_all_cells(browser, url, token, "01_retriever.ipynb")
    screenshots(browser, "01_retriever")

    run_all_cells(browser, url, token, "09_explorer.ipynb")
    wait_for(browser, lambda d: len(explorer_numbers(d)["titles"]) == 5, 30,
             "the explorer did not show its K = 5 passages")
    explorer = browser.find_element(By.CSS_SELECTOR, ".ragedu-explorer")
    browser.execute_script("arguments[0].scrollIntoView()", explorer)
    screenshots(browser, "09_explorer_k5")
    before = explorer_numbers(browser)
    heatmap = html_of(browser, FIGURE2)
    assert all(0 <= float(p) <= 1 for p in before["p_z"] + before["p_y"]), before

    # K: 5 -> 2 passages; the two that stay get larger p(z|x), renormalised over fewer passages
    set_slider(browser, "ragedu-k", 2)
    at_k2 = wait_for(browser, lambda d: (n := explorer_numbers(d)) and len(n["titles"]) == 2 and n, 30,
                     "the passages did not change after K = 2")
    assert at_k2["titles"] == before["titles"][:2]
    assert float(at_k2["p_z"][0]) >= float(before["p_z"][0]) and at_k2["p_z"] != before["p_z"][:2]
    settle(browser)
    screenshots(browser, "09_explorer_k2")

    # a new question: type it and press Enter
    box = browser.find_element(By.CSS_SELECTOR, ".ragedu-question input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("What is the currency of Japan?", Keys.ENTER)
    after = wait_for(browser, lambda d: (n := explorer_numbers(d)) and n["titles"] != at_k2["titles"]
                     and len(n["titles"]) == 2 and n, 30, "the passages did not change with the question")
    assert after["answers"] != at_k2["answers"] or after["p_y"] != at_k2["p_y"]
    assert after["p_z"] != at_k2["p_z"]
    settle(browser)
    screenshots(browser, "09_explorer_new_question")

    # Figure 2, both models' posteriors, is drawn anew for the new question, a heatmap cell per passage and column
    figure = browser.find_element(By.CSS_SELECTOR, FIGURE2)
    assert figure.size["width"] > 200 and figure.size["height"] > 100 and html_of(browser, FIGURE2) != heatmap
    for variant in ("token", "sequence"):
        rows = browser.find_elements(By.CSS_SELECTOR, f"{FIGURE2} .ragedu-figure2-{variant} tr")
        assert len(rows) == 1 + 2 and len(browser.find_elements(
            By.CSS_SELECTOR, f"{FIGURE2} .ragedu-figure2-{variant} td.peak")) == len(rows[0].find_elements(
            By.TAG_NAME, "th")) - (2 if variant == "token" else 1)   # one framed cell per token (not the prior)

    # RAG-Sequence's decoding mode: the matrix's rescored cells become cells assumed 0, in its table and caption
    matrix, caption = html_of(browser, MATRIX), text_of(browser, ".ragedu-matrix-caption")
    assert "rescored by an extra pass" in caption and 'class="rescored"' in matrix
    click_toggle(browser, "ragedu-mode", "fast")
    wait_for(browser, lambda d: "assumed 0" in text_of(d, ".ragedu-matrix-caption")
             and 'class="assumed-zero"' in html_of(d, MATRIX), 30, "the matrix did not change with the mode")
    settle(browser)   # the caption and matrix come before the answers in the callback: read those once it is done
    assert "RAG-Sequence (fast)" in " ".join(browser.find_element(By.CSS_SELECTOR, ".ragedu-answers").text.split())

    # the beam size: other hypotheses, another matrix
    matrix = html_of(browser, MATRIX)
    set_slider(browser, "ragedu-num-beams", 1)
    wait_for(browser, lambda d: "beams of 1" in text_of(d, ".ragedu-matrix-caption")
             and html_of(d, MATRIX) not in ("", matrix), 30, "the matrix did not change with the beam size")
    settle(browser)
    screenshots(browser, "09_explorer_fast_greedy")

    # "try this": thorough and fast disagree; the widget sets the question and settings, says what to look at,
    # and switching the mode changes RAG-Sequence's answer on screen
    choices = Select(browser.find_element(By.CSS_SELECTOR, ".ragedu-try-this select"))
    choices.select_by_index(next(i for i, o in enumerate(choices.options) if o.text.startswith("thorough ≠ fast")))
    wait_for(browser, lambda d: "thorough and fast" in text_of(d, ".ragedu-hint")
             and "rescored" in text_of(d, ".ragedu-matrix-caption"), 30, "the 'try this' input was not shown")
    settle(browser)
    thorough = explorer_numbers(browser)["answers"]
    box = browser.find_element(By.CSS_SELECTOR, ".ragedu-question input")
    assert box.get_attribute("value").endswith("?") and len(thorough) == 2
    click_toggle(browser, "ragedu-mode", "fast")
    wait_for(browser, lambda d: "assumed 0" in text_of(d, ".ragedu-matrix-caption"), 30, "the mode did not change")
    settle(browser)   # as above: the answers table is set after the caption
    fast = explorer_numbers(browser)["answers"]
    assert fast[1] != thorough[1] and fast[0] == thorough[0], (thorough, fast)   # RAG-Sequence's answer moved
    settle(browser)
    screenshots(browser, "09_explorer_try_this_fast")
    assert not text_of(browser, ".ragedu-busy"), "the busy sign stayed on"
    assert time.monotonic() - started < 120, "the browser test must stay under 2 minutes"
