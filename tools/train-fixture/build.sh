#!/usr/bin/env bash
# Regenerates test/fixtures/model/exact-tiny.gguf from nothing but this repository:
#   corpus (attribute world) -> vocabulary -> llama.cpp tokenization -> training -> GGUF
#   -> log-prob agreement check (verify.ts) -> attribute-following evidence (check.ts).
# Needs Node with the repository's node_modules and Debian's PyTorch:
#   apt-get install -y --no-install-recommends python3-torch libopenblas0-openmp
# Settings can be overridden from the environment; the defaults made the committed fixture
# (byte for byte on the development machine: same torch build, one thread).
set -euo pipefail
cd "$(dirname "$0")/../.."

SEED=${SEED:-1}            # corpus and training seed
EXAMPLES=${EXAMPLES:-60000} # training conversations
VOCAB=${VOCAB:-1024}
STEPS=${STEPS:-2000}
THREADS=${THREADS:-1}       # the committed fixture was trained with 1; more threads change the last bits
WEIGHTS=${WEIGHTS:-f16}     # f16 (2.9 MB, the fixture) or f32
OUT=${OUT:-test/fixtures/model/exact-tiny.gguf}
W=tools/train-fixture/work
PY=/usr/bin/python3
# Idle OpenMP threads sleep instead of spinning: much faster when other processes share the cores.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

mkdir -p "$W" "$(dirname "$OUT")"
echo "== corpus"
npx tsx tools/attribute-world/corpus.ts train --seed "$SEED" --n "$EXAMPLES" > "$W/corpus.jsonl"
echo "== vocabulary"
$PY tools/train-fixture/vocab.py "$W/corpus.jsonl" "$W/vocab.json" --size "$VOCAB" --gguf "$W/tokenizer.gguf"
echo "== tokenize with llama.cpp"
npx tsx tools/train-fixture/tokenize.ts "$W/tokenizer.gguf" "$W/corpus.jsonl" "$W/tokens.jsonl"
echo "== train"
$PY tools/train-fixture/train.py --tokens "$W/tokens.jsonl" --vocab "$W/vocab.json" --out "$OUT" --stats "$W/train.json" \
  --seed "$SEED" --steps "$STEPS" --threads "$THREADS" --dim 160 --layers 4 --heads 5 --ffn 448 --batch 32 --lr 3e-3 \
  $([ "$WEIGHTS" = f16 ] && echo --f16)
echo "== reference log-probs (PyTorch, from the GGUF's weights)"
$PY tools/train-fixture/reference.py "$OUT" "$W/tokens.jsonl" "$W/ref.json" --f32-copy "$W/model-f32.gguf"
echo "== verify against llama.cpp"
npx tsx tools/train-fixture/verify.ts "$OUT" "$W/ref.json" --f32-copy "$W/model-f32.gguf"
echo "== check attribute following"
npx tsx tools/train-fixture/check.ts "$OUT"
sha256sum "$OUT"
