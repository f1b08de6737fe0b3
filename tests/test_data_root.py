from pathlib import Path

from gdl_graphs.data import data_root


def test_explicit_root_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("GDL_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "cli") == (tmp_path / "cli").resolve()


def test_env_beats_default(monkeypatch, tmp_path):
    monkeypatch.setenv("GDL_DATA", str(tmp_path / "env"))
    assert data_root() == (tmp_path / "env").resolve()


def test_default_is_datasets_in_cwd(monkeypatch, tmp_path):
    monkeypatch.delenv("GDL_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_root() == Path(tmp_path / "datasets").resolve()
