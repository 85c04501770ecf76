// The page's one keyboard handler: a keydown and a keyup listener on window that look keys up
// in a table of shortcuts (the table itself is in shortcuts.ts).
//
// Combos are written like 'p', 'mod+z', 'mod+shift+z', 'space', 'enter'; 'mod' is Ctrl or ⌘.
// Shift only counts with 'mod' or on named keys: Shift+P still means 'p' (and Shift+1 is '!').

export interface Shortcut {
  keys: string[]
  press: () => void
  /** For keys that are held (Space): called on key-up, or when the window loses focus. */
  release?: () => void
  /** Only while typing in this field. Without it, the shortcut never fires in a text field. */
  field?: HTMLElement
}

const typingIn = (t: EventTarget | null) =>
  t instanceof HTMLElement && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)

const keyName = (e: KeyboardEvent) => (e.code === 'Space' ? 'space' : e.key.toLowerCase())

function comboOf(e: KeyboardEvent): string {
  const mod = e.ctrlKey || e.metaKey
  const printable = e.key.length === 1
  const parts = [mod && 'mod', e.altKey && 'alt', e.shiftKey && (mod || !printable) && 'shift', keyName(e)]
  return parts.filter(Boolean).join('+')
}

export function attachKeyboard(table: Shortcut[], target: Window = window) {
  const held = new Map<string, Shortcut>() // key name -> the hold shortcut it pressed

  target.addEventListener('keydown', (e) => {
    if (e.isComposing) return // an input method is building a character
    const combo = comboOf(e)
    const s = table.find((s) => s.keys.includes(combo) && (s.field ? s.field === e.target : !typingIn(e.target)))
    if (!s) return
    e.preventDefault()
    if (s.release) {
      if (held.has(keyName(e))) return // auto-repeat of a held key
      held.set(keyName(e), s)
    }
    s.press()
  })
  // Releases are honoured even while typing, so a held key never gets stuck.
  target.addEventListener('keyup', (e) => {
    const s = held.get(keyName(e))
    if (s) { held.delete(keyName(e)); s.release!() }
  })
  target.addEventListener('blur', () => {
    for (const s of held.values()) s.release!()
    held.clear()
  })
}
