// The interface every canvas tool implements, and what tools may use.
// The input layer (../input.ts) turns pointer events into these calls, one gesture at a time.
import type * as Y from 'yjs'
import type { Camera } from '../camera'
import type { StrokeStore } from '../store'
import type { WidgetStore } from '../widgets'
import type { LiveInk } from '../renderer'
import type { ToolState } from './state'

/** A pointer position on the stage in CSS pixels, with pen pressure (0.5 when unknown). */
export interface Sample { x: number; y: number; pressure: number }

export interface Tool {
  /** CSS cursor over the stage; may change while a gesture is under way. */
  readonly cursor: string
  /** A pointer went down: a gesture starts. */
  down(at: Sample): void
  /** The pointer moved; the coalesced positions since the last call, oldest first. */
  move(samples: Sample[]): void
  /** The pointer went up: finish the gesture. */
  up(): void
  /** The gesture was aborted (pointercancel, a second finger): drop it, commit nothing. */
  cancel(): void
}

export interface ToolContext {
  doc: Y.Doc
  camera: Camera
  store: StrokeStore
  widgets: WidgetStore
  settings: ToolState
  author(): string
  /** Show this page's stroke in progress (null: none), here and to peers. */
  showInk(ink: LiveInk | null): void
  /** Close the current undo step: one Ctrl+Z undoes one gesture. */
  endStep(): void
}
