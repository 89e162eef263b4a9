// End-to-end test of `dsv4 serve` through the official `openai` npm package
// (v4): starts real servers on 127.0.0.1 (--port 0, the port read from the
// "listening on" line), runs one check after another, prints a line per check
// and exits nonzero on the first failure. Every wait is bounded; the whole run
// is capped at 120 s; the servers are killed on every way out.
//
//   DSV4_NODE_DIR=DIR node tests/serve/sdk_test.mjs BIN MODEL_DIR
//
// DIR is the npm prefix that holds node_modules/openai (tests/serve/run.sh
// installs it there); without it `openai` is resolved from this file up.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [BIN, MODEL] = process.argv.slice(2);
if (!BIN || !MODEL) {
  console.error('usage: node sdk_test.mjs DSV4_BIN MODEL_DIR');
  process.exit(2);
}
const require = createRequire(process.env.DSV4_NODE_DIR ? path.join(path.resolve(process.env.DSV4_NODE_DIR), 'noop.js')
                                                        : import.meta.url);
const OpenAI = require('openai');

// Time limits stretch by DSV4_SERVE_TIME_SCALE for a sanitized (slower) server.
const SCALE = Number(process.env.DSV4_SERVE_TIME_SCALE || 1);
const ms = (n) => n * SCALE;
const OVERALL_MS = ms(120_000);
const MODEL_NAME = 'dsv4-test';
const started = Date.now();
const servers = new Set();

function killAll() {
  for (const s of servers) {
    try { s.proc.kill('SIGKILL'); } catch {}
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(130); });

function fail(message) {
  console.log(`FAIL ${message}`);
  for (const s of servers) {
    const tail = s.stderr().split('\n').slice(-15).join('\n');
    if (tail.trim()) console.log(`--- ${s.name} stderr (tail) ---\n${tail}`);
  }
  killAll();
  process.exit(1);
}
setTimeout(() => fail(`the whole test took over ${OVERALL_MS / 1000} s`), OVERALL_MS);
process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${e?.stack || e}`));

class CheckFailed extends Error {}
function assert(cond, message) {
  if (!cond) throw new CheckFailed(message);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([promise, new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  })]).finally(() => clearTimeout(t));
}

// A sanitized server (DSV4_SERVE_SANITIZER) runs this file for its threads: the checks of what one
// request computes (rendering, reasoning modes, tools, forced calls) run in the plain build's run only.
const SANITIZED = Boolean(process.env.DSV4_SERVE_SANITIZER);
async function checkUnlessSanitized(name, fn) {
  if (SANITIZED) console.log(`skip ${name} (the plain build's run checks it)`);
  else await check(name, fn);
}

async function check(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)${note ? ` - ${note}` : ''}`);
  } catch (e) {
    fail(`${name}: ${e instanceof CheckFailed ? e.message : e?.stack || e}`);
  }
}

// --- servers ---------------------------------------------------------------

async function startServer(name, extra) {
  const args = ['serve', '-m', MODEL, '--host', '127.0.0.1', '--port', '0', '--model-name', MODEL_NAME, ...extra];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
  const server = { name, proc, exit, stderr: () => err, exited: () => exited };
  servers.add(server);
  proc.stderr.setEncoding('utf8');
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name}: no "listening on" line on stderr within ${ms(30)} s`)), ms(30_000));
    proc.stderr.on('data', (d) => {
      err += d;
      if (err.length > 1 << 20) err = err.slice(-(1 << 19));
      const m = /dsv4 serve: listening on http:\/\/([^\s:]+):(\d+)/.exec(err);
      if (m) { clearTimeout(t); resolve(Number(m[2])); }
    });
    proc.on('error', (e) => { clearTimeout(t); reject(new Error(`${name}: cannot start ${BIN}: ${e.message}`)); });
    exit.then((x) => { clearTimeout(t); reject(new Error(`${name} exited (${x.code ?? x.signal}) before listening`)); });
  });
  server.port = port;
  server.base = `http://127.0.0.1:${port}`;
  // It listens before the model is loaded: /health is 503 until then.
  const deadline = Date.now() + ms(30_000);
  for (;;) {
    const r = await fetch(`${server.base}/health`).catch(() => null);
    if (r?.status === 200) {
      const j = await r.json();
      assert(j.status === 'ok', `${name}: /health said ${JSON.stringify(j)}`);
      break;
    }
    if (r) await r.arrayBuffer();
    assert(Date.now() < deadline, `${name}: /health not 200 within 30 s (last: ${r?.status})`);
    await sleep(100);
  }
  return server;
}

