// This page's own awareness fields: pointer position and stroke in progress, as peers see them.
// Updates are coalesced to at most one per 40 ms; a stroke's end is sent at once.
import type { Awareness } from 'y-protocols/awareness'
import type { LiveInk } from './renderer'

const EVERY_MS = 40

export function createLocalPresence(awareness: Awareness) {
  let cursor: { x: number; y: number } | null = null
  let ink: LiveInk | null = null
  let dirty = false
  let timer = 0

  const flush = () => {
    if (timer) { clearTimeout(timer); timer = 0 }
    if (!dirty) return
    dirty = false
    awareness.setLocalState({
      ...awareness.getLocalState(),
      cursor,
      // A copy: the tool keeps appending to its own array.
      drawing: ink ? { points: ink.points.slice(), color: ink.color, width: ink.width } : null,
    })
  }
  const schedule = () => {
    dirty = true
    if (!timer) timer = window.setTimeout(flush, EVERY_MS)
  }

  return {
    /** Pointer position in world units (null: off the canvas); 0.1 precision is plenty. */
    setCursor(at: [number, number] | null) {
      cursor = at && { x: Math.round(at[0] * 10) / 10, y: Math.round(at[1] * 10) / 10 }
      schedule()
    },
    /** The stroke in progress (null: none; sent immediately so peers drop it on pointer-up). */
    setInk(next: LiveInk | null) {
      ink = next
      schedule()
      if (!next) flush()
    },
    ink: () => ink,
    /** Send what is pending now (end of a gesture) instead of up to 40 ms later. */
    flush,
  }
}
export type LocalPresence = ReturnType<typeof createLocalPresence>
