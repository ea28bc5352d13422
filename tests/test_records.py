"""Every stored record loads through the hash check; the runs the book reads are runs of the current profiles."""
import json
from pathlib import Path

import pytest

from drlib.config import stored_config_hash
from drlib.registry import config_from_record, make_config
from drlib.results import check_run_record, load_records, read_record, write_record

RESULTS = Path(__file__).resolve().parents[1] / "results"
RUN_RECORDS = sorted(p for p in RESULTS.rglob("*.json") if "model_config" in json.loads(p.read_text()).get("config", {}))
CURRENT = [p for p in RUN_RECORDS if p.parent.name == "main" and "archive" not in p.parts]


def test_there_are_records():
    assert len(RUN_RECORDS) > 50 and CURRENT          # the book reads results/main/


@pytest.mark.parametrize("path", RUN_RECORDS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_run_record_hash_rebuilds(path):
    rec = json.loads(path.read_text())
    assert stored_config_hash(rec["config"]) == rec["config_hash"]
    assert rec["run_id"].endswith(rec["config_hash"][:10])
    if "archive" not in path.parts:          # current code: the config itself rebuilds from profile + overrides
        assert config_from_record(rec).config_hash == rec["config_hash"]


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.name)
def test_main_table_runs_are_runs_of_the_current_profiles(path):
    """A record in results/main/ is the plain profile config of its model: no stale profile on a book page."""
    c = json.loads(path.read_text())["config"]
    assert make_config(c["model"], c["dataset"], c["profile"], c["seed"]).config_hash == \
        json.loads(path.read_text())["config_hash"]


def test_an_altered_record_is_refused(tmp_path):
    rec = json.loads(RUN_RECORDS[0].read_text())
    rec["config"]["train"]["lr"] = 123.0
    with pytest.raises(ValueError, match="altered"):
        check_run_record(rec, "x.json")
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / RUN_RECORDS[0].name).write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="altered"):
        load_records("main", root=tmp_path)


def test_one_writer_for_every_record_kind(tmp_path):
    """write_record: the run envelope when a config is given, the body, then env / command / finished; what it
    returns is what a read gives; a later edit of the config is caught on read."""
    cfg = make_config("sasrec", "synthetic", "smoke", 3, experiment="probes")
    path = tmp_path / "probes" / f"{cfg.run_id}.json"
    rec = write_record(path, {"ranks": (1, 2)}, cfg=cfg, command="python -m drlib ...", env={"extra": 1})
    assert list(rec)[:5] == ["label", "run_id", "experiment", "config", "config_hash"]
    assert rec["ranks"] == [1, 2] and rec["command"] == "python -m drlib ..." and rec["finished"]
    assert rec["env"]["extra"] == 1 and "git_commit" in rec["env"] and rec["experiment"] == "probes"
    assert read_record(path) == rec and [p.name for p in path.parent.iterdir()] == [path.name]   # no temp file
    plain = write_record(tmp_path / "bench.json", {"speedup": 2.0}, command="python tools/x.py")
    assert "config" not in plain and read_record(tmp_path / "bench.json") == plain
    with pytest.raises(ValueError, match="command"):
        write_record(tmp_path / "x.json", {}, command="")
    rec["config"]["seed"] = 4
    path.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="altered"):
        read_record(path)
