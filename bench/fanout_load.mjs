#!/usr/bin/env node
// Neutral y-websocket load generator for bench/fanout.py (same load for both servers).
//
// Every client is a real Y.Doc + Awareness speaking the y-websocket protocol over `ws`
// (y-protocols/sync + lib0 encoding, ONE message per frame). Strokes follow canvas/SCHEMA.md;
// the stroke's `t` field is the send time (performance.timeOrigin + performance.now(), ms since
// the epoch, fractional), so receivers on the same machine compute delivery latency.
//
// Modes (argument: one JSON object):
//   {"mode":"fanout", base, prefix, clients, rooms, worker, workers, rate, warmupMs, durationMs,
//    drainMs, points, connectConcurrency, deflate}
//     -> prints `READY {...}` once all its clients are synced, waits for `GO <t0>` on stdin,
//        sends from t0 to t0+warmup+duration, measures receipts in [t0+warmup, t0+warmup+duration],
//        prints `RESULT {...}` and exits.
//   {"mode":"join", base, room, strokes, joins, batch, points, deflate}
//     -> pre-populates `room` with `strokes` strokes (kept connected), then measures `joins`
//        fresh joins (connect -> SyncStep2 applied), prints `RESULT {...}`.
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import readline from 'node:readline'

const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const opts = JSON.parse(process.argv[2] || '{}')
const log = (...a) => process.stderr.write(a.join(' ') + '\n')
// stdout is an async pipe: wait until a (large) line is flushed before process.exit()
const emit = (line) => new Promise((resolve) => process.stdout.write(line + '\n', resolve))

const COLORS = ['#e03131', '#1971c2', '#2f9e44', '#f08c00', '#7048e8', '#0c8599']

function makePoints (n, seed) {
  const pts = []
  let x = (seed * 37) % 1000
  let y = (seed * 91) % 800
  for (let i = 0; i < n; i++) {
    x += (i * 7 + seed) % 5 - 1
    y += (i * 3 + seed) % 4 - 1
    pts.push(x, y, 0.5)
  }
  return pts
}

let strokeSeq = 0

class Client {
  constructor (base, room, name, { deflate = true, awareness = true } = {}) {
    this.base = base
    this.room = room
    this.name = name
    this.deflate = deflate
    this.doc = new Y.Doc()
    this.strokes = this.doc.getMap('strokes')
    this.useAwareness = awareness
    this.awareness = awareness ? new awarenessProtocol.Awareness(this.doc) : null
    this.ws = null
    this.synced = false
    this.onStroke = null // (value, latencyMs) for remote strokes
    this.sent = 0
    this.recvMsgs = 0
    this.closed = false
    this.doc.on('update', (update, origin) => {
      if (origin === this) return
      const enc = encoding.createEncoder()
      encoding.writeVarUint(enc, 0)
      syncProtocol.writeUpdate(enc, update)
      this._send(encoding.toUint8Array(enc))
    })
    this.strokes.observe((ev) => {
      if (ev.transaction.origin !== this || this.onStroke === null) return
      const t = now()
      for (const [key, change] of ev.changes.keys) {
        if (change.action !== 'add') continue
        const v = this.strokes.get(key)
        if (v && typeof v.t === 'number') this.onStroke(v, t - v.t, t)
      }
    })
    if (this.awareness) {
      this.awareness.on('update', ({ added, updated, removed }, origin) => {
        if (origin !== 'local') return
        const changed = added.concat(updated, removed)
        const enc = encoding.createEncoder()
        encoding.writeVarUint(enc, 1)
        encoding.writeVarUint8Array(enc, awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed))
        this._send(encoding.toUint8Array(enc))
      })
    }
  }

  _send (buf) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(buf)
  }

  connect (timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
      const t0 = now()
      const ws = new WebSocket(`${this.base}/${encodeURIComponent(this.room)}`, { perMessageDeflate: this.deflate })
      ws.binaryType = 'arraybuffer'
      this.ws = ws
      const timer = setTimeout(() => { reject(new Error(`sync timeout ${this.name}`)); try { ws.terminate() } catch {} }, timeoutMs)
      ws.on('open', () => {
        this.openMs = now() - t0
        this.extensions = Object.keys(ws._extensions || {}).join(',') || 'none'
        const enc = encoding.createEncoder()
        encoding.writeVarUint(enc, 0)
        syncProtocol.writeSyncStep1(enc, this.doc)
        ws.send(encoding.toUint8Array(enc))
        if (this.awareness) {
          this.awareness.setLocalState({ user: { name: this.name, color: COLORS[0], kind: 'human' }, cursor: null, drawing: null })
        }
      })
      ws.on('message', (data) => {
        this.recvMsgs++
        if (!this.synced && this.step2RecvMs === undefined) {
          const b = new Uint8Array(data)
          if (b[0] === 0 && b[1] === 1) { this.step2RecvMs = now() - t0; this.step2Bytes = b.length }
        }
        const decoder = decoding.createDecoder(new Uint8Array(data))
        const type = decoding.readVarUint(decoder)
        if (type === 0) {
          const enc = encoding.createEncoder()
          encoding.writeVarUint(enc, 0)
          const st = syncProtocol.readSyncMessage(decoder, enc, this.doc, this)
          if (encoding.length(enc) > 1) ws.send(encoding.toUint8Array(enc))
          if (st === 1 && !this.synced) { // SyncStep2 received and applied
            this.synced = true
            this.syncMs = now() - t0
            clearTimeout(timer)
            resolve(this)
          }
        } else if (type === 1 && this.awareness) {
          awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(decoder), this)
        }
      })
      ws.on('error', (e) => { if (!this.synced) { clearTimeout(timer); reject(e) } })
      ws.on('close', (code, reason) => {
        if (!this.closed && this.synced) log(`client ${this.name} closed by server: ${code} ${reason}`)
        this.closed = true
        if (!this.synced) { clearTimeout(timer); reject(new Error(`closed before sync ${code} ${reason}`)) }
      })
    })
  }

  addStroke (nPoints, extra = {}) {
    const id = `${this.name}.${(strokeSeq++).toString(36)}`
    this.strokes.set(id, {
      id,
      points: makePoints(nPoints, strokeSeq),
      color: COLORS[strokeSeq % COLORS.length],
      width: 3,
      author: this.name,
      kind: 'human',
      t: now(),
      ...extra
    })
    this.sent++
  }

  close () {
    this.closed = true
    if (this.awareness) this.awareness.destroy()
    try { this.ws.close() } catch {}
    this.doc.destroy()
  }
}

