// Composition root: wires document, connection, renderer, input and UI together.
import * as Y from 'yjs'
import { readConfig } from './config'
import { loadIdentity } from './identity'
import { connect } from './connection'
import { lapsed, mountConnStatus } from './connStatus'
import { Camera } from './camera'
import { StrokeStore } from './store'
import { WidgetStore } from './widgets'
import { TextEditor } from './textEditor'
import { Presses } from './presses'
import { mountNotice } from './notice'
import { Renderer } from './renderer'
import { ToolState } from './tools/state'
import { createTools } from './tools'
import { createHistory } from './history'
import { createLocalPresence } from './localPresence'
import { attachInput } from './input'
import { attachKeyboard } from './keyboard'
import { shortcuts } from './shortcuts'
import { mountToolbar } from './toolbar'
import { mountPresence } from './presence'
import { mountChat } from './chat'
import { mountBehaviours } from './behaviours'
import { whoami } from './api'
import { messagesOf, strokesOf, widgetsOf } from './ops'
import { exposeDebugHooks } from './debug'
import { MAX_WIDGETS } from './types.gen'

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T

const cfg = readConfig()
const me = loadIdentity()
const doc = new Y.Doc()
const conn = connect(cfg, doc)
const { provider } = conn
const awareness = provider.awareness
awareness.setLocalState({ user: { name: me.name, color: me.color, kind: 'human' }, cursor: null, drawing: null })

document.title = `${cfg.room} · inhabit`
$('room-name').textContent = cfg.room

const camera = new Camera()
const store = new StrokeStore(strokesOf(doc))
const widgets = new WidgetStore(widgetsOf(doc))
const renderer = new Renderer($<HTMLCanvasElement>('canvas'), camera, store, widgets)
const settings = new ToolState()
const history = createHistory(doc)

// ---- presence: others' cursors and strokes in progress, and our own ---------
const peers = mountPresence({
  awareness, camera, layer: $('cursors'), avatars: $('avatars'), requestRender: () => renderer.request(),
})
const own = createLocalPresence(awareness)
renderer.overlays = () => {
  const ink = own.ink()
  return ink ? [...peers.liveInks(), ink] : peers.liveInks() // ours on top
}

// ---- text and buttons: writing a text in place, pressing a button ------------
const editor = new TextEditor({ stage: $('stage'), camera, doc, widgets, endStep: () => history.boundary() })
editor.on('change', (boxes) => renderer.repaint(boxes))
renderer.editing = () => editor.editing
const presses = new Presses(cfg, doc, () => readOnly)
renderer.buttonLook = (w) => ({ pressed: presses.isPressed(w.id), pressable: presses.allowed(w) })
presses.on('change', () => renderer.request())
const notice = mountNotice($('stage'))
presses.on('refused', ({ widget, text }) => {
  const box = widgets.get(widget.id)?.box
  const [x, y] = box ? camera.toScreen(box.minX, box.maxY) : [renderer.size.w / 2, 60]
  notice.show(`Not pressed: ${text}`, x, y)
})

// ---- input, tools, UI -------------------------------------------------------
const tools = createTools({
  doc, camera, store, widgets, settings,
  author: () => me.name,
  showInk: (ink) => { own.setInk(ink); renderer.request() },
  endStep: () => history.boundary(),
}, editor, presses, (at) => notice.show(`This room holds as many texts and buttons as it may (${MAX_WIDGETS}): erase some first.`, at.x, at.y))
const input = attachInput({ stage: $('stage'), camera, settings, tools, presence: own, editor })
mountToolbar($('toolbar'), settings, history)
const promptInput = $<HTMLTextAreaElement>('prompt-input')
const chat = mountChat({
  doc, cfg, store, me: () => me,
  list: $<HTMLOListElement>('messages'), form: $<HTMLFormElement>('prompt-form'), input: promptInput,
  clearBtn: $<HTMLButtonElement>('chat-clear'),
})
attachKeyboard(shortcuts({ settings, history, input, chat: { field: promptInput, submit: chat.submit } }))
const behaviours = mountBehaviours({ cfg, el: $('behaviours'), readOnly: () => readOnly })
messagesOf(doc).observe(() => behaviours.refresh()) // a chat line may be an install, a pause, a firing's `say`
store.on('runs', () => behaviours.refresh()) // a run or a firing drew or lost strokes

// ---- connection indicator & read-only mode ---------------------------------
const connStatus = mountConnStatus($('conn'), conn)
conn.on('state', ({ state }) => {
  if (state === 'denied') setReadOnly(true, 'You do not have access to this room. Check your link.')
})

let readOnly = false
function setReadOnly(ro: boolean, why?: string) {
  readOnly = ro
  document.body.classList.toggle('readonly', ro)
  const banner = $('readonly-banner')
  banner.hidden = !ro
  banner.innerHTML = `<strong>View only.</strong> ${why ?? 'Watch, or ask @agent — drawing and chat are off.'}`
  if (ro) editor.finish()
  settings.set({ readOnly: ro, tool: ro ? 'pan' : 'draw' })
  renderer.request() // buttons a view link may not press look disabled
  chat.setReadOnly(ro)
  behaviours.renderAll()
}
conn.on('denied', (reason) => {
  console.info('inhabit: server refused a change:', reason)
  if (!readOnly) setReadOnly(true)
})
conn.on('state', ({ state, close }) => {
  // the link was revoked or expired while open: no more reconnecting (4401), and nothing to draw with
  const label = state === 'denied' ? lapsed(close) : null
  if (label) setReadOnly(true, `${label}: ask for a new link.`)
})
whoami(cfg).then((access) => {
  if (access === 'view') setReadOnly(true)
  else if (access === 'edit') chat.setEditor(true)
  else if (access === 'none') {
    connStatus.show('denied')
    setReadOnly(true, 'You do not have access to this room. Check your link.')
  }
})

// ---- zoom indicator ---------------------------------------------------------
const zoomEl = $('zoom')
zoomEl.classList.add('ui')
const showZoom = () => { zoomEl.textContent = `${Math.round(camera.z * 100)}%` }
camera.on('change', showZoom)
showZoom()
zoomEl.onclick = () => { const { w, h } = renderer.size; camera.zoomAt(w / 2, h / 2, 1 / camera.z) }

$('panel-toggle').onclick = () => document.body.classList.toggle('panel-hidden')

// ---- test / debug hooks -----------------------------------------------------
exposeDebugHooks({
  doc, provider, awareness, camera, renderer, store, widgets, editor, presses, settings, history, config: cfg, me,
  readOnly: () => readOnly,
  connection: () => conn.state(),
  chat,
})
