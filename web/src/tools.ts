// Current tool, colour and width (observable).
import { Emitter } from './emitter'

export type Tool = 'draw' | 'erase' | 'pan'

export const PALETTE = ['#1e1e1e', '#e03131', '#f08c00', '#2f9e44', '#1971c2', '#7048e8', '#c2255c', '#868e96']
export const WIDTHS = [{ label: 'S', w: 4 }, { label: 'M', w: 8 }, { label: 'L', w: 16 }, { label: 'XL', w: 32 }]

export class ToolState extends Emitter<{ change: void }> {
  tool: Tool = 'draw'
  color = PALETTE[0]!
  width = 8
  readOnly = false
  set(p: Partial<Pick<ToolState, 'tool' | 'color' | 'width' | 'readOnly'>>) {
    Object.assign(this, p)
    this.emit('change')
  }
}
