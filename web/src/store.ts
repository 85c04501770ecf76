// Local mirror of the 'strokes' Y.Map: validated entries, spatial index, Path2D cache.
// Incremental: only keys named in a Y event are (re)built. Emits 'change' with the
// bounding boxes that changed (old and new), so the renderer can repaint just those, and
// 'runs' with the agent runs whose stroke counts changed, so only their cards re-render.
import * as Y from 'yjs'
import type { Stroke } from './types.gen'
import { isStroke } from './schema'
import { Emitter } from './emitter'
import { strokeBBox, type BBox } from './geometry'
import { GridIndex } from './spatial'
import { inkPath } from './paths'

export interface Entry { stroke: Stroke; bbox: BBox; seq: number; path: Path2D | null }

export class StrokeStore extends Emitter<{ change: BBox[]; runs: Set<string> }> {
  readonly entries = new Map<string, Entry>()
  readonly index = new GridIndex(512)
  pathsBuilt = 0
  /** Entries that failed validation (not rendered, not indexed). */
  readonly invalid = new Set<string>()
  private runCounts = new Map<string, number>()
  private seq = 0
  private warned = false

  constructor(map: Y.Map<unknown>) {
    super()
    for (const [k, v] of map) this.put(k, v, new Set())
    map.observe((ev) => {
      const dirty: BBox[] = []
      const runs = new Set<string>()
      for (const key of ev.keysChanged) {
        const old = this.entries.get(key)
        if (old) { dirty.push(old.bbox); this.drop(key, runs) }
        this.invalid.delete(key)
        const v = map.get(key)
        if (v !== undefined) { const e = this.put(key, v, runs); if (e) dirty.push(e.bbox) }
      }
      this.emit('change', dirty)
      if (runs.size) this.emit('runs', runs)
    })
  }

  private put(key: string, v: unknown, runs: Set<string>): Entry | null {
    if (!isStroke(v, key)) { this.skip(key); return null }
    const e: Entry = { stroke: v, bbox: strokeBBox(v.points, v.width), seq: this.seq++, path: null }
    this.entries.set(key, e)
    this.index.insert(key, e.bbox)
    if (v.run) this.bump(v.run, 1, runs)
    return e
  }

  private drop(key: string, runs: Set<string>) {
    const run = this.entries.get(key)?.stroke.run
    this.entries.delete(key)
    this.index.remove(key)
    if (run) this.bump(run, -1, runs)
  }

  private bump(run: string, by: number, changed: Set<string>) {
    const n = this.countRun(run) + by
    if (n > 0) this.runCounts.set(run, n); else this.runCounts.delete(run)
    changed.add(run)
  }

  /** An entry that is no valid stroke: counted, and logged once per page (a peer may write thousands). */
  private skip(key: string) {
    this.invalid.add(key)
    if (this.warned) return
    this.warned = true
    console.warn(`inhabit: skipped an invalid stroke (${JSON.stringify(key).slice(0, 90)}): ` +
      'bad fields, or a point outside the canvas; further ones are counted in __inhabit.stats().invalid')
  }

  /** Path2D for an entry, built on first use and cached per stroke id. */
  path(e: Entry): Path2D {
    if (!e.path) { e.path = inkPath(e.stroke); this.pathsBuilt++ }
    return e.path
  }

  /** How many strokes on the canvas agent run `run` drew (kept up to date on every change). */
  countRun(run: string): number {
    return this.runCounts.get(run) ?? 0
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
