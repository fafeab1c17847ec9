// One side of the viewer: a Cornerstone stack viewport with its series picker, slider, overlay
// text and message line. Its state is mirrored in data-* attributes of the viewport element
// (data-state, data-image-index, data-instance-number, data-window-width, ...) so that a
// browser test, or a person with the inspector, can read what is on screen.
import { Enums, type RenderingEngine, type Types, utilities } from '@cornerstonejs/core';
import { type Types as ToolTypes, utilities as toolUtilities } from '@cornerstonejs/tools';
import type { Preset } from './presets';
import type { Series, StackImage, Study } from './dicomweb';

export type PaneKind = 'current' | 'prior';
type State = 'loading' | 'ready' | 'empty' | 'error';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, parent?: HTMLElement): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  parent?.appendChild(node);
  return node;
}

/** Sets an element's lines as text (never as HTML: values come from the data). */
function setLines(node: HTMLElement, lines: string[]): void {
  node.replaceChildren(...lines.filter(Boolean).map((line) => {
    const div = document.createElement('div');
    div.textContent = line;
    return div;
  }));
}

const formatDate = (d: string) => (/^\d{8}$/.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d);
const formatName = (pn: string) => {
  const [family = '', given = '', middle = ''] = pn.split('^');
  return [family.toUpperCase(), [given, middle].filter(Boolean).join(' ')].filter(Boolean).join(', ');
};
const seriesLabel = (s: Series) =>
  `Series ${s.number ?? '?'}${s.modality ? ` ${s.modality}` : ''}${s.description ? `: ${s.description}` : ''}`
  + ` (${s.images.length} image${s.images.length === 1 ? '' : 's'})`;

export class Pane {
  readonly section: HTMLElement;
  readonly element: HTMLDivElement; // Cornerstone draws in here
  readonly viewportId: string;
  study?: Study;
  series?: Series;
  private readonly picker: HTMLSelectElement;
  private readonly slider: HTMLInputElement;
  private readonly message: HTMLElement;
  private readonly overlay: Record<'tl' | 'tr' | 'bl' | 'br', HTMLElement>;
  private byImageId = new Map<string, StackImage>();
  private shownIndex = 0;
  private renders = 0;
  private enabled = false;

  constructor(readonly kind: PaneKind, host: HTMLElement, private readonly engine: RenderingEngine,
              private readonly tools: ToolTypes.IToolGroup) {
    this.viewportId = `viewport-${kind}`;
    const title = kind === 'current' ? 'Current study' : 'Prior study';
    this.section = el('section', `pane pane-${kind}`, host);
    this.section.setAttribute('aria-label', title);
    const bar = el('header', 'pane-bar', this.section);
    el('h2', 'pane-title', bar).textContent = title;
    const label = el('label', 'series-label', bar);
    label.hidden = true; // until there is a series to pick
    label.append('Series ');
    this.picker = el('select', 'series-picker', label);
    this.picker.disabled = true;
    this.picker.addEventListener('change', () => {
      const chosen = this.study?.series.find((s) => s.uid === this.picker.value);
      if (chosen) void this.showSeries(chosen);
    });
    const body = el('div', 'pane-body', this.section);
    this.element = el('div', 'viewport', body);
    this.element.id = this.viewportId;
    this.element.tabIndex = 0;
    this.element.setAttribute('aria-label', `${title}: images (arrow keys scroll, +/- zoom, shift+arrows pan)`);
    this.element.addEventListener('contextmenu', (e) => e.preventDefault()); // right-drag zooms
    this.overlay = { tl: el('div', 'overlay tl', body), tr: el('div', 'overlay tr', body),
                     bl: el('div', 'overlay bl', body), br: el('div', 'overlay br', body) };
    this.message = el('div', 'pane-message', body);
    this.message.setAttribute('role', 'status');
    this.slider = el('input', 'stack-slider', this.section);
    this.slider.type = 'range';
    this.slider.min = '1';
    this.slider.hidden = true;
    this.slider.setAttribute('aria-label', `${title}: image in series`);
    this.slider.addEventListener('input', () => void this.goTo(Number(this.slider.value) - 1));
    this.setState('loading', 'Loading…');
  }