async function pool (items, n, fn) {
  let i = 0
  const runners = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) { const it = items[i++]; await fn(it) }
  })
  await Promise.all(runners)
}

async function fanout () {
  const { base, prefix = 'bench', clients = 500, rooms = 50, worker = 0, workers = 1, rate = 1,
    warmupMs = 5000, durationMs = 15000, drainMs = 1500, points = 20, connectConcurrency = 25,
    deflate = true } = opts
  // client i is in room i % rooms; a room's members alternate between workers (so every room
  // has members in every worker when it has as many members; round-robin by i would put all
  // of a room's members in one worker whenever workers divides rooms)
  const mine = []
  for (let i = 0; i < clients; i++) if (Math.floor(i / rooms) % workers === worker) mine.push(i)
  const roomSize = new Array(rooms).fill(0)
  for (let i = 0; i < clients; i++) roomSize[i % rooms]++
  const cl = mine.map((i) => new Client(base, `${prefix}-r${i % rooms}`, `w${worker}c${i}`, { deflate }))
  const tc = now()
  await pool(cl, connectConcurrency, (c) => c.connect(60000))
  const connectS = (now() - tc) / 1000
  const syncMs = cl.map((c) => c.syncMs).sort((a, b) => a - b)
  process.stdout.write(`READY ${JSON.stringify({ worker, clients: cl.length, connectS, extensions: cl[0]?.extensions, syncP50: syncMs[syncMs.length >> 1] })}\n`)

  const rl = readline.createInterface({ input: process.stdin })
  const t0 = await new Promise((resolve) => rl.on('line', (line) => { if (line.startsWith('GO ')) resolve(Number(line.slice(3))) }))
  const mStart = t0 + warmupMs
  const mEnd = mStart + durationMs
  const lat = []
  const latCross = [] // deliveries of strokes written by another worker's clients (bench/cluster.py: another node's)
  const ownPrefix = `w${worker}c`
  let received = 0 // remote strokes received in the window (by receipt time)
  let receivedAll = 0
  let sentWindow = 0
  let expectedWindow = 0 // sum over sends in window of (roomSize - 1)
  for (const c of cl) {
    c.onStroke = (v, latency, t) => {
      receivedAll++
      if (t >= mStart && t < mEnd) {
        received++
        const ms = Math.round(latency * 100) / 100
        lat.push(ms)
        if (typeof v.author === 'string' && !v.author.startsWith(ownPrefix)) latCross.push(ms)
      }
    }
  }
  const period = 1000 / rate
  const timers = []
  const cpu0 = process.cpuUsage()
  let cpuAtStart = null
  let lagMax = 0
  let lagPrev = now()
  const lagTimer = setInterval(() => { const t = now(); const l = t - lagPrev - 100; if (l > 50 && process.env.LAG_DEBUG) log(`lag ${l.toFixed(0)}ms at +${((t - t0) / 1000).toFixed(2)}s`); lagMax = Math.max(lagMax, l); lagPrev = t }, 100)
  await sleep(Math.max(0, t0 - now()))
  for (const c of cl) {
    const size = roomSize[Number(c.room.slice(c.room.lastIndexOf('-r') + 2))]
    const tick = () => {
      const t = now()
      if (t >= mEnd) return
      c.addStroke(points)
      if (t >= mStart) { sentWindow++; expectedWindow += size - 1 }
    }
    timers.push(setTimeout(() => { tick(); timers.push(setInterval(tick, period)) }, Math.random() * period))
  }
  await sleep(Math.max(0, mStart - now()))
  cpuAtStart = process.cpuUsage()
  lagMax = 0
  await sleep(Math.max(0, mEnd - now()))
  const cpuAtEnd = process.cpuUsage(cpuAtStart)
  const lagInWindow = lagMax
  for (const t of timers) { clearTimeout(t); clearInterval(t) }
  await sleep(drainMs)
  clearInterval(lagTimer)
  const out = {
    worker,
    clients: cl.length,
    sentWindow,
    expectedWindow,
    received,
    receivedAll,
    sentAll: cl.reduce((a, c) => a + c.sent, 0),
    closed: cl.filter((c) => c.closed).length,
    cpuWindowS: (cpuAtEnd.user + cpuAtEnd.system) / 1e6,
    cpuTotalS: (() => { const u = process.cpuUsage(cpu0); return (u.user + u.system) / 1e6 })(),
    eventLoopLagMaxMs: lagInWindow,
    lat,
    latCross
  }
  await emit(`RESULT ${JSON.stringify(out)}`)
  for (const c of cl) c.close()
  rl.close()
  await sleep(200)
  process.exit(0)
}

