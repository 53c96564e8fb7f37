"""``symbiote profile``: a width sweep writes its CSV and PNG (no assertion on timing values)."""

import csv

import pytest

from symbiote.cli import main
from symbiote.commands.profile import parse_range


@pytest.fixture(autouse=True)
def quick_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMBIOTE_ORTCPU_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYMBIOTE_ORTCPU_QUICK", "1")


def test_parse_range():
    assert parse_range("64:80:8") == [64, 72, 80]
    assert parse_range("3:5") == [3, 4, 5]


@pytest.mark.parametrize("bad", ["64", "a:b:c", "80:64:8", "0:8:1", "8:16:0"])
def test_bad_range_is_a_user_error(bad, capsys):
    assert main(["profile", "zoo:tiny_cnn", "--sweep", "stage1.conv.out", "--range", bad]) == 2
    assert "--range" in capsys.readouterr().err


def test_unknown_group_names_the_groups(capsys, tmp_path):
    assert main(["profile", "zoo:tiny_cnn", "--sweep", "nope", "--range", "8:16:8", "-o", str(tmp_path / "o")]) == 2
    assert "stage1.conv.out" in capsys.readouterr().err


def test_profile_writes_csv_and_png(tmp_path, capsys):
    out = tmp_path / "prof"
    assert main(["profile", "zoo:tiny_cnn", "--sweep", "stage1.conv.out", "--range", "8:32:8", "-o", str(out),
                 "--pick", "16", "--tolerance", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "hysteresis points" in text and "stage1.conv.out" in text
    picked = int(text.split("pick 16 (tolerance 0.5): width ")[1].split(",")[0])
    assert picked in (16, 24)
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [int(r["width"]) for r in rows] == [8, 16, 24, 32]
    assert all(float(r["latency_ms"]) > 0 and float(r["spread_ms"]) >= 0 and r["hysteresis"] in "01" for r in rows)
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_node_name_selects_the_group_it_starts(tmp_path, capsys):
    out = tmp_path / "p2"
    assert main(["profile", "zoo:lstm", "--sweep", "lstm.0", "--range", "16:24:8", "-o", str(out)]) == 0
    assert "lstm.0.hidden" in capsys.readouterr().out