  private get viewport(): Types.IStackViewport {
    return this.engine.getViewport(this.viewportId) as Types.IStackViewport;
  }

  private setState(state: State, message = ''): void {
    this.element.dataset.state = state;
    this.message.textContent = message;
    this.message.className = `pane-message ${state === 'error' ? 'error' : state === 'empty' ? 'empty' : ''}`;
    this.message.hidden = !message;
  }

  /** Nothing to show, and why (e.g. no prior study): said in the pane, never a blank. */
  empty(message: string): void {
    this.setState('empty', message);
  }

  fail(message: string): void {
    this.setState('error', message);
  }

  holds(imageId: string): boolean {
    return this.byImageId.has(imageId);
  }

  private enable(): void {
    if (this.enabled) return;
    this.engine.enableElement({ viewportId: this.viewportId, element: this.element, type: Enums.ViewportType.STACK,
                                defaultOptions: { background: [0, 0, 0] } });
    this.element.tabIndex = 0; // Cornerstone sets -1; the keyboard must reach the images
    this.tools.addViewport(this.viewportId, this.engine.id);
    this.element.addEventListener(Enums.Events.STACK_NEW_IMAGE, ((e: CustomEvent<{ imageIdIndex: number }>) => {
      this.shownIndex = e.detail.imageIdIndex;
    }) as EventListener);
    // Everything shown is updated after a render, so what the attributes say is on the canvas.
    this.element.addEventListener(Enums.Events.IMAGE_RENDERED, () => this.rendered());
    this.enabled = true;
  }

  /** Shows a study, starting with `preferred` (else its first series). */
  async show(study: Study, preferred?: Series): Promise<void> {
    this.study = study;
    this.picker.replaceChildren(...study.series.map((s) => {
      const option = document.createElement('option');
      option.value = s.uid;
      option.textContent = seriesLabel(s);
      return option;
    }));
    this.picker.disabled = study.series.length < 2;
    (this.picker.parentElement as HTMLElement).hidden = false;
    await this.showSeries(preferred ?? study.series[0]);
  }

  async showSeries(series: Series): Promise<void> {
    this.enable();
    this.series = series;
    this.picker.value = series.uid;
    this.byImageId = new Map(series.images.map((image) => [image.imageId, image]));
    this.shownIndex = 0;
    this.slider.max = String(series.images.length);
    this.slider.value = '1';
    this.slider.disabled = series.images.length < 2;
    this.slider.hidden = false;
    this.setState('loading', 'Loading images…');
    try {
      await this.viewport.setStack(series.images.map((image) => image.imageId), 0);
      // The rest of the series loads in the background, nearest first, so scrolling does not wait;
      // only once the first image is on screen, so its decoding and drawing share the CPU with nothing.
      this.element.addEventListener(Enums.Events.IMAGE_RENDERED,
        () => toolUtilities.stackPrefetch.enable(this.element), { once: true });
      this.viewport.render();
    } catch (err) {
      this.fail(`${seriesLabel(series)}: the first image could not be loaded (${describe(err)})`);
    }
  }

  async goTo(index: number): Promise<void> {
    if (!this.series || this.element.dataset.state === 'empty') return;
    const target = Math.max(0, Math.min(this.series.images.length - 1, index));
    if (target === this.viewport.getCurrentImageIdIndex()) return;
    try {
      await this.viewport.setImageIdIndex(target);
      if (this.element.dataset.state === 'error') this.setState('ready'); // an earlier image failed, this one came
    } catch (err) {
      this.fail(`Image ${target + 1} of ${this.series.images.length} could not be loaded (${describe(err)})`);
    }
  }

  step(delta: number): Promise<void> {
    return this.goTo(this.viewport.getCurrentImageIdIndex() + delta);
  }

  get ready(): boolean {
    return this.enabled && this.series !== undefined && this.element.dataset.state !== 'empty';
  }

