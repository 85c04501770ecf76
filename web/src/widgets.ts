// Local mirror of the 'widgets' Y.Map (text and buttons): validated entries with their laid-out
// boxes in canvas units, for the renderer, hit tests and the eraser. At most MAX_WIDGETS (500)
// per room, so a linear scan is enough here (strokes need the grid index: they are unbounded).
// Emits 'change' with the boxes that changed (old and new), like the stroke store.
import * as Y from 'yjs'
import { MAX_WIDGETS, type Widget } from './types.gen'
import { parseWidget } from './schema'
import { Emitter } from './emitter'
import { intersects, type BBox } from './geometry'

/** The font of every widget, in the page's own face; the text editor uses the same. */
export const WIDGET_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
/** Line height as a multiple of the font size. */
export const LINE = 1.25
/** A button's padding around its label, as multiples of the font size. */
const PAD_X = 0.6, PAD_Y = 0.35

export interface WidgetEntry {
  widget: Widget
  lines: string[]
  /** Where it is drawn: the text's block, or the button's outline, in canvas units. */
  box: BBox
}

/** Widths measured once at a reference size and scaled: the layout does not depend on the zoom. */
const REF = 100
const measureCtx = document.createElement('canvas').getContext('2d')!
measureCtx.font = `${REF}px ${WIDGET_FONT}`
export const textWidth = (line: string, size: number) => measureCtx.measureText(line).width * size / REF

export function layout(w: Widget): WidgetEntry {
  const lines = w.text.split('\n')
  const s = w.size
  const width = Math.max(s * 0.5, ...lines.map((l) => textWidth(l, s)))
  const height = lines.length * s * LINE
  const box = w.type === 'button'
    ? { minX: w.x, minY: w.y, maxX: w.x + width + 2 * PAD_X * s, maxY: w.y + height + 2 * PAD_Y * s }
    : { minX: w.x, minY: w.y, maxX: w.x + width, maxY: w.y + height }
  return { widget: w, lines, box }
}

export class WidgetStore extends Emitter<{ change: BBox[] }> {
  readonly entries = new Map<string, WidgetEntry>()
  /** Entries that failed validation (not rendered, not pressable). */
  readonly invalid = new Set<string>()
  private warned = false

  constructor(readonly map: Y.Map<unknown>) {
    super()
    for (const [k, v] of map) this.put(k, v)
    map.observe((ev) => {
      const dirty: BBox[] = []
      for (const key of ev.keysChanged) {
        const old = this.entries.get(key)
        if (old) { dirty.push(old.box); this.entries.delete(key) }
        this.invalid.delete(key)
        const v = map.get(key)
        const e = v === undefined ? null : this.put(key, v)
        if (e) dirty.push(e.box)
      }
      this.emit('change', dirty)
    })
  }

  private put(key: string, v: unknown): WidgetEntry | null {
    const w = parseWidget(v, key)
    if (!w) { this.skip(key); return null }
    const e = layout(w)
    this.entries.set(key, e)
    return e
  }

  /** Counted, and logged once per page (a peer may write hundreds). */
  private skip(key: string) {
    this.invalid.add(key)
    if (this.warned) return
    this.warned = true
    console.warn(`inhabit: skipped an invalid widget (${JSON.stringify(key).slice(0, 90)}): ` +
      'bad fields, or outside the canvas; further ones are counted in __inhabit.stats().invalidWidgets')
  }

  get(id: string): WidgetEntry | undefined { return this.entries.get(id) }

  /** Whether the room holds MAX_WIDGETS entries (valid or not, as the server counts): no new text then. */
  get full(): boolean { return this.map.size >= MAX_WIDGETS }

  /** Entries of `type` intersecting `view`, oldest first (painter's order: the same on every page). */
  visible(view: BBox, type?: Widget['type']): WidgetEntry[] {
    const out: WidgetEntry[] = []
    for (const e of this.entries.values()) {
      if ((!type || e.widget.type === type) && intersects(e.box, view)) out.push(e)
    }
    return out.sort(byAge)
  }

  /** The topmost widget of `type` under the canvas point (x, y), within `r` canvas units. */
  at(x: number, y: number, type?: Widget['type'], r = 0): WidgetEntry | null {
    const hits = this.visible({ minX: x - r, minY: y - r, maxX: x + r, maxY: y + r }, type)
    return hits[hits.length - 1] ?? null
  }
}

const byAge = (a: WidgetEntry, b: WidgetEntry) =>
  a.widget.t - b.widget.t || (a.widget.id < b.widget.id ? -1 : a.widget.id > b.widget.id ? 1 : 0)