async function stopServer(server, signal) {
  server.proc.kill(signal);
  const x = await withTimeout(server.exit, ms(15_000), `${server.name} after ${signal}`).catch((e) => {
    server.proc.kill('SIGKILL');
    throw e;
  });
  assert(x.code === 0, `${server.name} exited with ${x.code ?? x.signal} after ${signal}, not 0`);
  servers.delete(server);
}

// VmRSS, RssAnon and RssFile of a server, in bytes.
function rss(server) {
  const status = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
  const out = {};
  for (const key of ['VmRSS', 'RssAnon', 'RssFile']) {
    const m = new RegExp(`${key}:\\s+(\\d+)\\s+kB`).exec(status);
    assert(m, `no ${key} in /proc/PID/status`);
    out[key] = Number(m[1]) * 1024;
  }
  return out;
}

async function metric(server, name, headers = {}) {
  const r = await fetch(`${server.base}/metrics`, { headers });
  assert(r.status === 200, `/metrics: HTTP ${r.status}`);
  const text = await r.text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  assert(m, `/metrics has no sample of ${name}`);
  return Number(m[1]);
}

// --- helpers ---------------------------------------------------------------

function client(server, apiKey = 'none') {
  return new OpenAI({ baseURL: `${server.base}/v1`, apiKey, maxRetries: 0, timeout: ms(60_000) });
}

// Reads a chat stream to its end: the concatenated deltas and what came last.
async function collect(stream, { abortAfter = 0 } = {}) {
  const out = { content: '', reasoning: '', finish: null, usage: null, chunks: 0, toolCalls: [], roles: [] };
  for await (const chunk of stream) {
    out.chunks++;
    assert(chunk.object === 'chat.completion.chunk' || chunk.object === 'text_completion',
           `chunk object is ${JSON.stringify(chunk.object)}`);
    if (chunk.usage) out.usage = chunk.usage;
    for (const c of chunk.choices ?? []) {
      const d = c.delta ?? {};
      if (d.role) out.roles.push(d.role);
      if (typeof d.content === 'string') out.content += d.content;
      if (typeof d.reasoning_content === 'string') out.reasoning += d.reasoning_content;
      if (d.tool_calls) out.toolCalls.push(...d.tool_calls);
      if (typeof c.text === 'string') out.content += c.text;
      if (c.finish_reason) out.finish = c.finish_reason;
    }
    if (abortAfter && out.chunks >= abortAfter) {
      stream.controller.abort();
      break;
    }
  }
  return out;
}

async function expectStatus(promise, ErrorClass, status, what) {
  try {
    await promise;
  } catch (e) {
    assert(e instanceof ErrorClass, `${what}: expected ${ErrorClass.name}, got ${e?.constructor?.name}: ${e?.message}`);
    assert(e.status === status, `${what}: expected HTTP ${status}, got ${e.status}`);
    return e;
  }
  throw new Error(`${what}: expected HTTP ${status}, the request succeeded`);
}

function isErrorObject(j) {
  return j && typeof j.error === 'object' && typeof j.error.message === 'string' && j.error.message.length > 0 &&
         typeof j.error.type === 'string' && 'param' in j.error && 'code' in j.error;
}

async function pool(count, width, fn) {
  const results = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await fn(i);
    }
  }));
  return results;
}

const user = (content) => [{ role: 'user', content }];
const NO_THINK = { thinking: { type: 'disabled' } };
const TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name' } }, required: ['city'] },
  },
}];

// --- the checks ------------------------------------------------------------

// --queue 16 (not 64): each HTTP thread (parallel + queue + 16 of them) keeps
// a tokenizer cache of up to 2 MB once it has served a request, which the RSS
// bound of the load check would otherwise have to allow for.
const main = await startServer('server', ['--parallel', '8', '--queue', '16', '--max-tokens', '64']);
console.log(`ok   server up on ${main.base} (${Date.now() - started} ms)`);
const ai = client(main);

