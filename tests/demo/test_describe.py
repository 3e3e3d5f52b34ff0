"""`kaika describe PATH`: the four prompts on stdout, one a line, recorded as a describe job."""

from __future__ import annotations

import json

from pipeline.demo.scenes import Scene, Shape, render
from storage.records import JobKind
from testkit.tiny_captioner import save_tiny_captioner
from tests.fixtures.cli import job, recorded


def test_describe_prints_four_prompts_a_line_and_records_them(demo_data, kaika, tmp_path):
    picture = tmp_path / "scene.jpg"
    render(Scene("orange", (Shape("triangle", "purple", 32, 18, 12, "top"),)), size=150).save(
        picture, quality=95
    )
    printed = kaika("describe", str(picture))
    assert printed.status == 0, printed.err
    assert printed.out.splitlines() == [
        "a purple triangle on a orange background",
        "a purple triangle at the top on a orange background",
        "a orange backdrop with a violet triangle",
        "purple triangle at the top, orange backdrop",
    ]
    as_json = kaika("describe", str(picture), "--json")
    data = json.loads(as_json.out)
    assert data["prompts"] == printed.out.splitlines()
    record = job(demo_data, data["job_id"])
    assert (record.kind, record.params["prompts"], record.params["picture"]["width"]) == (
        JobKind.DESCRIBE,
        data["prompts"],
        150,
    )
    assert recorded(demo_data, lambda storage: storage.uploads.count_for(record.owner_id)) == 2


def test_describe_uses_the_describer_setting(demo_data, kaika, tmp_path, monkeypatch):
    monkeypatch.setenv("DESCRIBER", str(save_tiny_captioner(tmp_path / "captioner")))
    picture = tmp_path / "scene.png"
    render(Scene("blue", ())).save(picture)
    data = kaika("describe", str(picture), "--json")
    prompts = json.loads(data.out)["prompts"]
    assert len(prompts) == 4 and "a plain blue background" not in prompts
    assert job(demo_data, json.loads(data.out)["job_id"]).params["describer"] == str(tmp_path / "captioner")


def test_describe_refuses_what_is_not_a_picture_in_one_line(demo_data, kaika, tmp_path, monkeypatch):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert kaika("describe", str(notes)).error_line("describe") == (
        "notes.txt is not an image Kaika takes; send a PNG, JPEG, WebP or GIF image."
    )
    picture = tmp_path / "scene.png"
    render(Scene("blue", ())).save(picture)
    monkeypatch.setenv("DESCRIBER", str(tmp_path / "missing-model"))
    line = kaika("describe", str(picture)).error_line("describe")
    assert line.startswith(
        f"DESCRIBER={tmp_path / 'missing-model'}: the image-to-text model cannot be loaded"
    )
    assert not (demo_data / "images").exists() or not any((demo_data / "images").rglob("*.png"))
