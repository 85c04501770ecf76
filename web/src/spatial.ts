// Uniform grid index of stroke bounding boxes, for viewport culling and erasing.
import { intersects, type BBox } from './geometry'

export class GridIndex {
  private cells = new Map<string, Set<string>>()
  private boxes = new Map<string, BBox>()
  constructor(readonly cell = 512) {}

  private range(b: BBox) {
    const c = this.cell
    return [Math.floor(b.minX / c), Math.floor(b.minY / c), Math.floor(b.maxX / c), Math.floor(b.maxY / c)] as const
  }

  insert(id: string, b: BBox) {
    if (this.boxes.has(id)) this.remove(id)
    this.boxes.set(id, b)
    const [x0, y0, x1, y1] = this.range(b)
    for (let cx = x0; cx <= x1; cx++) for (let cy = y0; cy <= y1; cy++) {
      const k = cx + ',' + cy
      let s = this.cells.get(k)
      if (!s) this.cells.set(k, (s = new Set()))
      s.add(id)
    }
  }

  remove(id: string) {
    const b = this.boxes.get(id)
    if (!b) return
    this.boxes.delete(id)
    const [x0, y0, x1, y1] = this.range(b)
    for (let cx = x0; cx <= x1; cx++) for (let cy = y0; cy <= y1; cy++) {
      const k = cx + ',' + cy
      const s = this.cells.get(k)
      if (s) { s.delete(id); if (s.size === 0) this.cells.delete(k) }
    }
  }

  /** Ids whose boxes intersect `q`. */
  query(q: BBox, out: Set<string> = new Set()): Set<string> {
    const [x0, y0, x1, y1] = this.range(q)
    const span = (x1 - x0 + 1) * (y1 - y0 + 1)
    if (span > this.cells.size) {
      // Zoomed far out: walking occupied cells is cheaper than walking the query range.
      for (const [id, b] of this.boxes) if (intersects(b, q)) out.add(id)
      return out
    }
    for (let cx = x0; cx <= x1; cx++) for (let cy = y0; cy <= y1; cy++) {
      const s = this.cells.get(cx + ',' + cy)
      if (!s) continue
      for (const id of s) if (!out.has(id) && intersects(this.boxes.get(id)!, q)) out.add(id)
    }
    return out
  }
}
