// Every keyboard shortcut of the page, in one table (handled by ./keyboard).
import type { Shortcut } from './keyboard'
import type { History } from './history'
import type { Input } from './input'
import { PALETTE, type ToolId, type ToolState } from './tools/state'

interface Deps {
  settings: ToolState
  history: History
  input: Input
  chat: { field: HTMLElement; submit: () => void }
}

export function shortcuts({ settings, history, input, chat }: Deps): Shortcut[] {
  const canEdit = () => !settings.readOnly
  // On a view-only page every tool key falls back to the hand.
  const select = (tool: ToolId) => () => settings.set({ tool: canEdit() ? tool : 'pan' })
  return [
    { keys: ['mod+z'], press: () => { if (canEdit()) history.undo() } },
    { keys: ['mod+shift+z', 'mod+y', 'mod+shift+y'], press: () => { if (canEdit()) history.redo() } },
    { keys: ['p', 'd', 'b'], press: select('draw') },
    { keys: ['t'], press: select('text') },
    { keys: ['e'], press: select('erase') },
    { keys: ['h'], press: select('pan') },
    // 1-8: palette colours (and the pen)
    ...PALETTE.map((color, i): Shortcut => ({
      keys: [String(i + 1)],
      press: () => { if (canEdit()) settings.set({ color, tool: 'draw' }) },
    })),
    // Hold Space to pan with any tool.
    { keys: ['space'], press: () => input.holdPan(true), release: () => input.holdPan(false) },
    // In the prompt box: Enter sends, Shift+Enter is a new line.
    { keys: ['enter', 'mod+enter'], field: chat.field, press: chat.submit },
  ]
}
