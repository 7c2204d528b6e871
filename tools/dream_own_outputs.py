"""Record what Dream's own code outputs on ../shared/data/dream_tiny with *this* machine's torch.

reference.json was made by Dream's modeling_dream.py and generation_utils.py on transformers 4.46.2
and some CPU build of torch. In bfloat16, six of its `diffusion_generate` runs depend on the torch
build's bf16 kernels (ties and rounding of confidences): Dream's own code, run here on torch
2.13.0+cpu, gives other tokens for exactly those six. This script records Dream's outputs here so
tests/test_dream_fidelity.py can hold ours to them on the same torch.

It runs the checkpoint's remote code, so it is a developer tool, never imported by dream-agent, and
needs its own environment with Dream's transformers (this machine's torch is reused):

    python -m venv --system-site-packages /tmp/venv446 && /tmp/venv446/bin/pip install transformers==4.46.2
    cp -r ../shared/data/dream_tiny /tmp/dream_tiny   # a writable copy: remote code is cached beside it
    /tmp/venv446/bin/python tools/dream_own_outputs.py /tmp/dream_tiny tests/data/dream_tiny_bf16_torch.json
"""

import json
import sys

import torch
from transformers import AutoModel


def main(model_dir: str, out: str) -> None:
    ref = json.load(open(f"{model_dir}/reference.json"))
    prompt = ref["chat"]["input_ids"]
    model = AutoModel.from_pretrained(model_dir, torch_dtype=torch.bfloat16, trust_remote_code=True).eval()
    runs = {}
    for i, run in enumerate(ref["runs"]):
        if run["dtype"] != "bfloat16":
            continue
        if "batch_left_padded" in run:
            batch = run["batch_left_padded"]
            ids, mask = torch.tensor(batch["input_ids"]), torch.tensor(batch["attention_mask"])
        else:
            ids = torch.tensor([prompt])
            mask = torch.ones_like(ids)
        torch.manual_seed(run["seed"])
        runs[str(i)] = model.diffusion_generate(ids, attention_mask=mask, **run["settings"]).tolist()
    differs = [i for i, seqs in runs.items() if seqs != (ref["runs"][int(i)].get("sequences") or [ref["runs"][int(i)]["sequence"]])]
    json.dump({"torch": torch.__version__, "made_with": "tools/dream_own_outputs.py (Dream's remote code, transformers 4.46.2)",
               "differs_from_reference": differs, "runs": {i: runs[i] for i in differs}}, open(out, "w"), indent=1)
    print(f"torch {torch.__version__}: {len(differs)} of {len(runs)} bf16 runs differ from reference.json: {differs}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
