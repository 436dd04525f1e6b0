"""The two files a student gets: results.json in Gradescope's format (validated against a JSON schema
of that format, tests/gradescope_schema.json, plus DESIGN §7's naming contract) and feedback.html,
rendered by headless Chromium into a screenshot that must show a page (not a blank one, and not one
a student's printed <script> has wiped)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from autograder.config import CHECK_IDS
from autograder.grade import grade_source, write_reports
from zoo import BY_NAME
from zoo import sources as S

# xdist: every test of this module runs on one worker, so the module fixture grading the sample submissions
# is made once (docs/design.md, issue 16)
pytestmark = pytest.mark.xdist_group("feedback_html")

SCHEMA = json.loads((Path(__file__).with_name("gradescope_schema.json")).read_text())
CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium") or "",
                             shutil.which("google-chrome") or "") if p and Path(p).exists()), None)
XSS = ("<script>document.body.innerHTML = ''; document.title = 'pwned'</script>"
       "<img src=x onerror=\"document.body.style.display='none'\">")

# (name, source builder, with training)
REPORTS = {
    "reference": (lambda: S.ref(), False),
    "grad_summed": (lambda: BY_NAME["grad_summed_not_averaged"].build(None), False),
    "not_implemented": (S.skeleton, False),
    "syntax_error": (lambda: "def forward(params, X)\n", False),
    "hostile_output": (lambda: S.prelude(S.ref(), f"print({XSS!r})\nprint('\\x00\\x1b[31m\\udcff' * 3)"), False),
    "hyperparams_missing": (lambda: BY_NAME["hyperparams_missing"].build(None), True),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory, prepared_env) -> dict[str, Path]:
    out = {}
    for name, (build, training) in REPORTS.items():
        report = grade_source(build(), prepared_env("relu", with_training=training))
        folder = tmp_path_factory.mktemp(name)
        write_reports(report, folder, student=f"student <{name}>")
        out[name] = folder
    return out


@pytest.mark.parametrize("name", REPORTS)
def test_results_json_follows_gradescope(written, name):
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads((written[name] / "results.json").read_text())
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert data["max_score"] == 100
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    for test in data["tests"]:
        check_id, sep, label = test["name"].partition(": ")
        assert check_id in CHECK_IDS and sep and label, test["name"]
        assert 0 <= test["score"] <= test["max_score"]
        assert (test["status"] == "passed") == (test["score"] >= test["max_score"] - 1e-9)
    assert {t["name"].split(":")[0] for t in data["tests"]} == set(CHECK_IDS)


def test_schema_rejects_what_gradescope_would():
    jsonschema = pytest.importorskip("jsonschema")
    good = {"score": 1, "output": "", "tests": [{"name": "forward: x", "score": 1, "max_score": 1, "output": "",
                                                 "status": "passed"}]}
    jsonschema.validate(good, SCHEMA)
    for bad in ({**good, "score": "100"}, {**good, "tests": [{**good["tests"][0], "status": "ok"}]},
                {**good, "visibility": "public"}, {k: v for k, v in good.items() if k != "tests"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)


def test_feedback_escapes_student_text(written):
    html = (written["hostile_output"] / "feedback.html").read_text()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html
    assert "student &lt;hostile_output&gt;" in html


@pytest.mark.parametrize("name", ["reference", "not_implemented", "hostile_output"])
def test_feedback_renders_in_chromium(written, name, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no Chromium here: install it with `apt-get install -y chromium` to render feedback.html")
    image = pytest.importorskip("matplotlib.image")
    page = written[name] / "feedback.html"
    shot = tmp_path / "shot.png"
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                           "--window-size=1200,2000", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-800:]}"
    pixels = image.imread(shot)[..., :3].mean(axis=-1)
    assert pixels.shape == (2000, 1200)
    inked = float((pixels < 0.9).mean())
    assert pixels.std() > 0.05 and inked > 0.01, f"the page looks blank (std {pixels.std():.3f}, ink {inked:.3%})"
    top = pixels[:400]
    assert (top < 0.5).mean() > 0.002, "no dark text near the top: the title and score are not visible"
