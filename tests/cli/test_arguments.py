"""The job commands' arguments: job ids as storage makes them, and help that says what is printed."""

from __future__ import annotations

import pytest

from cli.main import build_parser


@pytest.mark.parametrize("job_id", ["-x4Gq2_rT9aB", "--4Gq2_rT9aB", "-h4Gq2_rT9aB", "-o4Gq2_rT9aB"])
def test_a_job_id_that_starts_with_a_dash_is_a_job_id(job_id):
    """One id in 64 starts with '-' (12 URL-safe characters); it must not be read as an option."""
    args = build_parser().parse_args(["vary", job_id, "2", "--json"])
    assert (args.job, args.index, args.json) == (job_id, 2, True)
    assert build_parser().parse_args(["reroll", "--out", "there", job_id]).job == job_id


def test_options_keep_their_meaning_next_to_dashed_ids():
    args = build_parser().parse_args(["upscale", "--creative", "-x4Gq2_rT9aB", "1", "--owner", "ada"])
    assert (args.job, args.creative, args.owner) == ("-x4Gq2_rT9aB", True, "ada")


@pytest.mark.parametrize("command", ["imagine", "vary", "upscale", "reroll"])
def test_help_says_what_is_printed(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([command, "--help"])
    assert stopped.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Prints the job id, then the path of each PNG written" in text
    assert "job_id, kind, seed, width, height, model, images (the paths) and grid (a path or null)" in text
