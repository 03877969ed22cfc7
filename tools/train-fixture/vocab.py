"""Learns a SentencePiece-style ("llama") vocabulary from the corpus.

Layout: 0 <unk>, 1 <s>, 2 </s>, 3 <|im_start|>, 4 <|im_end|> (control tokens), then the 256 byte
tokens <0x00>..<0xFF> (fallback for any character not in the vocabulary), then single characters
(printable ASCII, newline and whatever else the corpus uses; a space is U+2581), then merges
learned BPE-style inside words, with score -rank so llama.cpp applies frequent merges first.
Merged tokens only hold a leading U+2581, never one inside, so no token spans two words.

Usage: python3 vocab.py CORPUS.jsonl OUT.json [--size 1024] [--gguf TOKENIZER.gguf]
(--gguf also writes a model with random weights and this vocabulary, for tokenizing with llama.cpp.)
"""
import argparse
import collections
import json
import re

SPACE = '\u2581'
SPECIALS = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>']
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6
CHUNK = re.compile(f'{SPACE}?[A-Za-z]+|{SPACE}?[0-9]+|{SPACE}?[^A-Za-z0-9{SPACE}\\n]|\\n|{SPACE}')


def corpus_texts(path):
    for line in open(path, encoding='utf-8'):
        row = json.loads(line)
        yield from (row['user'], row['assistant'], row.get('system') or '', 'user\n', 'assistant\n', 'system\n')


def learn(path, size):
    words = collections.Counter()
    chars = set(chr(c) for c in range(33, 127)) | {SPACE, '\n'}
    for text in corpus_texts(path):
        text = text.replace(' ', SPACE)
        chars.update(text)
        words.update(CHUNK.findall(text))
    tokens = SPECIALS + [f'<0x{b:02X}>' for b in range(256)] + sorted(chars)
    types = [UNKNOWN] + [CONTROL] * 4 + [BYTE] * 256 + [NORMAL] * len(chars)
    scores = [0.0] * len(tokens)
    splits = {w: list(w) for w in words}
    while len(tokens) < size:
        pairs = collections.Counter()
        for w, n in words.items():
            s = splits[w]
            for a, b in zip(s, s[1:]):
                pairs[a, b] += n
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merged = a + b
        for w in words:
            s, i = splits[w], 0
            while i < len(s) - 1:
                if s[i] == a and s[i + 1] == b:
                    s[i:i + 2] = [merged]
                i += 1
        tokens.append(merged)
        types.append(NORMAL)
        scores.append(-float(len(tokens)))
    return {'tokens': tokens, 'types': types, 'scores': scores}


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('corpus')
    ap.add_argument('out')
    ap.add_argument('--size', type=int, default=1024)
    ap.add_argument('--gguf')
    args = ap.parse_args()
    vocab = learn(args.corpus, args.size)
    assert len(set(vocab['tokens'])) == len(vocab['tokens']), 'tokens must be unique'
    json.dump(vocab, open(args.out, 'w', encoding='utf-8'), ensure_ascii=False)
    print(f"vocab: {len(vocab['tokens'])} tokens, last merges: {vocab['tokens'][-5:]}")
    if args.gguf:
        import torch
        from model import Config, Model, write_model_gguf
        torch.manual_seed(0)
        write_model_gguf(Model(Config(vocab=len(vocab['tokens']), dim=64, layers=1, heads=2, ffn=128)), vocab, args.gguf, f16=False)
