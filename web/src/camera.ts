// Viewport transform: screen = (world - origin) * zoom. Emits 'change' after every move.
import { Emitter } from './emitter'

export class Camera extends Emitter<{ change: void }> {
  x = 0
  y = 0
  z = 1
  static readonly MIN = 0.05
  static readonly MAX = 8

  toWorld(sx: number, sy: number): [number, number] {
    return [sx / this.z + this.x, sy / this.z + this.y]
  }
  toScreen(wx: number, wy: number): [number, number] {
    return [(wx - this.x) * this.z, (wy - this.y) * this.z]
  }
  /** Move the view by a screen-space delta (content follows the pointer). */
  panBy(dx: number, dy: number) {
    this.x -= dx / this.z
    this.y -= dy / this.z
    this.emit('change')
  }
  /** Zoom by `factor`, keeping the world point under screen (sx, sy) fixed. */
  zoomAt(sx: number, sy: number, factor: number) {
    const [wx, wy] = this.toWorld(sx, sy)
    this.z = Math.min(Camera.MAX, Math.max(Camera.MIN, this.z * factor))
    this.x = wx - sx / this.z
    this.y = wy - sy / this.z
    this.emit('change')
  }
  set(x: number, y: number, z: number) {
    this.x = x; this.y = y; this.z = Math.min(Camera.MAX, Math.max(Camera.MIN, z))
    this.emit('change')
  }
}
