#!/usr/bin/env python3
"""Checks an exported DGSR artifact on another libtorch (Python torch, CUDA when present).

Inputs come from `dgsr bench model --bench_export_inputs=DIR`: DIR/model.pt and DIR/inputs_b{1,8,64}.pt
(TorchScript modules holding the block tensors and the scores libtorch computed on CPU). Prints
one JSON object: the device, the largest score difference from the CPU scores, and forward+scoring
latency per batch size. Usage: python3 scripts/gpu_check.py DIR [DIR ...]
"""
import json
import statistics
import sys
import time

import torch


def check(directory, device):
    extra = {"dgsr/config.json": "", "dgsr/metadata.json": ""}
    model = torch.jit.load(f"{directory}/model.pt", map_location=device, _extra_files=extra)
    model.eval()
    config = json.loads(extra["dgsr/config.json"])
    result = {"dir": directory, "preset_local": config.get("local"), "layers": config.get("layers")}
    for batch in (1, 8, 64):
        inp = torch.jit.load(f"{directory}/inputs_b{batch}.pt", map_location=device)
        args = (inp.user_ids, inp.item_ids, inp.user_nbr, inp.user_len, inp.item_nbr, inp.item_len,
                inp.layer_users.tolist(), inp.layer_items.tolist(), int(inp.num_anchors), inp.last_item)
        with torch.no_grad():
            scores = model.score_all(model.forward(*args))
            diff = (scores.float().cpu() - inp.expected_scores.float().cpu()).abs().max().item()
            for _ in range(20):
                model.score_all(model.forward(*args))
            times = []
            for _ in range(200):
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                model.score_all(model.forward(*args))
                if device == "cuda":
                    torch.cuda.synchronize()
                times.append(1000 * (time.perf_counter() - t0))
        result[f"batch{batch}_max_abs_diff_vs_cpu_libtorch"] = diff
        result[f"batch{batch}_forward_p50_ms"] = statistics.median(times)
        result[f"batch{batch}_forward_p99_ms"] = sorted(times)[int(0.99 * (len(times) - 1))]
    return result


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = {"torch": torch.__version__, "device": device,
           "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
           "results": [check(d, device) for d in sys.argv[1:]]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