  applyPreset(preset: Preset): void {
    if (!this.ready) return;
    this.viewport.setProperties({ voiRange: utilities.windowLevel.toLowHighRange(preset.width, preset.center) });
    this.viewport.render();
  }

  /** Window/level as stored in the images. */
  resetWindow(): void {
    if (!this.ready) return;
    this.viewport.resetProperties();
    this.viewport.render();
  }

  /** Window/level from the images, zoom to fit, no pan. */
  reset(): void {
    if (!this.ready) return;
    this.viewport.resetProperties();
    this.viewport.resetCamera();
    this.viewport.render();
  }

  zoomBy(factor: number): void {
    if (!this.ready) return;
    this.viewport.setZoom(this.viewport.getZoom() * factor);
    this.viewport.render();
  }

  /** Moves the image by (dx, dy) canvas pixels, as the pan tool does. */
  panBy(dx: number, dy: number): void {
    if (!this.ready) return;
    const vp = this.viewport;
    const a = vp.canvasToWorld([0, 0]);
    const b = vp.canvasToWorld([dx, dy]);
    const { focalPoint, position } = vp.getCamera();
    if (!focalPoint || !position) return;
    const move = (p: Types.Point3): Types.Point3 => [p[0] + a[0] - b[0], p[1] + a[1] - b[1], p[2] + a[2] - b[2]];
    vp.setCamera({ focalPoint: move(focalPoint), position: move(position) });
    vp.render();
  }

  private rendered(): void {
    const vp = this.viewport;
    const image = vp.getImageIds()[this.shownIndex];
    const shown = image ? this.byImageId.get(image) : undefined;
    if (!shown || !this.study || !this.series) return;
    const { voiRange } = vp.getProperties();
    const wl = voiRange ? utilities.windowLevel.toWindowLevel(voiRange.lower, voiRange.upper) : undefined;
    const width = wl ? Math.round(wl.windowWidth) : undefined;
    const center = wl ? Math.round(wl.windowCenter) : undefined;
    const count = this.series.images.length;
    const study = this.study;
    setLines(this.overlay.tl, [formatName(study.patientName), `ID ${study.patientId}`,
                               study.birthDate ? `Born ${formatDate(study.birthDate)}` : '']);
    setLines(this.overlay.tr, [`${this.kind === 'current' ? 'Current' : 'Prior'} ${formatDate(study.date)}`,
                               study.description, study.accession ? `Acc ${study.accession}` : '']);
    setLines(this.overlay.bl, [
      `Se ${this.series.number ?? '?'}${this.series.description ? ` ${this.series.description}` : ''}`,
      `Im ${shown.instanceNumber ?? '?'} (${this.shownIndex + 1}/${count})`,
      shown.frames > 1 ? `Frame ${shown.frame}/${shown.frames}` : '',
    ]);
    setLines(this.overlay.br, [width === undefined ? '' : `W ${width} L ${center}`,
                               `Zoom ${vp.getZoom().toFixed(2)}×`]);
    this.slider.value = String(this.shownIndex + 1);
    Object.assign(this.element.dataset, {
      studyUid: study.uid,
      seriesUid: this.series.uid,
      imageCount: String(count),
      imageIndex: String(this.shownIndex),
      instanceNumber: String(shown.instanceNumber ?? ''),
      sopInstanceUid: shown.sopInstanceUid,
      frame: String(shown.frame),
      windowWidth: String(width ?? ''),
      windowCenter: String(center ?? ''),
      zoom: vp.getZoom().toFixed(3),
      renders: String(++this.renders),
    });
    if (this.element.dataset.state === 'loading') this.setState('ready');
  }
}

export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object') {
    const detail = err as { message?: unknown; status?: unknown; error?: { message?: unknown; status?: unknown } };
    const status = detail.status ?? detail.error?.status;
    const message = detail.message ?? detail.error?.message;
    if (status || message) return [status ? `HTTP ${String(status)}` : '', message ? String(message) : ''].filter(Boolean).join(' ');
  }
  return String(err);
}
