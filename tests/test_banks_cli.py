"""The CLI end to end: hash, import with progress, list, match, disable, export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from skimage import data as skdata

from harmwatch.cli import main
from harmwatch.settings import get_settings


@pytest.fixture
def banks_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARMWATCH_BANKS_DIR", str(tmp_path / "banks"))
    get_settings.cache_clear()
    yield tmp_path / "banks"
    get_settings.cache_clear()


def test_cli_round_trip(tmp_path: Path, banks_dir: Path, capsys: pytest.CaptureFixture) -> None:
    image = tmp_path / "chelsea.png"
    Image.fromarray(skdata.chelsea()).save(image)
    copy = tmp_path / "chelsea.jpg"
    Image.fromarray(skdata.chelsea()).resize((200, 133)).save(copy, quality=60)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"<html>not an image</html>")

    assert main(["hash", str(image), str(junk)]) == 1  # junk is not hashed; image is
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[1]["error"] == "not_an_image"
    frame = lines[0]["frames"][0]
    hash_list = tmp_path / "list.csv"
    hash_list.write_text(f"pdq,phash,category\n{frame['pdq']},{frame['phash']},A2\n")

    assert main(["banks", "import", "known", str(hash_list), "--format", "ncmec"]) == 0
    captured = capsys.readouterr()
    assert "1 added" in captured.out and "1 read" in captured.err

    assert main(["banks", "list", "--json"]) == 0
    (bank,) = json.loads(capsys.readouterr().out)
    assert (bank["name"], bank["entries"], bank["pdq_threshold"]) == ("known", 1, 31)

    assert main(["match", str(copy)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {m["algorithm"] for m in result["matches"]} >= {"pdq"}
    assert result["matches"][0]["category"] == "A2"

    assert main(["banks", "disable", "known", "--until", "2999-01-01T00:00:00"]) == 0
    capsys.readouterr()
    assert main(["match", str(copy)]) == 0
    assert json.loads(capsys.readouterr().out)["matches"] == []

    out = tmp_path / "out.txt"
    assert main(["banks", "export", "known", str(out), "--format", "text",
                 "--algorithm", "pdq"]) == 0
    assert out.read_text() == frame["pdq"] + "\n"

    assert main(["banks", "reindex"]) == 0
    assert "1 PDQ, 1 pHash" in capsys.readouterr().out
    pointer = json.loads((banks_dir / "index" / "pdq" / "CURRENT.json").read_text())
    assert (banks_dir / "index" / "pdq" / pointer["version"] / "layout.json").exists()


def test_cli_import_reports_bad_files(tmp_path: Path, banks_dir: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n")
    assert main(["banks", "import", "known", str(bad)]) == 1
    assert "sha256 or pdq" in capsys.readouterr().err


def test_an_import_with_one_bad_line_adds_nothing(tmp_path: Path, banks_dir: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    """A list bigger than one write batch, broken on its last line: no bank, no entries."""
    from classifiers.banks import cli as banks_cli

    good = [f"{i:032x}" for i in range(banks_cli.PROGRESS_EVERY + 10)]
    hash_list = tmp_path / "list.txt"
    hash_list.write_text("\n".join([*good, "not-a-hash-at-all-but-32-chars!!"]) + "\n")
    assert main(["banks", "import", "known", str(hash_list)]) == 1
    err = capsys.readouterr().err
    assert f"line {len(good) + 1}" in err and "Nothing was imported" in err
    assert main(["banks", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    hash_list.write_text("\n".join(good) + "\n")
    assert main(["banks", "import", "known", str(hash_list)]) == 0
    captured = capsys.readouterr()
    assert f"{len(good):,} added" in captured.out and f"{len(good):,} checked" in captured.err
    assert main(["banks", "disable", "missing"]) == 1


def _small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (7, 8, 9)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("command", ["hash", "match"])
def test_bad_files_get_one_error_line_each_and_the_rest_is_processed(
        command, tmp_path, banks_dir, capsys):
    good, junk = tmp_path / "good.png", tmp_path / "junk.jpg"
    good.write_bytes(_small_png())
    junk.write_bytes(b"<html>not an image</html>")
    missing, folder = tmp_path / "missing.png", tmp_path / "folder"
    folder.mkdir()
    files = [missing, folder, junk, good]
    assert main([command, *map(str, files)]) == 1, "any bad file: exit 1"
    out, err = capsys.readouterr()
    errors = err.strip().splitlines()
    assert len(errors) == 4, errors  # three bad files and a summary
    for path, reason in ((missing, "unreadable"), (folder, "unreadable"),
                         (junk, "not_an_image")):
        assert sum(f"{path}: {reason}" in line for line in errors) == 1, (path, errors)
    assert errors[-1] == f"harmwatch {command}: 3 of 4 file(s) not hashed"
    assert "Traceback" not in err
    records = {json.loads(line)["file"]: json.loads(line) for line in out.splitlines()}
    assert records[str(good)].get("error") is None
    assert records[str(junk)]["error"] == "not_an_image"


@pytest.mark.parametrize("command", ["hash", "match"])
def test_all_good_files_exit_0(command, tmp_path, banks_dir, capsys):
    good = tmp_path / "good.png"
    good.write_bytes(_small_png())
    assert main([command, str(good)]) == 0
    assert capsys.readouterr().err == ""
