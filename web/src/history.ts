// Undo/redo of this user's own edits only (transactions with origin LOCAL).
import * as Y from 'yjs'
import { LOCAL, strokesOf } from './ops'

export function createHistory(doc: Y.Doc) {
  const um = new Y.UndoManager(strokesOf(doc), {
    trackedOrigins: new Set([LOCAL]),
    captureTimeout: 1e9, // one undo step per gesture: the caller ends steps with `boundary()`
  })
  const fns = new Set<() => void>()
  const emit = () => { for (const fn of fns) fn() }
  um.on('stack-item-added', emit)
  um.on('stack-item-popped', emit)
  um.on('stack-cleared', emit)
  return {
    manager: um,
    undo: () => { um.undo(); um.stopCapturing() },
    redo: () => { um.redo(); um.stopCapturing() },
    boundary: () => um.stopCapturing(),
    canUndo: () => um.canUndo(),
    canRedo: () => um.canRedo(),
    onChange: (fn: () => void) => { fns.add(fn) },
  }
}
export type History = ReturnType<typeof createHistory>
