"""The GPU bench on the CPU: a failing implementation becomes a row with its error, and the report is still
written (the run on an H200 once lost every row to fla's backward guard)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "bench"))
memory_gpu = pytest.importorskip("memory_gpu")


def _seconds(step):
    step()
    return 0.5


def test_a_raising_step_is_recorded_as_its_error_and_a_working_one_as_its_rate():
    def guarded():
        raise RuntimeError("Triton >= 3.4.0 and < 3.7.1 on Hopper GPUs produces incorrect results")

    failed = memory_gpu.measured({"impl": "fla"}, guarded, tokens=100, time_step=_seconds)
    assert "tokens_per_s" not in failed and failed["error"].startswith("RuntimeError: Triton >= 3.4.0")
    worked = memory_gpu.measured({"impl": "ours"}, lambda: None, tokens=100, time_step=_seconds)
    assert worked["tokens_per_s"] == 200 and "error" not in worked


def test_the_report_is_written_when_a_row_and_a_whole_section_fail(tmp_path, monkeypatch):
    def broken_modules(impls):
        raise RuntimeError("CUDA out of memory")

    rows = [
        memory_gpu.measured(
            {"impl": "titans-ts triton", "depth": 1, "dtype": "bf16", "pass": "fwd+bwd"},
            lambda: None,
            tokens=4 * 8192,
            time_step=_seconds,
        ),  # fmt: skip
        {"impl": "fla chunk_gated_delta_rule", "depth": 1, "dtype": "bf16", "pass": "fwd", "tokens_per_s": 1e7},
        {
            "impl": "fla chunk_gated_delta_rule",
            "depth": 1,
            "dtype": "bf16",
            "pass": "fwd+bwd",
            "error": "RuntimeError: refused by fla's guard",
        },  # fmt: skip
    ]
    monkeypatch.setattr(memory_gpu, "module_rows", broken_modules)
    monkeypatch.setattr(memory_gpu, "op_rows", lambda backends: rows)
    info = {"torch": "2.13", "titans_pytorch": None, "commit": "abc", "date": "2026-12-04T00:00:00"}
    summary = memory_gpu.gpu_main(info, try_triton=False, results=tmp_path)
    report = (tmp_path / "bench_memory_gpu.md").read_text()
    assert (tmp_path / "bench_memory_gpu.json").exists()
    assert "failed: RuntimeError: CUDA out of memory" in report
    assert "failed: RuntimeError: refused by fla's guard" in report
    assert "| titans-ts triton | matrix (depth 1) | bf16 | fwd+bwd | 65,536 |" in report
    assert "10,000,000" in report and len(summary["ops"]) == 3
