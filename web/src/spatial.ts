// Uniform grid index of stroke bounding boxes, for viewport culling and erasing.
//
// Bounded work per stroke: a box covering more than MAX_CELLS cells is not written into every
// cell it touches (a valid stroke may span the whole ±COORD_LIMIT canvas: millions of cells);
// it goes into a short `large` list that every query tests directly instead.
import { intersects, type BBox } from './geometry'

/** Cells one stroke may occupy before it counts as large (8 x 8 cells of 512 units). */
export const MAX_CELLS = 64

export class GridIndex {
  private cells = new Map<string, Set<string>>()
  private boxes = new Map<string, BBox>()
  private large = new Set<string>()
  constructor(readonly cell = 512) {}

  /** How many boxes are kept in the large list (for the debug stats and tests). */
  get largeCount() { return this.large.size }
  get cellCount() { return this.cells.size }

  private range(b: BBox) {
    const c = this.cell
    return [Math.floor(b.minX / c), Math.floor(b.minY / c), Math.floor(b.maxX / c), Math.floor(b.maxY / c)] as const
  }

  /** Cells `b` spans; Infinity (never a loop bound) for non-finite boxes. */
  private span(b: BBox): number {
    const [x0, y0, x1, y1] = this.range(b)
    const n = (x1 - x0 + 1) * (y1 - y0 + 1)
    return Number.isFinite(n) ? n : Infinity
  }

  insert(id: string, b: BBox) {
    if (this.boxes.has(id)) this.remove(id)
    this.boxes.set(id, b)
    if (this.span(b) > MAX_CELLS) { this.large.add(id); return }
    this.eachCell(b, (k) => {
      let s = this.cells.get(k)
      if (!s) this.cells.set(k, (s = new Set()))
      s.add(id)
    })
  }

  remove(id: string) {
    const b = this.boxes.get(id)
    if (!b) return
    this.boxes.delete(id)
    if (this.large.delete(id)) return
    this.eachCell(b, (k) => {
      const s = this.cells.get(k)
      if (s) { s.delete(id); if (s.size === 0) this.cells.delete(k) }
    })
  }

  /** Ids whose boxes intersect `q`. */
  query(q: BBox, out: Set<string> = new Set()): Set<string> {
    for (const id of this.large) if (intersects(this.boxes.get(id)!, q)) out.add(id)
    if (this.span(q) > this.cells.size) {
      // Zoomed far out: walking occupied cells is cheaper than walking the query range.
      for (const [id, b] of this.boxes) if (intersects(b, q)) out.add(id)
      return out
    }
    const [x0, y0, x1, y1] = this.range(q)
    for (let cx = x0; cx <= x1; cx++) for (let cy = y0; cy <= y1; cy++) {
      const s = this.cells.get(cx + ',' + cy)
      if (!s) continue
      for (const id of s) if (!out.has(id) && intersects(this.boxes.get(id)!, q)) out.add(id)
    }
    return out
  }

  /** Calls `fn` with the key of every cell `b` covers (callers keep this to <= MAX_CELLS). */
  private eachCell(b: BBox, fn: (key: string) => void) {
    const [x0, y0, x1, y1] = this.range(b)
    for (let cx = x0; cx <= x1; cx++) for (let cy = y0; cy <= y1; cy++) fn(cx + ',' + cy)
  }
}
