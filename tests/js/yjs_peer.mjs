// A real Yjs + y-websocket peer for interop tests.
// usage: node yjs_peer.mjs WS_BASE ROOM TOKEN WRITE_ID WAIT_ID [TIMEOUT_MS [WIDGET_WRITE_ID WIDGET_WAIT_ID]]
// Writes stroke WRITE_ID (unless "-"), waits for stroke WAIT_ID (unless "-") from someone else,
// then prints one JSON line {ok, synced, strokes, widgets, awareness, waited} and exits (bounded).
// Widgets: writes text widget WIDGET_WRITE_ID (unless "-" or absent) with two malformed
// neighbours, WIDGET_WRITE_ID.bad (not a valid widget) and WIDGET_WRITE_ID.ymap (a nested Y.Map,
// not a plain object), and also waits for widget WIDGET_WAIT_ID (unless "-" or absent).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, room, token, writeId, waitId, timeoutArg, widgetWriteId, widgetWaitId] = process.argv.slice(2)
const timeoutMs = Number(timeoutArg || 10000)
const doc = new Y.Doc()
const strokes = doc.getMap('strokes')
const widgets = doc.getMap('widgets')
const given = (id) => id && id !== '-'
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
    widgets: Object.fromEntries(Array.from(widgets.entries()).map(([k, v]) => [k, v instanceof Y.AbstractType ? v.toJSON() : v])),
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
  if (given(widgetWriteId)) {
    doc.transact(() => {
      widgets.set(widgetWriteId, { id: widgetWriteId, type: 'text', x: 50, y: 60, text: 'hello from JS\nline two', size: 20, color: '#aa00aa', author: 'yjs', kind: 'human', t: Date.now() })
      widgets.set(widgetWriteId + '.bad', { id: widgetWriteId + '.bad', type: 'button', x: 'left', y: 0, text: '' })
      const nested = new Y.Map()
      widgets.set(widgetWriteId + '.ymap', nested)
      nested.set('id', widgetWriteId + '.ymap')
    })
  }
  const check = () => {
    if (given(widgetWaitId) && !widgets.has(widgetWaitId)) return false
    if (!waitId || waitId === '-' || strokes.has(waitId)) {
      clearTimeout(timer)
      // give our own write time to leave the socket before we exit
      setTimeout(() => finish(true, { waited: waitId }), 300)
      return true
    }
    return false
  }
  if (!check()) {
    strokes.observe(() => check())
    widgets.observe(() => check())
  }
})
