"""Notebooks run end to end (tiny settings) and are committed without outputs."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

# The analysis notebook trains 4 methods x environments and bootstraps their statistics, the objectives notebook
# meta-trains: minutes each on 2 cores even at tiny settings, so they run in the slow tier (make test-all).
SLOW_NOTEBOOKS = ("analysis.ipynb", "objectives.ipynb")
NOTEBOOKS = [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW_NOTEBOOKS else p
             for p in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    monkeypatch.setenv("JAXRL_NOTEBOOK_TIMESTEPS", "4096")
    monkeypatch.setenv("JAXRL_NOTEBOOK_SEEDS", "2")
    monkeypatch.setenv("JAXRL_NOTEBOOK_GENERATIONS", "3")
    monkeypatch.setenv("JAXRL_NOTEBOOK_POPULATION", "16")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
