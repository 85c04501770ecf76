// window.__inhabit: handles for the browser tests (tests/pages.py), benchmarks and the console.
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import type { Awareness } from 'y-protocols/awareness'
import type { Camera } from './camera'
import type { Renderer } from './renderer'
import type { StrokeStore } from './store'
import type { WidgetStore } from './widgets'
import type { TextEditor } from './textEditor'
import type { Presses } from './presses'
import type { ToolState } from './tools/state'
import type { History } from './history'
import type { PageConfig } from './config'
import type { Identity } from './identity'
import type { ConnState } from './connection'
import { commitStroke, strokesOf, widgetsOf } from './ops'

interface Parts {
  doc: Y.Doc
  provider: WebsocketProvider
  awareness: Awareness
  camera: Camera
  renderer: Renderer
  store: StrokeStore
  widgets: WidgetStore
  editor: TextEditor
  presses: Presses
  settings: ToolState
  history: History
  config: PageConfig
  me: Identity
  readOnly: () => boolean
  connection: () => ConnState
  chat: { shownCount(): number }
}

declare global {
  interface Window { __inhabit: unknown }
}

/** The p-th percentile of `a` (0 when empty). */
const pct = (a: number[], p: number) => {
  if (!a.length) return 0
  const s = [...a].sort((x, y) => x - y)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!
}

export function exposeDebugHooks(parts: Parts) {
  const { doc, renderer, store, widgets, camera, provider, chat } = parts
  window.__inhabit = {
    ...parts,
    Y,
    strokes: () => strokesOf(doc),
    widgetMap: () => widgetsOf(doc),
    /** Where widget `id` is drawn, in CSS pixels of the page (null: not in the room, or invalid). */
    widgetScreenBox: (id: string) => {
      const e = widgets.get(id)
      if (!e) return null
      const r = renderer.canvas.getBoundingClientRect()
      const [x0, y0] = camera.toScreen(e.box.minX, e.box.minY)
      const [x1, y1] = camera.toScreen(e.box.maxX, e.box.maxY)
      return { x: r.left + x0, y: r.top + y0, w: x1 - x0, h: y1 - y0 }
    },
    commitStroke: (s: Parameters<typeof commitStroke>[1]) => commitStroke(doc, s),
    resetFrameTimes: () => { renderer.frameTimes = [] },
    stats: () => ({
      strokes: store.entries.size,
      invalid: store.invalid.size,
      widgets: widgets.entries.size,
      invalidWidgets: widgets.invalid.size,
      largeStrokes: store.index.largeCount,
      indexCells: store.index.cellCount,
      messagesShown: chat.shownCount(),
      visible: renderer.lastVisible,
      pathsBuilt: store.pathsBuilt,
      sceneRenders: renderer.sceneRenders,
      frames: renderer.frames,
      lastFrameMs: renderer.frameTimes[renderer.frameTimes.length - 1] ?? 0,
      frameTimes: renderer.frameTimes.slice(),
      p50: pct(renderer.frameTimes, 0.5),
      p95: pct(renderer.frameTimes, 0.95),
      max: Math.max(0, ...renderer.frameTimes),
      synced: provider.synced,
      camera: { x: camera.x, y: camera.y, z: camera.z },
    }),
  }
}
