// Floating toolbar: tools, palette, widths (a text's size too), undo/redo (keyboard shortcuts: shortcuts.ts).
import { ICONS } from './icons'
import { PALETTE, WIDTHS, type ToolId, type ToolState } from './tools/state'
import type { History } from './history'

export function mountToolbar(root: HTMLElement, settings: ToolState, history: History) {
  root.classList.add('ui')
  const btn = (cls: string, html: string, title: string, testid: string) => {
    const b = document.createElement('button')
    b.className = cls
    b.innerHTML = html
    b.title = title
    b.setAttribute('aria-label', title)
    b.dataset.testid = testid
    return b
  }
  const group = (cls = '') => { const g = document.createElement('div'); g.className = 'group ' + cls; root.append(g); return g }

  const gTools = group()
  const toolBtns = new Map<ToolId, HTMLButtonElement>()
  for (const [t, title, key] of [['draw', 'Draw', 'P'], ['text', 'Text', 'T'], ['erase', 'Eraser', 'E'], ['pan', 'Hand (hold Space)', 'H']] as const) {
    const b = btn('tool', ICONS[t], `${title} — ${key}`, `tool-${t}`)
    b.onclick = () => settings.set({ tool: t })
    toolBtns.set(t, b)
    gTools.append(b)
  }

  const gColors = group('colors')
  const colorBtns = PALETTE.map((c) => {
    const b = btn('swatch', '', `Colour ${c}`, `color-${c.slice(1)}`)
    b.style.setProperty('--c', c)
    b.onclick = () => settings.set({ color: c, tool: settings.tool === 'text' ? 'text' : 'draw' })
    gColors.append(b)
    return [c, b] as const
  })

  const gWidths = group('widths')
  const widthBtns = WIDTHS.map(({ label, w }) => {
    const b = btn('width', `<span class="bar" style="height:${Math.max(2, Math.min(12, w / 2.5))}px"></span>`, `Width ${label}`, `width-${label}`)
    b.onclick = () => settings.set({ width: w, tool: settings.tool === 'pan' ? 'draw' : settings.tool })
    gWidths.append(b)
    return [w, b] as const
  })

  const gHist = group()
  const undo = btn('tool', ICONS.undo, 'Undo — Ctrl+Z', 'undo')
  const redo = btn('tool', ICONS.redo, 'Redo — Ctrl+Shift+Z', 'redo')
  undo.onclick = () => history.undo()
  redo.onclick = () => history.redo()
  gHist.append(undo, redo)

  const lock = document.createElement('div')
  lock.className = 'lock'
  lock.innerHTML = `${ICONS.lock}<span>View only</span>`
  lock.dataset.testid = 'readonly-badge'
  root.append(lock)

  const sync = () => {
    const ro = settings.readOnly
    root.classList.toggle('readonly', ro)
    for (const [t, b] of toolBtns) {
      b.classList.toggle('active', t === settings.tool)
      b.disabled = ro && t !== 'pan'
    }
    for (const [c, b] of colorBtns) { b.classList.toggle('active', c === settings.color); b.disabled = ro }
    for (const [w, b] of widthBtns) { b.classList.toggle('active', w === settings.width); b.disabled = ro }
    undo.disabled = ro || !history.canUndo()
    redo.disabled = ro || !history.canRedo()
  }
  settings.on('change', sync)
  history.on('change', sync)
  sync()
}