async function join () {
  const { base, room, strokes = 10000, joins = 10, batch = 100, points = 20, deflate = true } = opts
  const pop = new Client(base, room, 'populator', { deflate })
  await pop.connect(60000)
  const tp = now()
  for (let i = 0; i < strokes; i += batch) {
    pop.doc.transact(() => {
      for (let j = i; j < Math.min(strokes, i + batch); j++) pop.addStroke(points)
    })
    // let the socket drain a little so we do not build an unbounded send buffer
    while (pop.ws.bufferedAmount > 1 << 20) await sleep(5)
    if ((i / batch) % 10 === 9) await sleep(1)
  }
  // Confirm the server holds every stroke (a check client; also warms the room).
  let checkSize = 0
  const deadline = now() + 60000
  while (now() < deadline) {
    const chk = new Client(base, room, 'check', { deflate, awareness: false })
    await chk.connect(60000)
    checkSize = chk.strokes.size
    chk.close()
    if (checkSize >= strokes) break
    await sleep(200)
  }
  const populateS = (now() - tp) / 1000
  const times = []
  const opens = []
  const recvs = []
  let updateBytes = 0
  let wireBytes = 0
  for (let k = 0; k < joins; k++) {
    const c = new Client(base, room, `joiner${k}`, { deflate })
    await c.connect(60000)
    times.push(c.syncMs)
    opens.push(c.openMs)
    recvs.push(c.step2RecvMs)
    if (c.strokes.size < strokes) log(`joiner ${k} saw only ${c.strokes.size} strokes`)
    if (k === 0) { updateBytes = Y.encodeStateAsUpdate(c.doc).length; wireBytes = c.step2Bytes }
    c.close()
    await sleep(100)
  }
  pop.close()
  await emit(`RESULT ${JSON.stringify({ room, strokes, checkSize, populateS, times, opens, recvs, updateBytes, wireBytes, extensions: pop.extensions })}`)
  await sleep(200)
  process.exit(0)
}

const main = opts.mode === 'join' ? join : fanout
main().catch((e) => { log('fanout_load error:', e && e.stack ? e.stack : e); process.exit(2) })