await check('GET / serves the chat page', async () => {
  const r = await fetch(`${main.base}/?prompt=Hello`);
  assert(r.status === 200, `HTTP ${r.status}`);
  assert((r.headers.get('content-type') ?? '').startsWith('text/html'), `content-type ${r.headers.get('content-type')}`);
  const html = await r.text();
  assert(html.includes('/v1/chat/completions') && html.includes('dataset.state'), 'not the chat page');
});

await check('models.list', async () => {
  const list = [];
  for await (const m of ai.models.list()) list.push(m);
  assert(list.length >= 1, 'no models');
  assert(list[0].id === MODEL_NAME && list[0].object === 'model', `first model ${JSON.stringify(list[0])}`);
  return list[0].id;
});

await check('chat, reasoning on', async () => {
  const r = await ai.chat.completions.create({ model: MODEL_NAME, messages: user('Hello'), max_tokens: 16, temperature: 0 });
  assert(r.object === 'chat.completion', `object ${r.object}`);
  const m = r.choices[0].message;
  assert(m.role === 'assistant', `role ${m.role}`);
  assert(typeof m.reasoning_content === 'string' && m.reasoning_content.length > 0,
         `reasoning_content ${JSON.stringify(m.reasoning_content)}`);
  assert(['length', 'stop'].includes(r.choices[0].finish_reason), `finish_reason ${r.choices[0].finish_reason}`);
  assert(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 16, `usage ${JSON.stringify(r.usage)}`);
  assert(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, 'usage total');
});

await checkUnlessSanitized('chat, reasoning off (thinking disabled)', async () => {
  const r = await ai.chat.completions.create({ model: MODEL_NAME, messages: user('Hello'), max_tokens: 16, temperature: 0, ...NO_THINK });
  const m = r.choices[0].message;
  assert(typeof m.content === 'string' && m.content.length > 0, `content ${JSON.stringify(m.content)}`);
  assert(m.reasoning_content == null || m.reasoning_content === '', `reasoning_content ${JSON.stringify(m.reasoning_content)}`);
});

for (const [label, extra] of [['think', {}], ['think-max', { reasoning_effort: 'max' }], ['chat', NO_THINK]]) {
  const checkMode = label === 'think' ? check : checkUnlessSanitized;
  await checkMode(`stream equals non-stream at temperature 0 (${label})`, async () => {
    const req = { model: MODEL_NAME, messages: user('Tell me about the sea.'), max_tokens: 24, temperature: 0, ...extra };
    const a = await ai.chat.completions.create(req);
    const b = await collect(await ai.chat.completions.create({ ...req, stream: true }));
    const m = a.choices[0].message;
    assert(b.roles[0] === 'assistant', `first delta role ${b.roles[0]}`);
    assert(b.content === (m.content ?? ''), `content differs:\n  non-stream ${JSON.stringify(m.content)}\n  stream     ${JSON.stringify(b.content)}`);
    assert(b.reasoning === (m.reasoning_content ?? ''),
           `reasoning differs:\n  non-stream ${JSON.stringify(m.reasoning_content)}\n  stream     ${JSON.stringify(b.reasoning)}`);
    assert(b.finish === a.choices[0].finish_reason, `finish_reason ${b.finish} vs ${a.choices[0].finish_reason}`);
    assert(b.usage === null, 'a usage chunk without stream_options.include_usage');
    return `${a.usage.completion_tokens} tokens, ${b.chunks} chunks`;
  });
}

await checkUnlessSanitized('completions.create (and its stream)', async () => {
  const req = { model: MODEL_NAME, prompt: 'The capital of France is', max_tokens: 8, temperature: 0 };
  const r = await ai.completions.create(req);
  assert(r.object === 'text_completion', `object ${r.object}`);
  assert(typeof r.choices[0].text === 'string' && r.choices[0].text.length > 0, `text ${JSON.stringify(r.choices[0].text)}`);
  assert(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 8, `usage ${JSON.stringify(r.usage)}`);
  const s = await collect(await ai.completions.create({ ...req, stream: true }));
  assert(s.content === r.choices[0].text, `stream text ${JSON.stringify(s.content)} vs ${JSON.stringify(r.choices[0].text)}`);
  assert(s.finish === r.choices[0].finish_reason, `finish_reason ${s.finish} vs ${r.choices[0].finish_reason}`);
});

