// quickjs-wasi's own Node.js host running the same workloads as bench/sandbox.py.
// Usage: node bench/sandbox_node.mjs WORKLOAD.json -> one JSON line (ms / µs). Run via bench/sandbox.py.
import { QuickJS, EvalFlags } from '../node_modules/quickjs-wasi/dist/index.js';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const wasm = await WebAssembly.compile(fs.readFileSync(path.join(here, '../node_modules/quickjs-wasi/quickjs.wasm')));
const W = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));  // written by bench/sandbox.py
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

// Host functions, the quickjs-wasi way: dump() the argument handles, hostToHandle() the result.
const strokes = W.strokes;
let drawn = 0;
const HOST = {
  __strokes: () => strokes,
  __draw: (points, color) => { drawn++; return { id: 'n' + drawn, n: points.length, color }; },
  __f: (x) => x,
};
const INSTALL = `globalThis.canvas = { strokes: __strokes, draw: __draw }; globalThis.t = { f: __f };`;

const base = await QuickJS.create({ wasm });
for (const [name, fn] of Object.entries(HOST)) {
  base.newFunction(name, (...args) => base.hostToHandle(fn(...args.map(a => base.dump(a))))).consume(h => base.setProp(base.global, name, h));
}
base.evalCode(INSTALL).dispose();
const snap = base.snapshot();

async function fresh() {
  const vm = await QuickJS.restore(snap, { wasm, memoryLimit: 64 << 20, maxStackSize: 512 << 10 });
  for (const [name, fn] of Object.entries(HOST)) {
    vm.registerHostCallback(name, (...args) => vm.hostToHandle(fn(...args.map(a => vm.dump(a)))));
  }
  return vm;
}

async function run(code) {
  const vm = await fresh();
  const h = vm.evalCode(code, 'agent.js', EvalFlags.ASYNC);
  vm.executePendingJobs();
  let out;
  const res = await vm.resolvePromise(h);
  if (res.value) { out = vm.dump(res.value)?.value; res.value.dispose(); }  // ASYNC eval wraps the completion value else { res.error.dispose(); }
  h.dispose();
  vm.dispose();
  return out;
}

const out = {};
for (let i = 0; i < 30; i++) await run('1+1');
let ts = [];
for (let i = 0; i < W.fresh_n; i++) { const t = performance.now(); await run('1+1'); ts.push(performance.now() - t); }
out.fresh_p50_ms = pct(ts, 0.5); out.fresh_p99_ms = pct(ts, 0.99);

const best = async (code, n) => { let b = Infinity; for (let i = 0; i < n; i++) { const t = performance.now(); await run(code); b = Math.min(b, performance.now() - t); } return b; };
const t0 = await best(W.calls_code.replace('__N__', '0'), 5);
const tn = await best(W.calls_code.replace('__N__', String(W.calls_n)), 5);
out.call_us = (tn - t0) / W.calls_n * 1000;

const check = await run(W.program);
for (let i = 0; i < 5; i++) await run(W.program);
ts = [];
for (let i = 0; i < W.program_n; i++) { const t = performance.now(); await run(W.program); ts.push(performance.now() - t); }
out.program_p50_ms = pct(ts, 0.5); out.program_p99_ms = pct(ts, 0.99);
out.program_check = check;
console.log(JSON.stringify(out));
