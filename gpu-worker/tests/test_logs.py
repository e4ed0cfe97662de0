"""The worker's log lines: text by default, one JSON object a line with LOG_FORMAT=json."""

import io
import json
import logging
import subprocess
import sys
import warnings

import pytest

from prefloop_worker.logs import log_format, route_library_logs, stderr_log


def test_json_lines_carry_time_level_message_and_context():
    out = io.StringIO()
    log = stderr_log("json", stream=out, job_id="job-7")
    log("step 3/10")
    log("disk full", "error", path="/tmp/x")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["msg"] == "step 3/10" and first["level"] == "info" and first["job_id"] == "job-7"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert second == {**second, "level": "error", "msg": "disk full", "path": "/tmp/x"}


def test_text_lines_are_plain_and_mark_non_info_levels():
    out = io.StringIO()
    log = stderr_log("text", stream=out)
    log("step 3/10")
    log("disk full", "error")
    log("training failed", "error", code=3, traceback="Traceback (most recent call last):\n  boom\n")
    assert out.getvalue() == ("step 3/10\nerror: disk full\n"
                              "error: training failed code=3\nTraceback (most recent call last):\n  boom\n")


@pytest.mark.parametrize("value, expected", [(None, "text"), ("", "text"), ("JSON", "json"), (" text ", "text")])
def test_log_format_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    if value is not None:
        monkeypatch.setenv("LOG_FORMAT", value)
    assert log_format() == expected


def test_an_unknown_format_is_refused_by_the_command_line():
    run = subprocess.run([sys.executable, "-m", "prefloop_worker", "train", "--job", "-"], input="{}", capture_output=True,
                         text=True, env={"LOG_FORMAT": "xml", "PATH": ""}, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == "prefloop_worker: LOG_FORMAT must be one of text, json, not 'xml'"


def test_library_logs_and_warnings_become_json_lines(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        route_library_logs("json")
        logging.getLogger("diffusers.models").warning("weights %s not used", "x")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("deprecated thing", UserWarning, stacklevel=1)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    assert {"level": "warn", "msg": "weights x not used", "logger": "diffusers.models"}.items() <= lines[0].items()
    assert lines[1]["logger"] == "py.warnings" and "deprecated thing" in lines[1]["msg"]
