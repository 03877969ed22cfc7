"""A tiny llama-architecture model in PyTorch, laid out exactly like llama.cpp's LLM_ARCH_LLAMA,
and its export to GGUF with our vocabulary and a ChatML chat template.

llama.cpp details mirrored here: RMSNorm with weight, RoPE "NORM" mode (rotates adjacent pairs
(2i, 2i+1)), attention scale 1/sqrt(head_dim), SwiGLU feed-forward, output projection tied to
the token embedding (no `output` tensor, so llama.cpp reuses token_embd).
"""
import math
from dataclasses import dataclass, asdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import gguf

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass
class Config:
    vocab: int = 1024
    dim: int = 192
    layers: int = 4
    heads: int = 6
    ffn: int = 512
    context: int = 1024
    eps: float = 1e-5
    rope_base: float = 10000.0


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    """x: (B, T, H, D); rotates pairs (x[2i], x[2i+1]) by pos * base^(-2i/D)."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.head_dim = c.heads, c.dim // c.heads
        self.attn_norm, self.ffn_norm = RMSNorm(c.dim, c.eps), RMSNorm(c.dim, c.eps)
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(c.dim, c.dim, bias=False) for _ in range(4))
        self.gate, self.up = nn.Linear(c.dim, c.ffn, bias=False), nn.Linear(c.dim, c.ffn, bias=False)
        self.down = nn.Linear(c.ffn, c.dim, bias=False)

    def forward(self, x, cos, sin, mask, r):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = r(rope(self.wq(h).view(B, T, self.heads, self.head_dim), cos, sin).transpose(1, 2))
        k = r(rope(self.wk(h).view(B, T, self.heads, self.head_dim), cos, sin).transpose(1, 2))
        v = r(self.wv(h).view(B, T, self.heads, self.head_dim).transpose(1, 2))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        y = (r(att.softmax(-1)) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.wo(y)
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c.vocab, c.dim)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = RMSNorm(c.dim, c.eps)
        nn.init.normal_(self.embed.weight, std=0.02)
        for name, p in self.named_parameters():
            if p.dim() == 2 and name != 'embed.weight':
                nn.init.normal_(p, std=0.02 / (math.sqrt(2 * c.layers) if name.endswith(('wo.weight', 'down.weight')) else 1))

    def forward(self, ids, llama_cpp_numerics=False):
        """Logits (B, T, vocab). With llama_cpp_numerics, rounds to float16 where llama.cpp does with
        its default F16 KV cache (for checking the GGUF, not for training): the cached K and V, and
        the queries and attention probabilities that get multiplied with them."""
        r = (lambda t: t.half().float()) if llama_cpp_numerics else (lambda t: t)
        B, T = ids.shape
        hd = self.c.dim // self.c.heads
        freqs = self.c.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
        angles = torch.arange(T, dtype=torch.float32)[:, None] * freqs[None, :]
        cos, sin = angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]
        mask = torch.full((T, T), float('-inf')).triu(1)
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, cos, sin, mask, r)
        return self.norm(x) @ self.embed.weight.T


def load_model_gguf(path):
    """The Model stored in a GGUF written by write_model_gguf (weights as float32), with the file's
    vocabulary attached as model.vocab."""
    meta, t = gguf.read_gguf(path)
    a = 'llama.'
    c = Config(vocab=int(meta[a + 'vocab_size']), dim=int(meta[a + 'embedding_length']), layers=int(meta[a + 'block_count']),
               heads=int(meta[a + 'attention.head_count']), ffn=int(meta[a + 'feed_forward_length']),
               context=int(meta[a + 'context_length']), eps=float(meta[a + 'attention.layer_norm_rms_epsilon']),
               rope_base=float(meta[a + 'rope.freq_base']))
    model = Model(c)
    names = {'embed.weight': 'token_embd.weight', 'norm.weight': 'output_norm.weight'}
    ggml = {'attn_norm': 'attn_norm', 'wq': 'attn_q', 'wk': 'attn_k', 'wv': 'attn_v', 'wo': 'attn_output',
            'ffn_norm': 'ffn_norm', 'gate': 'ffn_gate', 'up': 'ffn_up', 'down': 'ffn_down'}
    for i in range(c.layers):
        for ours, theirs in ggml.items():
            names[f'blocks.{i}.{ours}.weight'] = f'blk.{i}.{theirs}.weight'
    model.load_state_dict({k: torch.from_numpy(t[v].copy()) for k, v in names.items()})
    model.vocab = {'tokens': meta['tokenizer.ggml.tokens'], 'scores': meta['tokenizer.ggml.scores'],
                   'types': meta['tokenizer.ggml.token_type']}
    return model.eval()


def write_model_gguf(model, vocab, path, name='EXACT tiny attribute model', f16=False):
    c = model.c
    assert c.vocab == len(vocab['tokens'])
    ids = {t: i for i, t in enumerate(vocab['tokens'])}
    wtype = np.float16 if f16 else np.float32
    u32, f32 = gguf.UINT32, gguf.FLOAT32
    meta = [
        ('general.architecture', gguf.STRING, 'llama'),
        ('general.name', gguf.STRING, name),
        ('general.file_type', u32, 1 if f16 else 0),
        ('llama.vocab_size', u32, c.vocab),
        ('llama.context_length', u32, c.context),
        ('llama.embedding_length', u32, c.dim),
        ('llama.block_count', u32, c.layers),
        ('llama.feed_forward_length', u32, c.ffn),
        ('llama.attention.head_count', u32, c.heads),
        ('llama.attention.head_count_kv', u32, c.heads),
        ('llama.attention.layer_norm_rms_epsilon', f32, c.eps),
        ('llama.rope.freq_base', f32, c.rope_base),
        ('llama.rope.dimension_count', u32, c.dim // c.heads),
        ('tokenizer.ggml.model', gguf.STRING, 'llama'),
        ('tokenizer.ggml.tokens', gguf.ARRAY, (gguf.STRING, vocab['tokens'])),
        ('tokenizer.ggml.scores', gguf.ARRAY, (f32, vocab['scores'])),
        ('tokenizer.ggml.token_type', gguf.ARRAY, (gguf.INT32, vocab['types'])),
        ('tokenizer.ggml.bos_token_id', u32, ids['<s>']),
        ('tokenizer.ggml.eos_token_id', u32, ids['<|im_end|>']),
        ('tokenizer.ggml.unknown_token_id', u32, ids['<unk>']),
        ('tokenizer.ggml.padding_token_id', u32, ids['</s>']),
        ('tokenizer.ggml.add_bos_token', gguf.BOOL, False),
        ('tokenizer.ggml.add_eos_token', gguf.BOOL, False),
        ('tokenizer.ggml.add_space_prefix', gguf.BOOL, False),
        ('tokenizer.chat_template', gguf.STRING, CHAT_TEMPLATE),
    ] + [(f'exact.config.{k}', gguf.STRING, str(v)) for k, v in asdict(c).items()]

    def w(t):
        return t.detach().float().numpy().astype(wtype)

    def norm(t):
        return t.detach().float().numpy().astype(np.float32)

    tensors = [('token_embd.weight', w(model.embed.weight))]
    for i, b in enumerate(model.blocks):
        tensors += [
            (f'blk.{i}.attn_norm.weight', norm(b.attn_norm.weight)),
            (f'blk.{i}.attn_q.weight', w(b.wq.weight)),
            (f'blk.{i}.attn_k.weight', w(b.wk.weight)),
            (f'blk.{i}.attn_v.weight', w(b.wv.weight)),
            (f'blk.{i}.attn_output.weight', w(b.wo.weight)),
            (f'blk.{i}.ffn_norm.weight', norm(b.ffn_norm.weight)),
            (f'blk.{i}.ffn_gate.weight', w(b.gate.weight)),
            (f'blk.{i}.ffn_up.weight', w(b.up.weight)),
            (f'blk.{i}.ffn_down.weight', w(b.down.weight)),
        ]
    tensors.append(('output_norm.weight', norm(model.norm.weight)))
    gguf.write_gguf(path, meta, tensors)
