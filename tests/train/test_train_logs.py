"""CSV logs survive crashes and resume without duplicate rows; TensorBoard scalars on request."""

import pytest

from vecfield.train.logs import CSVLog, RunLogger


def test_resume_cuts_rows_after_the_checkpoint_and_a_partial_last_line(tmp_path):
    log = CSVLog(tmp_path / "log.csv", ["step", "loss"])
    log.start(resume_step=None)
    for step in range(1, 6):
        log.append({"step": step, "loss": 1.0 / step})
    with open(log.path, "a") as file:
        file.write("6,0.1666")  # the write a SIGKILL interrupted
    resumed = CSVLog(tmp_path / "log.csv", ["step", "loss"])
    resumed.start(resume_step=3)
    resumed.append({"step": 4, "loss": 0.25})
    assert [(r["step"], float(r["loss"])) for r in resumed.read()] == [
        ("1", 1.0), ("2", 0.5), ("3", 1 / 3), ("4", 0.25)]  # floats round-trip exactly


def test_a_fresh_start_replaces_the_file_and_column_changes_are_refused(tmp_path):
    log = CSVLog(tmp_path / "log.csv", ["step", "loss"])
    log.start(None)
    log.append({"step": 1, "loss": 2.0})
    log.start(None)
    assert log.read() == []
    with pytest.raises(ValueError, match=r"has columns \['step', 'loss'\], this run writes"):
        CSVLog(tmp_path / "log.csv", ["step", "loss", "lr"]).start(resume_step=1)
    with pytest.raises(ValueError, match=r"cannot log new key\(s\) \['lr'\]"):
        log.append({"step": 2, "loss": 1.0, "lr": 0.1})


def test_columns_from_the_first_row_are_kept_across_a_resume(tmp_path):
    log = CSVLog(tmp_path / "val.csv")
    log.start(None)
    log.append({"step": 5, "mse": 0.5})
    log.append({"step": 10, "mse": 0.4})
    resumed = CSVLog(tmp_path / "val.csv")
    resumed.start(resume_step=7)
    assert resumed.columns == ["step", "mse"] and [r["step"] for r in resumed.read()] == ["5"]


def test_tensorboard_scalars_are_written_and_purged_on_resume(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = RunLogger(tmp_path, ["step", "loss"], tensorboard=True, resume_step=None)
    for step in range(1, 5):
        logger.log_train({"step": step, "loss": float(step)})
    logger.log_val(4, 0.0, {"mse": 0.25})
    logger.close()
    resumed = RunLogger(tmp_path, ["step", "loss"], tensorboard=True, resume_step=2)
    resumed.log_train({"step": 3, "loss": 30.0})
    resumed.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 1.0), (2, 2.0), (3, 30.0)]
    assert [r["step"] for r in resumed.train.read()] == ["1", "2", "3"]


def test_validation_columns_are_ordered_by_lead_not_as_text(tmp_path):
    """val_log.csv listed 10h, 11h, …, 1h, 20h; leads (and levels) now sort by their value."""
    logger = RunLogger(tmp_path, ["step", "loss"], tensorboard=False, resume_step=None)
    metrics = {f"rmse_t850_{h}h": float(h) for h in (1, 2, 10, 11, 20)} | {"rmse_t1000_1h": 0.0, "score": 1.0}
    logger.log_val(1, 0.5, metrics)
    logger.close()
    header = (tmp_path / "val_log.csv").read_text().splitlines()[0].split(",")
    assert header == ["step", "wallclock_s", "rmse_t850_1h", "rmse_t850_2h", "rmse_t850_10h", "rmse_t850_11h",
                      "rmse_t850_20h", "rmse_t1000_1h", "score"]
