// A real Yjs + y-websocket peer for interop tests.
// usage: node yjs_peer.mjs WS_BASE ROOM TOKEN WRITE_ID WAIT_ID [TIMEOUT_MS]
// Writes stroke WRITE_ID (unless "-"), waits for stroke WAIT_ID (unless "-") from someone else,
// then prints one JSON line {ok, synced, strokes, awareness, waited} and exits (bounded).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, room, token, writeId, waitId, timeoutArg] = process.argv.slice(2)
const timeoutMs = Number(timeoutArg || 10000)
const doc = new Y.Doc()
const strokes = doc.getMap('strokes')
const provider = new WebsocketProvider(base, room, doc, {
  WebSocketPolyfill: WebSocket,
  params: token && token !== '-' ? { token } : {},
  maxBackoffTime: 500,
})
provider.awareness.setLocalState({ user: { name: 'yjs', color: '#ff0000', kind: 'human' }, cursor: { x: 1, y: 2 }, drawing: null })

const finish = (ok, extra = {}) => {
  const out = {
    ok,
    synced: provider.synced,
    strokes: Object.fromEntries(strokes.entries()),
    awareness: Array.from(provider.awareness.getStates().entries())
      .filter(([id]) => id !== doc.clientID).map(([, s]) => s),
    ...extra,
  }
  process.stdout.write(JSON.stringify(out) + '\n')
  provider.destroy()
  setTimeout(() => process.exit(ok ? 0 : 1), 200)
}
const timer = setTimeout(() => finish(false, { error: 'timeout' }), timeoutMs)

provider.on('sync', (synced) => {
  if (!synced) return
  if (writeId && writeId !== '-') {
    strokes.set(writeId, { id: writeId, points: [10, 20, 0.5, 30, 40, 0.7], color: '#00aa00', width: 3, author: 'yjs', kind: 'human', t: Date.now() })
  }
  const check = () => {
    if (!waitId || waitId === '-' || strokes.has(waitId)) {
      clearTimeout(timer)
      // give our own write time to leave the socket before we exit
      setTimeout(() => finish(true, { waited: waitId }), 300)
      return true
    }
    return false
  }
  if (!check()) strokes.observe(() => check())
})
