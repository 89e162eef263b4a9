// Reference run of the Hugging Face tokenizers library (Rust core, through its
// Node binding: `npm install tokenizers`) over the same JSONL as
// `dsv4 tokenize`: rows with "text" in, the same rows with "ids" out, using
// the batch API (encodeBatch, which runs on all cores). Prints the
// whole-process time and throughput to stderr.
//
//   node benchmarks/hf_tokenizers_baseline.js TOKENIZER.json IN.jsonl > OUT.jsonl
//
// Used for docs/performance-tokenizer.md and to check that dsv4's ids are
// identical on texts the fixtures do not contain; not part of the test suite.
const fs = require('fs');

async function main() {
  const start = process.hrtime.bigint();
  const [tokenizerPath, inputPath] = process.argv.slice(2);
  if (!tokenizerPath || !inputPath) {
    console.error('usage: node hf_tokenizers_baseline.js TOKENIZER.json IN.jsonl > OUT.jsonl');
    process.exit(2);
  }
  const { Tokenizer } = require('tokenizers');
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  const input = fs.readFileSync(inputPath);
  const rows = input.toString('utf8').split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line));
  const loaded = process.hrtime.bigint();
  const encodings = await tokenizer.encodeBatch(rows.map((row) => row.text), { addSpecialTokens: false });
  const encoded = process.hrtime.bigint();
  const out = rows.map((row, i) => JSON.stringify({ ...row, ids: Array.from(encodings[i].getIds()) })).join('\n');
  process.stdout.write(out + '\n');
  const end = process.hrtime.bigint();
  const seconds = (t) => Number(t) / 1e9;
  console.error(
    `hf tokenizers: ${rows.length} rows, ${input.length} bytes; load+parse ${seconds(loaded - start).toFixed(3)} s, ` +
      `encodeBatch ${seconds(encoded - loaded).toFixed(3)} s, total ${seconds(end - start).toFixed(3)} s, ` +
      `${(input.length / 1e6 / seconds(end - start)).toFixed(2)} MB/s`,
  );
}

main();
