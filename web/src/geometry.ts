// Bounding boxes and hit testing on flat [x, y, p, ...] point arrays.
export interface BBox { minX: number; minY: number; maxX: number; maxY: number }

export function strokeBBox(points: number[], width: number): BBox {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity
  for (let i = 0; i + 1 < points.length; i += 3) {
    const x = points[i]!, y = points[i + 1]!
    if (x < minX) minX = x
    if (x > maxX) maxX = x
    if (y < minY) minY = y
    if (y > maxY) maxY = y
  }
  const pad = width / 2 + 1
  return { minX: minX - pad, minY: minY - pad, maxX: maxX + pad, maxY: maxY + pad }
}

export function intersects(a: BBox, b: BBox): boolean {
  return a.minX <= b.maxX && a.maxX >= b.minX && a.minY <= b.maxY && a.maxY >= b.minY
}

function segDist2(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax, dy = by - ay
  const len2 = dx * dx + dy * dy
  let t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0
  t = Math.max(0, Math.min(1, t))
  const qx = ax + t * dx - px, qy = ay + t * dy - py
  return qx * qx + qy * qy
}

/** True if the circle (x, y, r) touches the stroke's centre line widened by width/2. */
export function hitStroke(points: number[], width: number, x: number, y: number, r: number): boolean {
  const rr = (r + width / 2) ** 2
  const n = points.length
  if (n < 6) return n >= 3 && (points[0]! - x) ** 2 + (points[1]! - y) ** 2 <= rr
  for (let i = 0; i + 5 < n; i += 3) {
    if (segDist2(x, y, points[i]!, points[i + 1]!, points[i + 3]!, points[i + 4]!) <= rr) return true
  }
  return false
}