await check('stream_options.include_usage', async () => {
  const stream = await ai.chat.completions.create({
    model: MODEL_NAME, messages: user('Count to five.'), max_tokens: 8, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  const last = chunks.at(-1);
  assert(last?.usage, `the last chunk has no usage: ${JSON.stringify(last)}`);
  assert(Array.isArray(last.choices) && last.choices.length === 0, `usage chunk choices ${JSON.stringify(last.choices)}`);
  assert(chunks.slice(0, -1).every((c) => !c.usage), 'usage before the last chunk');
  assert(chunks.slice(0, -1).some((c) => c.choices?.[0]?.finish_reason), 'no finish_reason chunk before the usage chunk');
  const u = last.usage;
  assert(u.completion_tokens > 0 && u.completion_tokens <= 8 && u.prompt_tokens > 0 &&
         u.total_tokens === u.prompt_tokens + u.completion_tokens, `usage ${JSON.stringify(u)}`);
  return JSON.stringify(u);
});

await checkUnlessSanitized('tools: rendered, tool_choice auto/none accepted', async () => {
  const base = { model: MODEL_NAME, messages: user('What is the weather in Paris?'), max_tokens: 8, temperature: 0, ...NO_THINK };
  const plain = await ai.chat.completions.create(base);
  const auto = await ai.chat.completions.create({ ...base, tools: TOOLS, tool_choice: 'auto' });
  assert(auto.usage.prompt_tokens > plain.usage.prompt_tokens + 20,
         `tools add ${auto.usage.prompt_tokens - plain.usage.prompt_tokens} prompt tokens: not rendered?`);
  const c = auto.choices[0];
  if (c.finish_reason === 'tool_calls') {
    assert(Array.isArray(c.message.tool_calls) && c.message.tool_calls.length > 0, 'finish tool_calls without tool_calls');
  } else {
    assert(!c.message.tool_calls?.length, `tool_calls with finish_reason ${c.finish_reason}`);
  }
  await ai.chat.completions.create({ ...base, tools: TOOLS, tool_choice: 'none' });
  const e = await expectStatus(ai.chat.completions.create({ ...base, tool_choice: 'required' }),
                               OpenAI.BadRequestError, 400, 'tool_choice needs');
  assert(isErrorObject(e.error ? { error: e.error } : null), `error body ${JSON.stringify(e.error)}`);
  return `+${auto.usage.prompt_tokens - plain.usage.prompt_tokens} prompt tokens for the tools`;
});

// Bounded arguments, so the forced call always ends within max_tokens.
const BOUNDED_TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 },
                                                days: { type: 'integer', minimum: 1, maximum: 7 } },
                  required: ['city', 'days'] },
  },
}];

await checkUnlessSanitized('structured output: forced tool calls parse, streamed and not', async () => {
  const req = { model: MODEL_NAME, messages: user('Weather?'), max_tokens: 300, temperature: 1, seed: 5, ...NO_THINK,
                tools: BOUNDED_TOOLS, tool_choice: { type: 'function', function: { name: 'get_weather' } } };
  const a = await ai.chat.completions.create(req);
  const c = a.choices[0];
  assert(c.finish_reason === 'tool_calls' && c.message.tool_calls?.length === 1, `finish ${c.finish_reason}`);
  const args = JSON.parse(c.message.tool_calls[0].function.arguments);
  assert(typeof args.city === 'string' && Number.isInteger(args.days) && args.days >= 1 && args.days <= 7,
         `arguments ${c.message.tool_calls[0].function.arguments}`);
  const required = await ai.chat.completions.create({ ...req, tool_choice: 'required', parallel_tool_calls: false,
                                                      seed: 6, stream: true });
  let names = '';
  let finish = '';
  for await (const chunk of required) {
    for (const call of chunk.choices?.[0]?.delta?.tool_calls ?? []) names += call.function?.name ?? '';
    finish = chunk.choices?.[0]?.finish_reason ?? finish;
  }
  assert(finish === 'tool_calls' && names.startsWith('get_weather'), `streamed ${finish} ${names}`);
  return `arguments ${c.message.tool_calls[0].function.arguments}`;
});

