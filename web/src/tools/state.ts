// Which tool is selected, and the colour and width new strokes get (observable); a text's size follows the width.
import { Emitter } from '../emitter'

export type ToolId = 'draw' | 'text' | 'erase' | 'pan'

export const PALETTE = ['#1e1e1e', '#e03131', '#f08c00', '#2f9e44', '#1971c2', '#7048e8', '#c2255c', '#868e96']
export const WIDTHS = [{ label: 'S', w: 4 }, { label: 'M', w: 8 }, { label: 'L', w: 16 }, { label: 'XL', w: 32 }]

/** The font size (canvas units) a new text gets at each stroke width S, M, L, XL. */
export const textSize = (width: number) => (width <= 4 ? 16 : width <= 8 ? 24 : width <= 16 ? 36 : 56)

type Settings = Pick<ToolState, 'tool' | 'color' | 'width' | 'readOnly'>

export class ToolState extends Emitter<{ change: void }> {
  tool: ToolId = 'draw'
  color = PALETTE[0]!
  width = 8
  /** View-only page: only panning is possible. */
  readOnly = false

  set(p: Partial<Settings>) {
    Object.assign(this, p)
    this.emit('change')
  }
}
