"""``manage.py ingest`` on a real folder tree, against real PostgreSQL and a local blob store."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.assets.models import MediaAsset, Source
from apps.audit.models import AuditEvent
from tests import media

pytestmark = pytest.mark.django_db(transaction=True)

TEXTS, IMAGES = 995, 5  # 1,000 distinct valid files




@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """The command prints rich tables; a wide console keeps each rejected row on one line."""
    monkeypatch.setenv("COLUMNS", "400")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """1,000 distinct valid files in nested folders, plus one duplicate and two bad files (1,003)."""
    root = tmp_path / "library"
    for i in range(TEXTS):
        d = root / f"batch-{i // 100:02d}" / ("deep" if i % 7 == 0 else "")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"note-{i:04d}.txt").write_text(f"Note {i}\nSome distinct text for file number {i}.\n")
    pics = root / "pictures"
    pics.mkdir()
    for i in range(IMAGES):
        media.make_image(pics / f"pic-{i}.png", f"PIC {i}", size=(96, 64), font_size=14)
    shutil.copyfile(root / "batch-00" / "note-0001.txt", root / "copy-of-note-0001.txt")
    (root / "bad").mkdir()
    (root / "bad" / "setup.png").write_bytes(b"MZ\x90\x00" + bytes(range(256)) * 4)
    (root / "bad" / "cut.png").write_bytes((pics / "pic-0.png").read_bytes()[:200])
    (root / ".hidden.txt").write_text("dot files are skipped\n")
    return root


def test_recursive_folder_of_1000_files(library, capsys, _no_pipeline):
    files = [p for p in library.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(files) == 1003
    t0 = time.monotonic()
    with pytest.raises(CommandError, match="2 file\\(s\\) rejected"):
        call_command("ingest", str(library), "--recursive")
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out
    summary = out.split("rejected", 1)[1]  # the summary table: ingested, duplicates, rejected
    assert [int(x) for x in summary.split("│") if x.strip().isdigit()][:3] == [1000, 1, 2], out[:2000]
    lines = {ln for ln in out.splitlines() if "bad" in ln}
    assert any("setup.png" in ln and "unsupported_type: Unsupported file type: Windows executable" in ln
               for ln in lines), out
    assert any("cut.png" in ln and "corrupt: " in ln for ln in lines), out
    assert MediaAsset.objects.count() == 1000
    assert MediaAsset.objects.filter(kind="text").count() == TEXTS
    assert MediaAsset.objects.filter(kind="image").count() == IMAGES
    assert set(MediaAsset.objects.values_list("source", flat=True)) == {Source.COMMAND}
    assert AuditEvent.objects.filter(verb="asset.ingested").count() == 1000
    assert AuditEvent.objects.filter(verb="asset.rejected").count() == 2
    assert len(_no_pipeline) == 1000
    print(f"ingest of 1,003 files took {elapsed:.1f}s")


def test_kind_filter_rejects_other_content_with_a_reason(tmp_path, capsys):
    note = tmp_path / "notes.txt"
    note.write_text("plain text, not an image\n")
    pic = media.make_image(tmp_path / "ok.png", "OK", size=(64, 48), font_size=12)
    with pytest.raises(CommandError, match="1 file\\(s\\) rejected"):
        call_command("ingest", str(note), str(pic), "--kind", "image")
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if "notes.txt" in ln)
    assert "wrong_kind: Expected image, but the content is text (text/plain)." in row
    assert list(MediaAsset.objects.values_list("kind", flat=True)) == ["image"]


def test_a_missing_path_is_reported(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(CommandError, match="1 file\\(s\\) rejected"):
        call_command("ingest", str(missing), "--recursive")
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if "no-such-folder" in ln)
    assert "no such file or directory" in row
    assert MediaAsset.objects.count() == 0
