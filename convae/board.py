"""convae-board: TensorBoard on a run or sweep folder, with every logged picture kept.

TensorBoard keeps a reservoir sample of 10 images per tag unless told otherwise, so the
step slider of a 20-epoch run (21 reconstruction grids) skips most validations and may
lose step 0, the untrained model the artifact story starts from. convae-board raises the
sample to more images than any run logs.
Everything after the folder goes to TensorBoard as is (``--port``, ``--bind_all``, ...).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

PROG = "convae-board"
# More images per tag than a run logs (a 30,000-step run validating every epoch logs 1,501
# grids); TensorBoard keeps only what exists. Not 0: TensorBoard 2.21 then serves no
# image at all. Scalars keep TensorBoard's default of 1,000 points per curve, which draws a
# 30,000-step curve as well as the whole would.
SAMPLES_PER_PLUGIN = "images=100000"


def tensorboard_argv(folder: Path, extra: Sequence[str] = ()) -> list[str]:
    """The TensorBoard command line convae-board runs."""
    return ["tensorboard", "--logdir", str(folder), "--samples_per_plugin",
            SAMPLES_PER_PLUGIN, *extra]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(f"usage: {PROG} FOLDER [tensorboard options]\n\n{__doc__}")
        sys.exit(0 if args else 2)
    folder = Path(args[0])
    if not folder.is_dir():
        print(f"{PROG}: error: {folder} is not a folder: expected a run or sweep folder "
              "(outputs/runs/<date>/<time> or outputs/multirun/<date>/<time>)",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    from tensorboard.main import run_main  # TensorBoard's own entry point, after our checks

    sys.argv = tensorboard_argv(folder, args[1:])
    run_main()


if __name__ == "__main__":
    main()