await check('structured output: response_format json_schema and json_object', async () => {
  const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 10 },
                                                  score: { type: 'integer', minimum: 0, maximum: 100 } },
                   required: ['name', 'score'], additionalProperties: false };
  const a = await ai.chat.completions.create({
    model: MODEL_NAME, messages: user('Rate it'), max_tokens: 400, temperature: 1, seed: 3, ...NO_THINK,
    response_format: { type: 'json_schema', json_schema: { name: 'rating', schema, strict: true } } });
  assert(a.choices[0].finish_reason === 'stop', `finish ${a.choices[0].finish_reason}`);
  const v = JSON.parse(a.choices[0].message.content);
  // maxLength counts code points (JSON Schema), not the UTF-16 units of String.length.
  assert(typeof v.name === 'string' && [...v.name].length <= 10 && Number.isInteger(v.score) && v.score >= 0 && v.score <= 100,
         `content ${a.choices[0].message.content}`);
  const s = await collect(await ai.chat.completions.create({
    model: MODEL_NAME, messages: user('Rate it'), max_tokens: 400, temperature: 1, seed: 3, stream: true, ...NO_THINK,
    response_format: { type: 'json_schema', json_schema: { name: 'rating', schema, strict: true } } }));
  assert(s.content === a.choices[0].message.content, `stream ${s.content} vs ${a.choices[0].message.content}`);
  await expectStatus(ai.chat.completions.create({
    model: MODEL_NAME, messages: user('x'), max_tokens: 4,
    response_format: { type: 'json_schema', json_schema: { name: 'bad', schema: { type: 'string', not: {} } } } }),
                     OpenAI.BadRequestError, 400, 'keyword "not" is not supported');
  return `content ${a.choices[0].message.content}`;
});

