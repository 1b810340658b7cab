"""convae-bench (convae/bench/cli.py): convae's training speed against a plain loop, fp32
and the hardware's roof. timing.py times the paths, roofline.py measures the FLOPs and the
matrix units' roof, text.py writes the report."""
