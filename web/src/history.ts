// Undo/redo of this user's own edits only (transactions with origin LOCAL): strokes and widgets.
import * as Y from 'yjs'
import { LOCAL, strokesOf, widgetsOf } from './ops'
import { Emitter } from './emitter'

export function createHistory(doc: Y.Doc) {
  const um = new Y.UndoManager([strokesOf(doc), widgetsOf(doc)], {
    trackedOrigins: new Set([LOCAL]),
    captureTimeout: 1e9, // one undo step per gesture: the caller ends steps with `boundary()`
  })
  const events = new Emitter<{ change: void }>()
  const changed = () => events.emit('change')
  um.on('stack-item-added', changed)
  um.on('stack-item-popped', changed)
  um.on('stack-cleared', changed)
  return {
    undo: () => { um.undo(); um.stopCapturing() },
    redo: () => { um.redo(); um.stopCapturing() },
    boundary: () => um.stopCapturing(),
    canUndo: () => um.canUndo(),
    canRedo: () => um.canRedo(),
    on: events.on.bind(events),
  }
}
export type History = ReturnType<typeof createHistory>