await checkUnlessSanitized('tools: a tool-call round trip, stream equals non-stream', async () => {
  const messages = [
    { role: 'user', content: 'What is the weather in Paris?' },
    { role: 'assistant', content: '', reasoning_content: 'The user wants the weather; call the tool.',
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temperature_c": 21, "sky": "clear"}' },
  ];
  const req = { model: MODEL_NAME, messages, tools: TOOLS, max_tokens: 12, temperature: 0 };
  const a = await ai.chat.completions.create(req);
  assert(a.choices[0].message.role === 'assistant', 'no assistant message');
  const b = await collect(await ai.chat.completions.create({ ...req, stream: true }));
  const m = a.choices[0].message;
  assert(b.content === (m.content ?? '') && b.reasoning === (m.reasoning_content ?? ''),
         `stream differs: ${JSON.stringify([b.reasoning, b.content])} vs ${JSON.stringify([m.reasoning_content, m.content])}`);
  assert(b.finish === a.choices[0].finish_reason, `finish_reason ${b.finish} vs ${a.choices[0].finish_reason}`);
  const chat = await ai.chat.completions.create({ ...req, ...NO_THINK });
  assert(chat.choices[0].message, 'no answer without thinking');
  return `finish ${a.choices[0].finish_reason}, ${a.usage.prompt_tokens} prompt tokens`;
});

await check('16 concurrent streams complete', async () => {
  const results = await withTimeout(Promise.all(Array.from({ length: 16 }, async (_, i) =>
    collect(await ai.chat.completions.create({
      model: MODEL_NAME, messages: user(`Stream number ${i}: say something.`), max_tokens: 24, stream: true,
      seed: i, ...(i % 2 ? NO_THINK : {}),
    })))), ms(60_000), '16 streams');
  results.forEach((r, i) => {
    assert(r.finish === 'length' || r.finish === 'stop' || r.finish === 'tool_calls', `stream ${i}: finish_reason ${r.finish}`);
    assert((r.content + r.reasoning).length > 0 || r.toolCalls.length, `stream ${i}: no text`);
  });
  return `${results.reduce((n, r) => n + r.chunks, 0)} chunks`;
});

await check('cancel mid-stream; the server goes on', async () => {
  const before = await metric(main, 'dsv4_requests_cancelled_total');
  const stream = await ai.chat.completions.create({
    model: MODEL_NAME, messages: user('Write a very long story.'), max_tokens: 6000, stream: true, ...NO_THINK,
  });
  const got = await collect(stream, { abortAfter: 5 }).catch((e) => {
    if (e instanceof OpenAI.APIUserAbortError) return null;
    throw e;
  });
  assert(got === null || got.chunks >= 5, 'stream ended early');
  const deadline = Date.now() + ms(10_000);
  let cancelled = before, active = 1;
  while (Date.now() < deadline) {
    cancelled = await metric(main, 'dsv4_requests_cancelled_total');
    active = await metric(main, 'dsv4_active_sequences');
    if (cancelled > before && active === 0) break;
    await sleep(100);
  }
  assert(cancelled > before, `dsv4_requests_cancelled_total stayed ${before} for 10 s`);
  assert(active === 0, `dsv4_active_sequences is ${active} 10 s after the cancel`);
  const h = await fetch(`${main.base}/health`);
  assert(h.status === 200, `/health ${h.status}`);
  const r = await ai.chat.completions.create({ model: MODEL_NAME, messages: user('Hi again'), max_tokens: 4, ...NO_THINK });
  assert(r.choices[0].message.content?.length > 0, 'no answer after the cancel');
});

await check('malformed requests', async () => {
  const bad = await fetch(`${main.base}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "x", "messages": [',
  });
  assert(bad.status === 400, `bad JSON: HTTP ${bad.status}`);
  const j = await bad.json();
  assert(isErrorObject(j) && j.error.type === 'invalid_request_error', `bad JSON: body ${JSON.stringify(j)}`);

  const e = await expectStatus(ai.chat.completions.create({ model: MODEL_NAME, messages: user('Hi'), temperature: 'hot' }),
                               OpenAI.BadRequestError, 400, 'temperature "hot"');
  assert(e.param === 'temperature', `param ${JSON.stringify(e.param)}, error ${JSON.stringify(e.error)}`);

  await expectStatus(ai.chat.completions.create({ model: MODEL_NAME, max_tokens: 4 }), OpenAI.BadRequestError, 400,
                     'no messages');
  await expectStatus(ai.chat.completions.create({ model: MODEL_NAME, messages: user('Hi'), max_tokens: 100_000 }),
                     OpenAI.BadRequestError, 400, 'max_tokens beyond the context');
  await expectStatus(ai.completions.create({ model: MODEL_NAME, prompt: 'Hi', max_tokens: -1 }), OpenAI.BadRequestError, 400,
                     'max_tokens -1');

  const nf = await fetch(`${main.base}/v1/nothing-here`);
  assert(nf.status === 404, `unknown endpoint: HTTP ${nf.status}`);
  await nf.arrayBuffer();
  const nf2 = await fetch(`${main.base}/v1/nothing-here`, { method: 'POST', body: '{}' });
  assert(nf2.status === 404, `unknown POST endpoint: HTTP ${nf2.status}`);
  await nf2.arrayBuffer();
});

await check('/tokenize and /detokenize round trip', async () => {
  const text = 'Hello world, 你好! <b>tags</b> and   spaces';
  const post = async (url, body) => {
    const r = await fetch(`${main.base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const j = await r.json();
    assert(r.status === 200, `${url}: HTTP ${r.status} ${JSON.stringify(j)}`);
    return j;
  };
  const t = await post('/tokenize', { prompt: text });
  assert(Array.isArray(t.tokens) && t.tokens.length > 0 && t.tokens.every(Number.isInteger), `tokens ${JSON.stringify(t.tokens)}`);
  assert(t.count === t.tokens.length, `count ${t.count} for ${t.tokens.length} tokens`);
  assert(Number.isInteger(t.max_model_len) && t.max_model_len > 0, `max_model_len ${t.max_model_len}`);
  const d = await post('/detokenize', { tokens: t.tokens });
  assert(d.prompt === text, `detokenize gave ${JSON.stringify(d.prompt)}`);

  const messages = user('Hello world');
  const tm = await post('/tokenize', { messages });
  assert(tm.count === tm.tokens.length && tm.count > 2, `messages count ${tm.count}`);
  const r = await ai.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 1 });
  assert(tm.count === r.usage.prompt_tokens,
         `/tokenize of messages counts ${tm.count} tokens, a chat request with them ${r.usage.prompt_tokens} prompt tokens`);
  return `${t.count} tokens; ${tm.count} for the messages`;
});

