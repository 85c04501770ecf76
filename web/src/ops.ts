// Document writes: commit a stroke, erase strokes, undo an agent run, post a message.
import * as Y from 'yjs'
import { MAX_POINTS, MESSAGES, STROKES, type Message, type Stroke } from './types.gen'
import { newId } from './schema'

/** Transaction origin for this user's own edits (tracked by the UndoManager). */
export const LOCAL = { name: 'inhabit-local' }
export const RUN_UNDO = { name: 'inhabit-run-undo' }

export const strokesOf = (doc: Y.Doc) => doc.getMap<Stroke>(STROKES)
export const messagesOf = (doc: Y.Doc) => doc.getArray<Message>(MESSAGES)

/** Commit a finished stroke; long strokes are split into ≤ MAX_POINTS chunks. */
export function commitStroke(doc: Y.Doc, base: Omit<Stroke, 'id' | 't'>): string[] {
  const ids: string[] = []
  const per = MAX_POINTS * 3
  doc.transact(() => {
    for (let i = 0; i < base.points.length; i += per - 3) {
      const id = newId('h')
      const points = base.points.slice(i, i + per).map((v) => Math.round(v * 100) / 100)
      strokesOf(doc).set(id, { ...base, id, points, t: Date.now() })
      ids.push(id)
      if (i + per >= base.points.length) break
    }
  }, LOCAL)
  return ids
}

export function eraseStrokes(doc: Y.Doc, ids: Iterable<string>) {
  const map = strokesOf(doc)
  doc.transact(() => { for (const id of ids) map.delete(id) }, LOCAL)
}

/** Strokes drawn by agent run `run`. */
export function runStrokeIds(doc: Y.Doc, run: string): string[] {
  const out: string[] = []
  for (const [id, s] of strokesOf(doc)) if (s && (s as Stroke).run === run) out.push(id)
  return out
}

/** Delete every stroke of a run in ONE transaction. Returns how many were removed. */
export function undoRun(doc: Y.Doc, run: string): number {
  const ids = runStrokeIds(doc, run)
  const map = strokesOf(doc)
  doc.transact(() => { for (const id of ids) map.delete(id) }, RUN_UNDO)
  return ids.length
}

export function postMessage(doc: Y.Doc, m: Omit<Message, 'id' | 't'>): Message {
  const msg: Message = { id: newId('m'), t: Date.now(), ...m }
  doc.transact(() => messagesOf(doc).push([msg]), LOCAL)
  return msg
}
