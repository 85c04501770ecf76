// A stock Yjs + y-websocket peer for the page's widgets (tests/web/test_web_widgets.py).
// usage: node yjs_widget_peer.mjs WS_BASE ROOM TOKEN WAIT_TEXT WRITE_ID [TIMEOUT_MS]
// Waits for a widget whose text is WAIT_TEXT (someone else's), then writes text widget WRITE_ID
// and prints one JSON line {ok, widgets} and exits (bounded).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, room, token, waitText, writeId, timeoutArg] = process.argv.slice(2)
const doc = new Y.Doc()
const widgets = doc.getMap('widgets')
const provider = new WebsocketProvider(base, room, doc, { WebSocketPolyfill: WebSocket, params: { token }, maxBackoffTime: 500 })

const finish = (ok, extra = {}) => {
  process.stdout.write(JSON.stringify({ ok, widgets: Object.fromEntries(widgets.entries()), ...extra }) + '\n')
  provider.destroy()
  setTimeout(() => process.exit(ok ? 0 : 1), 200)
}
const timer = setTimeout(() => finish(false, { error: 'timeout' }), Number(timeoutArg || 10000))

let done = false
provider.on('sync', (synced) => {
  if (!synced || done) return
  const check = () => {
    if (done || ![...widgets.values()].some((w) => w && w.text === waitText)) return false
    done = true // once: our own write below comes back through the observer
    widgets.set(writeId, { id: writeId, type: 'text', x: 500, y: 520, text: 'from yjs', size: 30, color: '#2f9e44',
      author: 'yjs', kind: 'human', anyone: false, t: Date.now() })
    clearTimeout(timer)
    setTimeout(() => finish(true), 300) // our write leaves the socket before we exit
    return true
  }
  if (!check()) widgets.observe(() => check())
})
