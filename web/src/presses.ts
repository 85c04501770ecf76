// A person's press on a button: who may press which button, the POST, and the pressed look
// until the behaviour answers. "Answers" is any write into the document tagged with the
// button's behaviour (a stroke, a widget, a chat line: added, changed or removed) — the firing's
// writes arriving — or PRESS_TIMEOUT without one (a firing may change only untagged strokes, or
// nothing). A refused press is released at once, with the server's reason in a short notice.
import type * as Y from 'yjs'
import { pressWidget, type Refusal } from './api'
import type { PageConfig } from './config'
import { Emitter } from './emitter'
import { messagesOf, strokesOf, widgetsOf } from './ops'
import type { Widget } from './types.gen'

/** How long a button shows pressed when its behaviour writes nothing we can recognise. */
export const PRESS_TIMEOUT = 4000

/** Why a press was refused, for a person. */
export function pressRefusal(r: Refusal): string {
  if (r.status === 429) return `too many presses, slow down${r.retryAfter ? ` (try again in ${r.retryAfter} s)` : ''}.`
  if (r.status === 403) return r.error || 'Your link may not press this button.'
  if (r.status === 0) return 'The server did not answer.'
  return r.error || `The server refused (HTTP ${r.status}).`
}

interface Pending { behaviour: string | undefined; timer: number }

export class Presses extends Emitter<{ change: void; refused: { widget: Widget; text: string } }> {
  private pending = new Map<string, Pending>()
  /** Presses sent (for the debug hooks and tests). */
  sent = 0

  constructor(private cfg: PageConfig, doc: Y.Doc, private readOnly: () => boolean) {
    super()
    observeBehaviourWrites(doc, (behaviours) => {
      for (const [id, p] of this.pending) if (p.behaviour && behaviours.has(p.behaviour)) this.release(id)
    })
  }

  /** Whether this page may press `w`: any button on an edit link, only `anyone` ones on a view link. */
  allowed(w: Widget): boolean {
    return w.type === 'button' && (w.anyone || !this.readOnly())
  }

  isPressed(id: string): boolean { return this.pending.has(id) }

  async press(w: Widget): Promise<void> {
    if (!this.allowed(w) || this.pending.has(w.id)) return // one press at a time per button
    this.pending.set(w.id, { behaviour: w.behaviour, timer: window.setTimeout(() => this.release(w.id), PRESS_TIMEOUT) })
    this.sent++
    this.emit('change')
    const r = await pressWidget(this.cfg, w.id)
    if (r.ok) return
    this.release(w.id)
    this.emit('refused', { widget: w, text: pressRefusal(r) })
  }

  private release(id: string) {
    const p = this.pending.get(id)
    if (!p) return
    clearTimeout(p.timer)
    this.pending.delete(id)
    this.emit('change')
  }
}

/** Calls `fn` with the behaviours named by the entries each change to strokes, widgets or chat touched. */
function observeBehaviourWrites(doc: Y.Doc, fn: (behaviours: Set<string>) => void) {
  const tag = (v: unknown, into: Set<string>) => {
    const b = v && typeof v === 'object' ? (v as { behaviour?: unknown }).behaviour : undefined
    if (typeof b === 'string') into.add(b)
  }
  for (const map of [strokesOf(doc), widgetsOf(doc)]) {
    map.observe((ev) => {
      const found = new Set<string>()
      for (const [key, change] of ev.changes.keys) {
        tag(change.oldValue, found)
        tag(map.get(key), found)
      }
      if (found.size) fn(found)
    })
  }
  messagesOf(doc).observe((ev) => {
    const found = new Set<string>()
    for (const item of ev.changes.added) for (const v of item.content.getContent()) tag(v, found)
    if (found.size) fn(found)
  })
}
