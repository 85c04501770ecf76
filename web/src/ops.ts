// Document writes: commit a stroke, place or edit a text, erase strokes and widgets, post a message.
// (Undoing an agent run is the server's job, see api.undoRun, so its run record learns of it.)
import * as Y from 'yjs'
import { MAX_POINTS, MESSAGES, STROKES, WIDGETS, type Message, type Stroke, type Widget } from './types.gen'
import { newId } from './schema'

/** Transaction origin for this user's own edits (tracked by the UndoManager). */
export const LOCAL = { name: 'inhabit-local' }

// Values are `unknown`: any peer can write anything; readers validate (./schema).
export const strokesOf = (doc: Y.Doc) => doc.getMap<unknown>(STROKES)
export const messagesOf = (doc: Y.Doc) => doc.getArray<unknown>(MESSAGES)
export const widgetsOf = (doc: Y.Doc) => doc.getMap<unknown>(WIDGETS)

/** Commit a finished stroke; long strokes are split into ≤ MAX_POINTS chunks. */
export function commitStroke(doc: Y.Doc, base: Omit<Stroke, 'id' | 't'>): string[] {
  const ids: string[] = []
  const per = MAX_POINTS * 3
  doc.transact(() => {
    for (let i = 0; i < base.points.length; i += per - 3) {
      const id = newId('h')
      const points = base.points.slice(i, i + per).map((v) => Math.round(v * 100) / 100)
      const stroke: Stroke = { ...base, id, points, t: Date.now() }
      strokesOf(doc).set(id, stroke)
      ids.push(id)
      if (i + per >= base.points.length) break
    }
  }, LOCAL)
  return ids
}

/** Remove strokes and widgets (text, buttons) in one transaction: one undo step. */
export function eraseItems(doc: Y.Doc, strokeIds: Iterable<string>, widgetIds: Iterable<string> = []) {
  const strokes = strokesOf(doc), widgets = widgetsOf(doc)
  doc.transact(() => {
    for (const id of strokeIds) strokes.delete(id)
    for (const id of widgetIds) widgets.delete(id)
  }, LOCAL)
}

/** Place a widget, or replace it with a new version (an edit writes the whole object). */
export function putWidget(doc: Y.Doc, w: Widget) {
  doc.transact(() => widgetsOf(doc).set(w.id, { ...w }), LOCAL)
}

export function postMessage(doc: Y.Doc, m: Omit<Message, 'id' | 't'>): Message {
  const msg: Message = { id: newId('m'), t: Date.now(), ...m }
  doc.transact(() => messagesOf(doc).push([msg]), LOCAL)
  return msg
}
