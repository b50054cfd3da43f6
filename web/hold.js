// Press-and-hold buttons: an action that must not happen by accident (a pocket press, a stray
// tap) runs only after the button is held down for `ms`. A tap or a click does nothing. With the
// keyboard, Space or Enter held down for as long. While held the button has the class `holding`
// (the page's CSS draws the progress from it) and `aria-pressed` is true.

/**
 * Makes `button` hold-to-confirm: `onConfirm()` runs once per completed hold; `onHint(text)` is
 * told what to do ("Keep holding…", "Hold for 1.5 s to send", or '' when done).
 */
export function holdToConfirm(button, { ms = 1500, onConfirm, onHint = () => {} }) {
  let timer = null;
  const seconds = `${(ms / 1000).toLocaleString()} s`;

  const stop = (cancelled) => {
    if (timer === null) return;
    clearTimeout(timer);
    timer = null;
    button.classList.remove('holding');
    button.setAttribute('aria-pressed', 'false');
    if (cancelled) onHint(`Not sent: hold for ${seconds} to send.`);
  };
  const start = () => {
    if (timer !== null || button.disabled) return;
    button.classList.add('holding');
    button.setAttribute('aria-pressed', 'true');
    onHint('Keep holding…');
    timer = setTimeout(() => {
      stop(false);
      onHint('');
      onConfirm();
    }, ms);
  };

  button.setAttribute('aria-pressed', 'false');
  button.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    try {
      button.setPointerCapture(e.pointerId);
    } catch {
      // A synthetic pointer cannot be captured: the hold still works until it leaves.
    }
    start();
  });
  for (const type of ['pointerup', 'pointercancel', 'pointerleave', 'lostpointercapture']) {
    button.addEventListener(type, () => stop(true));
  }
  button.addEventListener('keydown', (e) => {
    if (e.key !== ' ' && e.key !== 'Enter') return;
    e.preventDefault();
    if (!e.repeat) start();
  });
  button.addEventListener('keyup', (e) => {
    if (e.key === ' ' || e.key === 'Enter') stop(true);
  });
  button.addEventListener('blur', () => stop(true));
  // A click (a tap, or the keyboard's own click) is never the action.
  button.addEventListener('click', (e) => e.preventDefault());
  button.addEventListener('contextmenu', (e) => e.preventDefault());
}
