"""The CLI as a user pipes and mistypes it: a table piped to a file or another program is printed at
its full width, one line per row (not folded at 80 columns); a file the command cannot read or parse
is one line with the reason and exit status 2, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skyfleet.cli import main as cli_main
from skyfleet.cli.output import emit


def test_a_piped_table_keeps_each_row_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    row = {"name": "n" * 50, "site": "site-" + "x" * 40, "error": "e" * 55}
    emit([row], fmt="table", columns=[("name", "NAME"), ("site", "SITE"), ("error", "ERROR")])
    lines = capsys.readouterr().out.splitlines()
    [data] = [line for line in lines if "n" * 50 in line]
    assert row["site"] in data and "e" * 55 in data  # the whole row, unfolded, on its one line
    assert len(lines) == 5  # top rule, header, rule, the row, bottom rule


@pytest.mark.parametrize(("content", "said"), [(None, "cannot read"), ("{not json", "not valid")])
def test_an_unreadable_file_is_one_line_and_status_2(tmp_path: Path, content: str | None, said: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spec.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setattr(sys, "argv", ["skyfleet", "--url", "http://127.0.0.1:9", "keypair", "create", "k",
                                      "--spec-file", str(path)])
    with pytest.raises(SystemExit) as ended:
        cli_main.main()
    err = capsys.readouterr().err
    assert ended.value.code == 2 and said in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err  # one line, however long the path
