#!/usr/bin/env python3
"""Prints a markdown table of test metrics from training runs, so docs/RESULTS.md copies nothing by hand.

  results_table.py LABEL=RUN_DIR [LABEL=RUN_DIR ...]

RUN_DIR is a `dgsr train --run_dir`: its summary.json (written when the run ends) gives the test row
at the checkpoint chosen on validation; metrics.jsonl gives the number of epochs run. A label of the
form `popularity@LABEL` prints the popularity baseline measured in that run (same test samples).
Columns: sampled Hit@10 / NDCG@10 (100 negatives), full-ranking Hit@10 / NDCG@10, chosen epoch,
training samples/s and minutes (training + validation) over all epochs run.
"""
import json
import os
import sys


def row(label, run_dir):
    pop = label.startswith("popularity@")
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    prefix = "popularity_test_" if pop else "test_"
    cells = [f"{100 * summary[prefix + k]:.2f}" for k in ("hit@10", "ndcg@10", "full_hit@10", "full_ndcg@10")]
    if pop:
        return f"| popularity | " + " | ".join(cells) + " | – | – | – |"
    # Per-epoch rows cover every epoch, also across resumed sessions (summary.json: the last one).
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl")) if line.strip()]
    seconds = sum(r["train_seconds"] for r in rows)
    rate = sum(r["samples_per_s"] * r["train_seconds"] for r in rows) / max(seconds, 1e-9)
    minutes = (seconds + sum(r.get("valid_seconds", 0) for r in rows)) / 60
    return (f"| {label} | " + " | ".join(cells) +
            f" | {summary['best_epoch']} of {len(rows)} | {rate:,.0f} | {minutes:.0f} |")


def main(args):
    if not args:
        print(__doc__)
        return 2
    print("| model (test, %) | Hit@10 | NDCG@10 | full Hit@10 | full NDCG@10 | chosen epoch | samples/s | train min |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for a in args:
        label, path = a.split("=", 1)
        print(row(label, path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
