// perfect-freehand outline -> Path2D.
import { getStroke } from 'perfect-freehand'

export interface Ink { points: number[]; width: number }

/** Mouse input reports a constant 0.5 (or 0): simulate pressure from speed then. */
function hasRealPressure(points: number[]): boolean {
  const p0 = points[2]
  for (let i = 2; i < points.length; i += 3) {
    if (points[i] !== p0) return true
  }
  return p0 !== 0.5 && p0 !== 0 && p0 !== undefined
}

function outline(ink: Ink, last = true): number[][] {
  const pts: number[][] = []
  const p = ink.points
  for (let i = 0; i + 2 < p.length; i += 3) pts.push([p[i]!, p[i + 1]!, p[i + 2]! || 0.5])
  return getStroke(pts, {
    size: ink.width,
    thinning: 0.55,
    smoothing: 0.5,
    streamline: 0.45,
    simulatePressure: !hasRealPressure(p),
    last,
  })
}

function toPath(poly: number[][]): Path2D {
  const path = new Path2D()
  const n = poly.length
  if (n < 3) return path
  const avg = (a: number, b: number) => (a + b) / 2
  path.moveTo(poly[0]![0]!, poly[0]![1]!)
  for (let i = 0; i < n; i++) {
    const a = poly[i]!, b = poly[(i + 1) % n]!
    path.quadraticCurveTo(a[0]!, a[1]!, avg(a[0]!, b[0]!), avg(a[1]!, b[1]!))
  }
  path.closePath()
  return path
}

export const inkPath = (ink: Ink, last = true) => toPath(outline(ink, last))
