"""JavaScript evaluated once at boot, before the snapshot.

WHY: everything guest code could tamper with (JSON, Error, Reflect, String.prototype...) is
captured here, before any guest code exists. The raw host function is deleted from the
global object and survives only in these closures, so guest code can never call it with
forged ids, and capability functions are non-writable properties of frozen namespaces.
The completion value is [install, serialize, describe, unwrap, collect], held by the host as
value boxes.

Per run, `install` also defines the run's globals (plain JSON values the host hands in, e.g. a
behaviour's `event` and `state`) and seeds `Math.random`: QuickJS seeds its generator once, at
boot, so without this every VM restored from the snapshot would draw the same numbers; with it a
run is a function of its recorded inputs (code, globals, seed, clock) and can be replayed.
`collect` hands chosen globals back to the host as JSON once the run has succeeded.
"""

PRELUDE = r"""
(function () {
  "use strict";
  const raw = globalThis.__inhabit_h;
  delete globalThis.__inhabit_h;
  const G = globalThis, O = Object;
  const defineProperty = O.defineProperty, freeze = O.freeze, getOwn = O.getOwnPropertyDescriptor;
  const apply = Reflect.apply, stringify = JSON.stringify, parse = JSON.parse;
  const Str = String, Err = Error, TErr = TypeError;
  const sliceStr = String.prototype.slice, charCodeAt = String.prototype.charCodeAt;
  const split = String.prototype.split;
  const hasOwn = O.prototype.hasOwnProperty, imul = Math.imul, M = Math;

  // Errors the host throws are created here and registered host-side by identity.
  function hostErr(msg, isType) {
    const e = isType ? new TErr(msg) : new Err(msg);
    raw(-1, e);
    return e;
  }
  function fmt(a) {
    if (typeof a === "string") return a;
    try {
      if (a !== null && typeof a === "object" && a instanceof Err) {
        return Str(a.stack ? Str(a.name) + ": " + Str(a.message) + "\n" + Str(a.stack) : Str(a.name) + ": " + Str(a.message));
      }
      if (typeof a === "function" || typeof a === "symbol" || typeof a === "bigint") return Str(a);
      const s = stringify(a);
      if (s !== undefined) return s;
    } catch (e) {}
    try { return Str(a); } catch (e) { return "[unprintable]"; }
  }
  // A line longer than the run's console bound is cut HERE, before it crosses to the host:
  // reading a 60 MB string out would need 60 MB more guest memory (and quietly gave "").
  let lineMax = 1 << 20;
  function mkLog(level) {
    return function log(...args) {
      let s = level;
      for (let i = 0; i < args.length && s.length <= lineMax; i++) {
        const piece = fmt(args[i]);
        s += (i ? " " : "") + (piece.length > lineMax ? apply(sliceStr, piece, [0, lineMax]) : piece);
      }
      raw(-2, s);
    };
  }
  const con = freeze({ log: mkLog("0"), info: mkLog("0"), debug: mkLog("0"),
                       warn: mkLog("1"), error: mkLog("2") });
  defineProperty(G, "console", { value: con, writable: false, enumerable: false, configurable: false });

  function makeFn(id0, name) {
    const id = id0 | 0;  // an int-tagged JSValue: the host reads it straight from memory
    const f = { [name]: function (...args) {
      let json;
      try { json = stringify(args); }
      catch (e) { throw hostErr(name + ": arguments must be JSON-serialisable (" + fmt(e) + ")", true); }
      const r = raw(id, json);
      if (typeof r === "string") return r.length ? parse(r) : undefined;
      // Failure: the host returned undefined; fetch "<1|2><message>" (2 = bad arguments).
      const e = raw(-3, "");
      throw hostErr(apply(sliceStr, e, [1]), apply(charCodeAt, e, [0]) === 50);
    } }[name];
    return freeze(f);
  }

  // sfc32, seeded through splitmix32: small, fast, and the same numbers for the same seed.
  function seeded(seed) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = imul(z ^ (z >>> 16), 0x85ebca6b);
      z = imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    let a = next(), b = next(), c = next(), d = next();
    return function random() {
      const t = (((a + b) >>> 0) + d) >>> 0;
      d = (d + 1) >>> 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) >>> 0;
      c = ((c << 21) | (c >>> 11)) >>> 0;
      c = (c + t) >>> 0;
      return t / 4294967296;
    };
  }

  function install(spec) {
    const conf = parse(spec), list = conf.caps, spaces = [];
    lineMax = conf.line;
    defineProperty(M, "random", { value: seeded(conf.seed), writable: true, enumerable: false, configurable: true });
    const globals = conf.globals || {};
    for (const k in globals) {
      defineProperty(G, k, { value: globals[k], writable: true, enumerable: false, configurable: false });
    }
    for (let i = 0; i < list.length; i++) {
      const parts = apply(split, list[i][0], ["."]);
      let obj = G;
      for (let j = 0; j < parts.length - 1; j++) {
        const d = getOwn(obj, parts[j]);
        if (d) { obj = d.value; if (j === 0 && apply(hasOwn, globals, [parts[0]])) spaces.push(obj); continue; }
        const ns = {};
        defineProperty(obj, parts[j], { value: ns, writable: false, enumerable: j > 0, configurable: false });
        spaces.push(ns);
        obj = ns;
      }
      const last = parts[parts.length - 1];
      defineProperty(obj, last, { value: makeFn(list[i][1], list[i][0]), writable: false,
                                  enumerable: true, configurable: false });
    }
    for (let i = spaces.length - 1; i >= 0; i--) freeze(spaces[i]);
  }

  // An async (top-level await) eval resolves to a {value} wrapper of the completion value.
  function unwrap(w) { return w === undefined || w === null ? undefined : w.value; }
  function serialize(v) {
    if (v === undefined) return "";
    const s = stringify(v);
    return s === undefined ? "" : s;
  }

  function describe(e) {
    try {
      if (e !== null && typeof e === "object" && e instanceof Err) {
        return stringify({ name: Str(e.name), message: Str(e.message),
                           stack: e.stack === undefined ? "" : Str(e.stack) });
      }
      return stringify({ name: typeof e, message: fmt(e), stack: "" });
    } catch (x) {
      return '{"name":"unknown","message":"[unprintable thrown value]","stack":""}';
    }
  }
  // The named globals as one JSON object (names: a JSON array), after a successful run.
  function collect(names) {
    const list = parse(names), out = {};
    for (let i = 0; i < list.length; i++) out[list[i]] = G[list[i]];
    return stringify(out);
  }
  return [install, serialize, describe, unwrap, collect];
})()
"""
