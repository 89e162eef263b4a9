// Measures dsv4 serve on a model: 16 concurrent streams (32 tokens each) and
// their aggregate tok/s, the server's decode rows per second (compare with
// `dsv4 bench -m DIR --parallel 16`), and the time to first token of a
// 2,000-token prompt, prefix-cache miss then hit (a second request that
// shares its system prompt). Prints two JSON lines.
//   node benchmarks/serve/serve_bench.mjs build/dsv4 MODEL_DIR
// DSV4_SERVE_OPTIONS adds server options (e.g. "--prefix-cache 0").
import { spawn } from 'node:child_process';
const [bin, model] = process.argv.slice(2);
const server = spawn(bin, ['serve', '-m', model, '--port', '0', '--parallel', '16', ...(process.env.DSV4_SERVE_OPTIONS ? process.env.DSV4_SERVE_OPTIONS.split(' ') : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
let port = null, log = '';
server.stderr.on('data', d => { log += d; const m = /listening on http:\/\/[\d.]+:(\d+)/.exec(log); if (m) port = m[1]; });
const sleep = ms => new Promise(r => setTimeout(r, ms));
for (let i = 0; i < 600 && !port; i++) await sleep(100);
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 600; i++) { try { if ((await fetch(base + '/health')).ok) break; } catch {} await sleep(100); }
async function stream(body) {
  const t0 = performance.now(); let first = null, tokens = 0;
  const r = await fetch(base + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
  const reader = r.body.getReader(); const dec = new TextDecoder(); let buf = '';
  for (;;) { const { value, done } = await reader.read(); if (done) break; buf += dec.decode(value);
    let i; while ((i = buf.indexOf('\n\n')) >= 0) { const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue; const c = JSON.parse(ev.slice(6));
      if (c.usage) tokens = c.usage.completion_tokens;
      else if (first === null && c.choices[0].delta && (c.choices[0].delta.content || c.choices[0].delta.reasoning_content)) first = performance.now(); } }
  return { ttft: (first ?? performance.now()) - t0, total: performance.now() - t0, tokens };
}
const topics = ['rivers','volcanoes','bridges','tea','chess','comets','forests','glass','owls','trains','salt','maps','clocks','bees','deserts','violins'];
const prompt = i => `Write a long and detailed essay about ${topics[i]}, covering history, science, culture and a few surprising facts. `.repeat(2);
await stream({ messages: [{ role: 'user', content: 'warm up' }], max_tokens: 2, thinking: { type: 'disabled' } });
const t0 = performance.now();
const results = await Promise.all(topics.map((_, i) => stream({ messages: [{ role: 'user', content: prompt(i) }], max_tokens: 32, temperature: 0.8, thinking: { type: 'disabled' } })));
const wall = (performance.now() - t0) / 1000;
const total = results.reduce((a, r) => a + r.tokens, 0);
const metrics = await (await fetch(base + '/metrics')).text();
const decode = metrics.split("\n").find(l => l.startsWith("dsv4_decode_tokens_per_second ")).split(" ")[1];
console.log(JSON.stringify({ streams: 16, tokens: total, wall_s: wall, aggregate_tok_s: total / wall, server_decode_rows_per_s: Number(decode) }));
let system = ''; while (system.length < 10800) system += 'You review supply contracts: find the parties, the obligations, the deadlines, the penalties and every exception. ';
const miss = await stream({ messages: [{ role: 'system', content: system }, { role: 'user', content: 'Clause 1: the buyer pays within 30 days.' }], max_tokens: 1, thinking: { type: 'disabled' } });
const hit = await stream({ messages: [{ role: 'system', content: system }, { role: 'user', content: 'Clause 2: the seller ships within 10 days.' }], max_tokens: 1, thinking: { type: 'disabled' } });
const tok = await (await fetch(base + '/tokenize', { method: 'POST', body: JSON.stringify({ messages: [{ role: 'system', content: system }, { role: 'user', content: 'Clause 1: the buyer pays within 30 days.' }], thinking: { type: 'disabled' } }) })).json();
console.log(JSON.stringify({ prompt_tokens: tok.count, ttft_miss_s: miss.ttft / 1000, ttft_hit_s: hit.ttft / 1000, ratio: hit.ttft / miss.ttft }));
server.kill('SIGTERM');
