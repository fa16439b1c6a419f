"""The PyTorch peer of `tessera bench engine --backend webgpu` on a GPU machine.

Hugging Face transformers `generate` (eager, bf16, random weights) on a Llama
model of the same shape as the Tessera benchmark's synthetic one: prefill
tok/s of a prompt and decode tok/s at each batch size, as JSON on stdout.

Usage: python3 torch_peer.py --shape llama-3.1-8b --batches 1,16 --prompt 128 --new 64
"""
import argparse
import json
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    # Same as src/synth/presets.ts.
    "tinyllama-1.1b": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4, rope_theta=10000.0, tie_word_embeddings=False),
    "llama-3.1-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0, tie_word_embeddings=False),
}


def timed(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new", type=int, default=64)
    args = parser.parse_args()

    config = LlamaConfig(**SHAPES[args.shape], max_position_embeddings=4096, rms_norm_eps=1e-5)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    model.eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    result = {
        "kind": "torch-peer",
        "shape": args.shape,
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "dtype": "bf16",
        "weightBytes": weight_bytes,
        "promptTokens": args.prompt,
        "newTokens": args.new,
        "batches": {},
    }
    generation = dict(do_sample=False, pad_token_id=0, eos_token_id=None)
    for batch in [int(b) for b in args.batches.split(",") if b]:
        ids = torch.randint(100, config.vocab_size - 100, (batch, args.prompt), device="cuda")
        with torch.no_grad():
            model.generate(ids, max_new_tokens=4, min_new_tokens=4, **generation)  # warm-up
            _, prefill = timed(lambda: model.generate(ids, max_new_tokens=1, min_new_tokens=1, **generation))
            out, total = timed(lambda: model.generate(ids, max_new_tokens=args.new, min_new_tokens=args.new, **generation))
        generated = out.shape[1] - args.prompt
        decode_seconds = max(total - prefill, 1e-9)
        result["batches"][str(batch)] = {
            "prefillTokensPerSecond": batch * args.prompt / prefill,
            "decodeTokensPerSecond": batch * (generated - 1) / decode_seconds,
            "msPerDecodeStep": 1000 * decode_seconds / max(generated - 1, 1),
            "generated": generated,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