await check('/metrics', async () => {
  const r = await fetch(`${main.base}/metrics`);
  assert(r.status === 200, `HTTP ${r.status}`);
  const text = await r.text();
  assert(/^dsv4_requests_total \d+/m.test(text), 'no dsv4_requests_total sample');
  assert(/^# TYPE dsv4_requests_total counter$/m.test(text), 'no TYPE line for dsv4_requests_total');
  const n = await metric(main, 'dsv4_requests_total');
  assert(n >= 20, `dsv4_requests_total ${n} after 20+ requests`);
  // The default --speculative auto drafts with the model's MTP block.
  const drafts = await metric(main, 'dsv4_speculative_drafts_total');
  assert(drafts > 0, `dsv4_speculative_drafts_total ${drafts} with the MTP block on by default`);
  return `dsv4_requests_total ${n}, ${drafts} drafts`;
});

// A sanitized server, 5-10 times slower, takes 60: still 16 at a time through every thread.
const LOAD = SANITIZED ? 60 : 200;
await check(`load: ${LOAD} small requests, 16 at a time, RSS bounded`, async () => {
  const one = async (i) => {
    const r = await ai.chat.completions.create({
      model: MODEL_NAME, messages: user(`Load request ${i}: hello`), max_tokens: 2, ...(i % 3 ? NO_THINK : {}),
    });
    assert(r.choices?.[0]?.message, `request ${i}: no message`);
    assert(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 2, `request ${i}: usage ${JSON.stringify(r.usage)}`);
    return true;
  };
  await withTimeout(pool(20, 16, one), ms(30_000), 'warm-up of 20 requests');
  // The prefix cache keeps each new prompt's state (up to --prefix-cache,
  // 2G by default): that growth is by design, and /metrics reports it.
  const warm = rss(main), warmCache = await metric(main, 'dsv4_prefix_cache_bytes');
  const t0 = Date.now();
  const done = await withTimeout(pool(LOAD, 16, one), ms(60_000), `${LOAD} requests`);
  const secs = (Date.now() - t0) / 1000;
  assert(done.filter(Boolean).length === LOAD, `not all ${LOAD} answered`);
  const after = rss(main), afterCache = await metric(main, 'dsv4_prefix_cache_bytes');
  const mb = (x) => (x / (1 << 20)).toFixed(1);
  const growth = after.VmRSS - warm.VmRSS - Math.max(0, afterCache - warmCache);
  // A sanitizer's shadow and history memory grows with the work: the bound is for a plain build.
  assert(growth <= 100 * (1 << 20) || SANITIZED,
         `RSS grew from ${mb(warm.VmRSS)} MB to ${mb(after.VmRSS)} MB, ${mb(growth)} MB beyond the prefix cache's ` +
         `${mb(warmCache)} -> ${mb(afterCache)} MB`);
  return `${(LOAD / secs).toFixed(1)} req/s; VmRSS ${mb(warm.VmRSS)} -> ${mb(after.VmRSS)} MB ` +
         `(anon ${mb(warm.RssAnon)} -> ${mb(after.RssAnon)}), prefix cache ${mb(warmCache)} -> ${mb(afterCache)} MB`;
});

await check('SIGTERM stops the server, exit 0', () => stopServer(main, 'SIGTERM'));

// A second server: API key, one running request, one waiting.
const keyed = await startServer('keyed server', ['--api-key', 'secret', '--parallel', '1', '--queue', '1', '--max-tokens', '64']);
console.log(`ok   keyed server up on ${keyed.base}`);
const AUTH = { authorization: 'Bearer secret' };

await check('auth: 401 without the key, 200 with it; /health and / open', async () => {
  await expectStatus(client(keyed, 'wrong').models.list(), OpenAI.AuthenticationError, 401, 'wrong key');
  await expectStatus(client(keyed, 'wrong').chat.completions.create({ model: MODEL_NAME, messages: user('Hi'), max_tokens: 2 }),
                     OpenAI.AuthenticationError, 401, 'wrong key, chat');
  for (const [method, url] of [['GET', '/v1/models'], ['POST', '/v1/chat/completions'], ['POST', '/v1/completions'],
                               ['POST', '/tokenize'], ['POST', '/detokenize'], ['GET', '/metrics']]) {
    const r = await fetch(`${keyed.base}${url}`, { method, headers: { 'content-type': 'application/json' },
                                                    body: method === 'POST' ? '{}' : undefined });
    const body = await r.text();
    assert(r.status === 401, `${method} ${url} without a key: HTTP ${r.status}`);
    if (url !== '/metrics') assert(isErrorObject(JSON.parse(body)), `${url}: 401 body ${body}`);
  }
  const ok = client(keyed, 'secret');
  const list = [];
  for await (const m of ok.models.list()) list.push(m);
  assert(list[0]?.id === MODEL_NAME, 'models.list with the key');
  const r = await ok.chat.completions.create({ model: MODEL_NAME, messages: user('Hi'), max_tokens: 2, ...NO_THINK });
  assert(r.choices[0].message, 'chat with the key');
  const h = await fetch(`${keyed.base}/health`);
  assert(h.status === 200, `/health without a key: HTTP ${h.status}`);
  const page = await fetch(`${keyed.base}/`);
  assert(page.status === 200, `the page without a key: HTTP ${page.status}`);
  await page.arrayBuffer();
});

await check('queue full: 429 with Retry-After; cancelled requests free their slot', async () => {
  const before = await metric(keyed, 'dsv4_requests_rejected_total', AUTH);
  const ctrls = [];
  const statuses = await Promise.all(Array.from({ length: 4 }, async (_, i) => {
    const ctrl = new AbortController();
    ctrls.push(ctrl);
    const r = await fetch(`${keyed.base}/v1/chat/completions`, {
      method: 'POST', signal: ctrl.signal, headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL_NAME, messages: user(`Long story ${i}`), max_tokens: 6000, stream: true, ...NO_THINK }),
    });
    if (r.status === 429) {
      const j = await r.json();
      assert(r.headers.get('retry-after'), '429 without Retry-After');
      assert(isErrorObject(j), `429 body ${JSON.stringify(j)}`);
    }
    return r.status;
  }));
  const rejected = statuses.filter((s) => s === 429).length;
  for (const c of ctrls) c.abort();
  assert(statuses.every((s) => s === 200 || s === 429), `statuses ${statuses}`);
  assert(rejected >= 1 && rejected <= 3, `${rejected} of 4 got 429 with --parallel 1 --queue 1 (statuses ${statuses})`);
  assert(await metric(keyed, 'dsv4_requests_rejected_total', AUTH) >= before + rejected, 'dsv4_requests_rejected_total');
  // The server sees the disconnects a moment later; were the aborted streams
  // still generating, the slots would stay taken for 2 x 6000 tokens.
  const t0 = Date.now();
  let r = null, last = '';
  while (!r && Date.now() - t0 < ms(10_000)) {
    try {
      r = await client(keyed, 'secret').chat.completions.create(
        { model: MODEL_NAME, messages: user('Hi'), max_tokens: 4, ...NO_THINK }, { timeout: ms(10_000) });
    } catch (e) {
      if (!(e instanceof OpenAI.RateLimitError)) throw e;
      last = e.message;
      await sleep(100);
    }
  }
  assert(r, `still refused 10 s after cancelling the running requests: ${last}`);
  assert(r.choices[0].message, 'no answer');
  return `statuses ${statuses.join(',')}; a new request answered ${Date.now() - t0} ms after the cancels`;
});

await check('SIGINT with a stream in flight stops the server, exit 0', async () => {
  const stream = await client(keyed, 'secret').chat.completions.create({
    model: MODEL_NAME, messages: user('Another long story'), max_tokens: 6000, stream: true, ...NO_THINK,
  });
  const reading = collect(stream).then(() => 'ended', (e) => `error: ${e.constructor.name}`);
  await sleep(300);
  await stopServer(keyed, 'SIGINT');
  const how = await withTimeout(reading, ms(10_000), 'the stream after SIGINT');
  return `stream ${how}`;
});

console.log(`PASS sdk_test (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(0);
