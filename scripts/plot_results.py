#!/usr/bin/env python3
"""Renders the PNGs in docs/ from training logs and evaluation JSON (Debian's python3-matplotlib).

  plot_results.py curves OUT.png LABEL=run_dir/metrics.jsonl [LABEL=...]
      validation Hit@10 / NDCG@10 (sampled and full ranking) and training loss per epoch
  plot_results.py groups OUT.png LABEL=eval.json [LABEL=...]
      test NDCG@10 by history length (paper Fig. 8) from `dgsr eval --json` outputs
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GROUPS = ["1-4", "5-9", "10-19", "20-49", "50+"]


def pairs(args):
    for a in args:
        label, path = a.split("=", 1)
        yield label, path


def curves(out, runs):
    # One colour per run; Hit@10 solid with circles, NDCG@10 dashed with squares; one legend below.
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for k, (label, path) in enumerate(runs):
        rows = [json.loads(line) for line in open(path) if line.strip()]
        epochs = [r["epoch"] for r in rows]
        colour = f"C{k}"
        for ax, prefix in ((axes[0], "valid_"), (axes[1], "valid_full_")):
            ax.plot(epochs, [100 * r[prefix + "hit@10"] for r in rows], color=colour, marker="o", ms=4)
            ax.plot(epochs, [100 * r[prefix + "ndcg@10"] for r in rows], color=colour, marker="s", ms=4, ls="--")
        axes[2].plot(epochs, [r["train_loss"] for r in rows], color=colour, marker="o", ms=4, label=label)
    axes[0].set_title("validation, 100 sampled negatives (%)\nsolid: Hit@10, dashed: NDCG@10")
    axes[1].set_title("validation, full ranking (%)\nsolid: Hit@10, dashed: NDCG@10")
    axes[2].set_title("training loss (softmax CE over all items)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    handles, labels = axes[2].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(runs), 3), fontsize=9)
    rows_of_legend = (len(runs) + 2) // 3
    fig.tight_layout(rect=(0, 0.06 * rows_of_legend + 0.02, 1, 1))
    fig.savefig(out, dpi=110)


def groups(out, runs):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / max(1, len(runs))
    for k, (label, path) in enumerate(runs):
        r = json.load(open(path))
        xs = [g + k * width for g in range(len(GROUPS))]
        axes[0].bar(xs, [100 * r[f"group_{g}_ndcg@10"] for g in GROUPS], width, label=label)
        axes[1].bar(xs, [100 * r[f"group_{g}_full_ndcg@10"] for g in GROUPS], width, label=label)
    for ax, title in zip(axes, ["test NDCG@10, 100 sampled negatives (%)", "test NDCG@10, full ranking (%)"]):
        ax.set_xticks([g + 0.4 - width / 2 for g in range(len(GROUPS))])
        ax.set_xticklabels([f"{g} items" for g in GROUPS])
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
    # One legend below both charts, where it cannot hide a bar.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(runs), fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out, dpi=110)


def main():
    kind, out, rest = sys.argv[1], sys.argv[2], list(pairs(sys.argv[3:]))
    {"curves": curves, "groups": groups}[kind](out, rest)


if __name__ == "__main__":
    main()
