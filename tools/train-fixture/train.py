"""Trains the tiny attribute-following model on llama.cpp-tokenized ChatML conversations and writes
it to GGUF (F32 weights unless --f16).

Usage: python3 train.py --tokens work/tokens.jsonl --vocab work/vocab.json --out MODEL.gguf --stats work/train.json
The loss is on the response tokens (including the final <|im_end|>) only. 500 conversations
are kept aside for a validation loss.
"""
import argparse
import json
import math
import os
import random
import time

# Idle OpenMP threads sleep instead of spinning: far faster when other processes share the cores.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from model import Config, Model, write_model_gguf  # noqa: E402


def load(path):
    rows = [json.loads(line) for line in open(path)]
    return [(r['p'] + r['r'], len(r['p'])) for r in rows]


def make_batch(examples):
    T = max(len(ids) for ids, _ in examples) - 1
    x = torch.zeros(len(examples), T, dtype=torch.long)
    y = torch.full((len(examples), T), -100, dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(examples):
        t = torch.tensor(ids)
        x[i, :len(ids) - 1] = t[:-1]
        y[i, n_prompt - 1:len(ids) - 1] = t[n_prompt:]
    return x, y


def batches(examples, batch_size, rng):
    """Endless batches of similar length (less padding): shuffle, sort in pools, shuffle batches."""
    while True:
        order = examples[:]
        rng.shuffle(order)
        pool = batch_size * 64
        for start in range(0, len(order), pool):
            chunk = sorted(order[start:start + pool], key=lambda e: len(e[0]))
            group = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
            rng.shuffle(group)
            yield from (make_batch(b) for b in group if len(b) == batch_size)


def loss_of(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-100)


@torch.no_grad()
def evaluate(model, examples, batch_size=64):
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        x, y = make_batch(examples[i:i + batch_size])
        n = int((y != -100).sum())
        total += float(loss_of(model, x, y)) * n
        count += n
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tokens', required=True)
    ap.add_argument('--vocab', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--stats', required=True)
    ap.add_argument('--f16', action='store_true')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--steps', type=int, default=3000)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--dim', type=int, default=192)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--heads', type=int, default=6)
    ap.add_argument('--ffn', type=int, default=512)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    vocab = json.load(open(args.vocab, encoding='utf-8'))
    examples = load(args.tokens)
    rng.shuffle(examples)
    val, train = examples[:500], examples[500:]
    c = Config(vocab=len(vocab['tokens']), dim=args.dim, layers=args.layers, heads=args.heads, ffn=args.ffn)
    model = Model(c)
    n_params = sum(p.numel() for p in model.parameters())
    print(f'config {c}, {n_params / 1e6:.2f}M parameters, {len(train)} training examples', flush=True)

    decay = [p for p in model.parameters() if p.dim() == 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': rest, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    warmup = min(200, args.steps // 10)

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))

    start, smooth = time.time(), None
    stream = batches(train, args.batch, rng)
    for step in range(args.steps):
        for group in opt.param_groups:
            group['lr'] = lr_at(step)
        x, y = next(stream)
        loss = loss_of(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        smooth = float(loss) if smooth is None else 0.98 * smooth + 0.02 * float(loss)
        if step % 100 == 0 or step == args.steps - 1:
            print(f'step {step:5d}  loss {smooth:.4f}  lr {lr_at(step):.2e}  {time.time() - start:.0f}s', flush=True)
    train_time = time.time() - start

    model.eval()
    val_loss = evaluate(model, val)
    print(f'trained {args.steps} steps in {train_time:.0f}s; final train loss (smoothed) {smooth:.4f}; '
          f'validation loss {val_loss:.4f} per response token', flush=True)
    write_model_gguf(model, vocab, args.out, f16=args.f16)
    json.dump({'steps': args.steps, 'batch': args.batch, 'lr': args.lr, 'seed': args.seed, 'threads': args.threads,
               'train_seconds': round(train_time), 'train_loss': round(smooth, 4), 'val_loss': round(val_loss, 4),
               'params': n_params, 'config': c.__dict__}, open(args.stats, 'w'), indent=1)


if __name__ == '__main__':
    main()
