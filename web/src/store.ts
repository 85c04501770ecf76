// Local mirror of the 'strokes' Y.Map: validated entries, spatial index, Path2D cache.
// Incremental: only keys named in a Y event are (re)built. Emits 'change' with the
// bounding boxes that changed (old and new), so the renderer can repaint just those.
import * as Y from 'yjs'
import type { Stroke } from './types.gen'
import { isStroke } from './schema'
import { Emitter } from './emitter'
import { strokeBBox, type BBox } from './geometry'
import { GridIndex } from './spatial'
import { inkPath } from './paths'

export interface Entry { stroke: Stroke; bbox: BBox; seq: number; path: Path2D | null }

export class StrokeStore extends Emitter<{ change: BBox[] }> {
  readonly entries = new Map<string, Entry>()
  readonly index = new GridIndex(512)
  pathsBuilt = 0
  private seq = 0

  constructor(map: Y.Map<unknown>) {
    super()
    for (const [k, v] of map) this.put(k, v)
    map.observe((ev) => {
      const dirty: BBox[] = []
      for (const key of ev.keysChanged) {
        const old = this.entries.get(key)
        if (old) { dirty.push(old.bbox); this.drop(key) }
        const v = map.get(key)
        if (v !== undefined) { const e = this.put(key, v); if (e) dirty.push(e.bbox) }
      }
      this.emit('change', dirty)
    })
  }

  private put(key: string, v: unknown): Entry | null {
    if (!isStroke(v, key)) return null
    const e: Entry = { stroke: v, bbox: strokeBBox(v.points, v.width), seq: this.seq++, path: null }
    this.entries.set(key, e)
    this.index.insert(key, e.bbox)
    return e
  }

  private drop(key: string) {
    this.entries.delete(key)
    this.index.remove(key)
  }

  /** Path2D for an entry, built on first use and cached per stroke id. */
  path(e: Entry): Path2D {
    if (!e.path) { e.path = inkPath(e.stroke); this.pathsBuilt++ }
    return e.path
  }

  /** How many strokes on the canvas agent run `run` drew. */
  countRun(run: string): number {
    let n = 0
    for (const e of this.entries.values()) if (e.stroke.run === run) n++
    return n
  }

  /** Entries intersecting `view`, in arrival order (painter's order). */
  visible(view: BBox): Entry[] {
    const ids = this.index.query(view)
    const out: Entry[] = []
    for (const id of ids) { const e = this.entries.get(id); if (e) out.push(e) }
    out.sort((a, b) => a.seq - b.seq)
    return out
  }
}
