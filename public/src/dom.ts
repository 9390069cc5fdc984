/**
 * Formatting and DOM helpers of the dashboard. All server data reaches the DOM through textContent and
 * attributes, never innerHTML.
 */

export const $ = (id: string): HTMLElement => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html has no #${id}`);
  return e;
};
export const tbody = (id: string): HTMLTableSectionElement => {
  const body = ($(id) as HTMLTableElement).tBodies[0];
  if (!body) throw new Error(`#${id} has no tbody`);
  return body;
};

export const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const fx = (x: unknown, dp: number) => (isNum(x) ? x.toFixed(dp) : '—');
export const fmtPx = (x: unknown) => fx(x, 4);
export const fmtYld = (x: unknown) => fx(x, 4);
export const fmtInt = (x: unknown) => (isNum(x) ? Math.round(x).toLocaleString('en-IN') : '—');
const sign = (x: number) => (x < 0 ? '-' : '');
export const fmtRs = (x: unknown) => (isNum(x) ? `${sign(x)}₹${fmtInt(Math.abs(x))}` : '—');
export const fmtCr = (rupees: unknown) => (isNum(rupees) ? `${sign(rupees)}₹${(Math.abs(rupees) / 1e7).toLocaleString('en-IN', { maximumFractionDigits: 2 })} cr` : '—');
const IST = new Intl.DateTimeFormat('en-IN', { timeZone: 'Asia/Kolkata', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
export const fmtTime = (ts: string | null | undefined) => {
  const d = ts ? new Date(ts) : null;
  return d && !Number.isNaN(d.getTime()) ? IST.format(d) : '—';
};

export function el(tag: string, text?: string | number | null, className?: string): HTMLElement {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

export interface Cell {
  text: string;
  cls?: string;
  title?: string;
}

export function row(cells: Cell[]): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = el('td', c.text, c.cls);
    if (c.title) td.title = c.title;
    tr.appendChild(td);
  }
  return tr;
}

export function emptyRow(body: HTMLTableSectionElement, cols: number, text: string): void {
  const tr = el('tr', null, 'empty');
  const td = el('td', text) as HTMLTableCellElement;
  td.colSpan = cols;
  tr.appendChild(td);
  body.appendChild(tr);
}

/** Restarts a cell's flash animation (removing and re-adding the class needs a reflow in between). */
export function flash(cell: HTMLElement, cls: 'f-up' | 'f-down' | 'f-chg'): void {
  cell.classList.remove('f-up', 'f-down', 'f-chg');
  void cell.offsetWidth;
  cell.classList.add(cls);
}

/** `label value` pairs in a facts box. */
export function fact(box: HTMLElement, label: string, value: string): void {
  const span = el('span', `${label} `);
  span.appendChild(el('b', value));
  box.appendChild(span);
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function banner(nodes: Node[] | null): void {
  const b = $('banner');
  if (!nodes) {
    b.hidden = true;
    return;
  }
  b.replaceChildren(...nodes);
  b.hidden = false;
}
