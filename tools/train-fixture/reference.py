"""Reference next-token log-probs from a GGUF's weights, computed in PyTorch, for verify.ts.

Usage: python3 reference.py MODEL.gguf TOKENS.jsonl OUT.json [--n 6] [--seed 1] [--f32-copy COPY.gguf]
Picks n tokenized conversations at random (seeded) and stores, per position, the log-prob of
the actual next token twice: in plain float32 ("logprobs_f32"), which llama.cpp should match
with an F32 KV cache, and with the float16 roundings of llama.cpp's default F16 KV cache
emulated ("logprobs"). --f32-copy also writes the same weights as an all-F32 GGUF: llama.cpp
must match PyTorch on it almost exactly, which checks the export apart from F16 arithmetic.
"""
import argparse
import json
import random

import torch

from model import load_model_gguf, write_model_gguf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('tokens')
    ap.add_argument('out')
    ap.add_argument('--n', type=int, default=6)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--f32-copy')
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = load_model_gguf(args.model)
    rows = [json.loads(line) for line in open(args.tokens)]
    refs = []
    with torch.no_grad():
        for row in random.Random(args.seed).sample(rows, args.n):
            ids = row['p'] + row['r']
            x = torch.tensor([ids])
            emulated = model(x, llama_cpp_numerics=True).log_softmax(-1)[0]
            plain = model(x).log_softmax(-1)[0]
            refs.append({'ids': ids, 'prompt_tokens': len(row['p']),
                         'logprobs': [float(emulated[i, ids[i + 1]]) for i in range(len(ids) - 1)],
                         'logprobs_f32': [float(plain[i, ids[i + 1]]) for i in range(len(ids) - 1)]})
    json.dump({'model': args.model, 'examples': refs}, open(args.out, 'w'))
    if args.f32_copy:
        write_model_gguf(model, model.vocab, args.f32_copy, f16=False)
    print(f'wrote {len(refs)} reference conversations to {args.out}')


if __name__ == '__main__':
    main()
