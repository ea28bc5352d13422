"""Notebook parameters as users type them (drlib.params), and the papermill commands the README documents."""
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drlib import params as P
from drlib.data import registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value", ["sports", " sports ", "sports,", '["sports"]', "[sports]", ["sports"], ("sports",)])
def test_one_name_however_it_is_typed(value):
    assert P.names(value, "datasets", P.DATASETS) == ["sports"]


@pytest.mark.parametrize("value", ["beauty,sports", "beauty, sports", '["beauty", "sports"]', "[beauty, 'sports']",
                                   ["beauty", "sports", "beauty"]])
def test_several_names(value):
    assert P.names(value, "datasets", P.DATASETS) == ["beauty", "sports"]


def test_unknown_names_and_bad_values_say_what_is_accepted():
    with pytest.raises(ValueError, match=r"datasets: unknown 'sprots'; known: beauty, .*sports"):
        P.names("beauty,sprots", "datasets", P.DATASETS)
    with pytest.raises(ValueError, match="models: no names"):
        P.names("", "models", P.MODEL_NAMES)
    with pytest.raises(ValueError, match="seeds: expected an integer, got 'one'"):
        P.ints("0,one", "seeds")
    with pytest.raises(ValueError, match="seed: expected an integer, got 1.5"):
        P.integer(1.5, "seed")
    with pytest.raises(ValueError, match="n_batches: must be >= 1"):
        P.integer("0", "n_batches", minimum=1)
    with pytest.raises(ValueError, match="profile: give one of smoke, cpu, paper"):
        P.choice("cpu,paper", "profile", P.PROFILES)
    with pytest.raises(ValueError, match="train_missing: expected True or False"):
        P.flag("maybe", "train_missing")
    with pytest.raises(ValueError, match="is not SECTION.FIELD=VALUE"):
        P.overrides("epochs=2")
    with pytest.raises(ValueError, match="unknown 'sasrex'"):
        P.mapping('{"sasrex": [0]}', "seeds_per_model", P.MODEL_NAMES)
    with pytest.raises(ValueError, match="JSON object"):
        P.mapping("{diffureason-s: [0]}", "seeds_per_model", P.MODEL_NAMES)


def test_integers_flags_overrides_and_mappings():
    assert P.ints(0, "s") == [0] and P.ints("0,1,2", "s") == [0, 1, 2] and P.ints("[3, 4]", "s") == [3, 4]
    assert P.integer("7", "x") == 7 and P.integer(2.0, "x") == 2
    assert P.flag(True, "f") is True and P.flag("false", "f") is False and P.flag("1", "f") is True
    assert P.overrides("eval.ks=5,10") == ["eval.ks=5,10"]                 # a comma belongs to the value
    assert P.overrides('["train.epochs=2", "eval.ks=5,10"]') == ["train.epochs=2", "eval.ks=5,10"]
    assert P.overrides([]) == [] and P.overrides("") == []
    assert P.mapping(None, "m") is None and P.mapping("none", "m") is None
    assert P.mapping('{"diffureason-s": [0, 1]}', "m", P.MODEL_NAMES) == {"diffureason-s": [0, 1]}


def test_every_notebook_checks_its_parameters_first():
    import nbformat
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = nbformat.read(nb_path, as_version=4).cells
        i = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
        params = set(re.findall(r"^(\w+) =", cells[i].source, re.M))
        check = cells[i + 1]
        assert "check-parameters" in check.metadata.get("tags", []), nb_path.name
        checked = set(re.findall(r"^(\w+) =", check.source, re.M))
        # every parameter but a free-form path is checked
        assert params - checked <= {"data_path"}, (nb_path.name, params - checked)


def _documented_commands():
    """The papermill commands of the README, as printed (one per line of its code blocks)."""
    text = (ROOT / "README.md").read_text() + (ROOT / "book" / "intro.md").read_text()
    return sorted({line.strip() for line in text.splitlines() if line.strip().startswith("papermill notebooks/")})


def test_the_readme_documents_papermill_commands():
    assert len(_documented_commands()) >= 2


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("papermill") is None and not (Path(sys.executable).parent / "papermill").exists(),
                    reason="papermill is not installed")
@pytest.mark.parametrize("command", _documented_commands())
def test_documented_papermill_commands_work(command, tmp_results, tmp_path):
    """Each documented command as printed, made smoke-sized by appended parameters (the last -p wins): synthetic
    data, the smoke profile, one seed, one epoch. A misspelt dataset stops in the first cell with a clear error."""
    argv = shlex.split(command)
    argv[0] = str(Path(sys.executable).parent / "papermill")
    argv[2] = str(tmp_path / "out.ipynb")
    smoke = ["-p", "profile", "smoke", "-p", "overrides", "train.epochs=1", "-p", "train_missing", "True"]
    smoke += ["-p", "datasets" if "02_" in command else "dataset", "synthetic"]
    smoke += ["-p", "seeds", "0"] if "02_" in command else []
    smoke += ["-p", "values", '{"alphas": [1.0], "betas": [1.0], "reasoning_steps": [1], "group_sizes": [4]}'] \
        if "05_" in command else []
    done = subprocess.run(argv + smoke + ["--cwd", str(ROOT / "notebooks")], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    bad = subprocess.run(argv + smoke + ["-p", "datasets" if "02_" in command else "dataset", "sprots",
                                         "--cwd", str(ROOT / "notebooks")],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert bad.returncode != 0 and "unknown 'sprots'" in bad.stderr + bad.stdout


def test_a_dataset_parameter_takes_a_path_to_your_own_file(tmp_path):
    f = tmp_path / "my_shop.csv"
    f.write_text("user,item,timestamp\n" + "".join(f"u{u},i{(u + t) % 7},{t}\n" for u in range(6) for t in range(5)))
    try:
        assert P.names(f"beauty,{f}", "datasets", P.DATASETS) == ["beauty", "my_shop"]
        assert "my_shop" in list(P.DATASETS) and P.choice(str(f), "dataset", P.DATASETS) == "my_shop"
        with pytest.raises(ValueError, match="unknown 'no_such_file.csv'"):
            P.names("no_such_file.csv", "datasets", P.DATASETS)
    finally:
        registry.DATASETS.pop("my_shop", None)                             # the registration ends with the test
