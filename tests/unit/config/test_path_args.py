"""A run folder whose name holds '=' and ',' (a sweep job's) pastes unquoted as a path."""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser

from convae.config.path_args import quote_path_values


def _value(arg: str) -> object:
    return OverridesParser.create().parse_override(arg).value()


def test_an_existing_job_folder_is_read_by_hydra_as_one_path(tmp_path):
    job = tmp_path / "upsample=transposed,seed=2"
    job.mkdir()
    for key in ("resume", "ckpt", "ckpt_path"):
        (arg,) = quote_path_values([f"{key}={job}"])
        assert _value(arg) == str(job)


def test_a_path_with_a_quote_survives_the_quoting(tmp_path):
    job = tmp_path / "it's=1,b=2"
    job.mkdir()
    (arg,) = quote_path_values([f"resume={job}"])
    assert _value(arg) == str(job)


def test_other_arguments_are_hydras_to_read(tmp_path):
    plain = tmp_path / "run"
    plain.mkdir()
    args = ["-m", "seed=0,1", f"resume={plain}", f"ckpt={tmp_path}/a.ckpt,{tmp_path}/b.ckpt",
            "model.upsample=nearest", f"data.root={tmp_path}/x=1,y=2"]  # fmt: skip
    # a sweep over two checkpoints that do not exist as one path stays a sweep; only the
    # path keys are touched; a value Hydra reads as it is stays as given
    assert quote_path_values(args) == args
